//! Writing generated files: atomically, only when changed, or comparing them (`--check`).

use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A file to produce, relative to the output directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputFile {
    /// Path under `--out`.
    pub path: PathBuf,
    /// Its whole content.
    pub content: String,
}

/// How a file on disk compares with what would be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileState {
    /// Same bytes.
    Unchanged,
    /// Different bytes.
    Changed,
    /// Not there yet.
    Missing,
}

/// The manifest of the files this generator wrote under an output directory: `--prune` removes
/// those (and only those) that the inventory no longer produces.
pub const MANIFEST: &str = ".gen-consul-services.manifest";

/// The paths the manifest under `dir` lists (none when there is no manifest).
pub fn manifest(dir: &Path) -> Result<Vec<PathBuf>> {
    let path = dir.join(MANIFEST);
    let Some(bytes) = read_back(dir, Path::new(MANIFEST))? else { return Ok(Vec::new()) };
    let text = String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("manifest {} is not UTF-8 text", path.display()))?;
    let text: String = text.lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect();
    // Only plain relative paths: a manifest must not point a prune outside the directory.
    Ok(text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('/') && !l.split('/').any(|c| c == ".." || c.is_empty()))
        .map(PathBuf::from)
        .collect())
}

/// Writes the manifest under `dir` (atomically), listing `paths` sorted.
pub fn write_manifest(dir: &Path, paths: &[PathBuf]) -> Result<()> {
    let mut lines: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    lines.sort();
    lines.dedup();
    let content = format!("# Files written by gen-consul-services; --prune removes those no longer generated.\n{}\n", lines.join("\n"));
    write_atomically(dir, &OutputFile { path: PathBuf::from(MANIFEST), content }).map(|_| ())
}

/// An open directory under the output directory, reached without following a symbolic link.
struct Dir {
    fd: std::os::fd::OwnedFd,
    path: PathBuf,
}

/// The refusal for a link (or another non-directory) where the generator expected its own file.
fn refuse_link(path: &Path, what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{} is {what}: the generator writes only inside --out and never through a link; remove it and run again",
        path.display()
    )
}

fn c_name(name: &std::ffi::OsStr) -> Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(name.as_bytes()).map_err(|_| anyhow::anyhow!("{name:?} holds a NUL byte"))
}

fn last_os_error() -> std::io::Error {
    std::io::Error::last_os_error()
}

impl Dir {
    /// The output directory itself (created when `create`): the one path that may be a link, since
    /// the operator names it.
    fn out(dir: &Path, create: bool) -> Result<Option<Dir>> {
        if create {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        match std::fs::File::open(dir) {
            Ok(f) if f.metadata().map(|m| m.is_dir()).unwrap_or(false) => Ok(Some(Dir { fd: f.into(), path: dir.to_path_buf() })),
            Ok(_) => anyhow::bail!("--out {} is not a directory", dir.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !create => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot open {}", dir.display())),
        }
    }

    /// The sub-directory `name` (created when `create`); `None` when missing. A link there is refused.
    fn child(&self, name: &std::ffi::OsStr, create: bool) -> Result<Option<Dir>> {
        use std::os::fd::{AsRawFd, FromRawFd};
        let path = self.path.join(name);
        let c = c_name(name)?;
        // SAFETY: plain system calls on a descriptor we own and a NUL-terminated name.
        unsafe {
            if create && libc::mkdirat(self.fd.as_raw_fd(), c.as_ptr(), 0o755) != 0 && last_os_error().raw_os_error() != Some(libc::EEXIST)
            {
                return Err(last_os_error()).with_context(|| format!("cannot create {}", path.display()));
            }
            let fd = libc::openat(self.fd.as_raw_fd(), c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC);
            if fd < 0 {
                let e = last_os_error();
                return match e.raw_os_error() {
                    Some(libc::ENOENT) if !create => Ok(None),
                    Some(libc::ELOOP | libc::ENOTDIR) => match self.kind_of(name)? {
                        Some(libc::S_IFLNK) => Err(refuse_link(&path, "a symbolic link")),
                        _ => Err(refuse_link(&path, "not a directory")),
                    },
                    _ => Err(e).with_context(|| format!("cannot open {}", path.display())),
                };
            }
            Ok(Some(Dir { fd: std::os::fd::OwnedFd::from_raw_fd(fd), path }))
        }
    }

    /// What `name` is in this directory, without following a link: `None` when missing.
    fn kind_of(&self, name: &std::ffi::OsStr) -> Result<Option<libc::mode_t>> {
        use std::os::fd::AsRawFd;
        let c = c_name(name)?;
        // SAFETY: fstatat into a zeroed stat, on a descriptor we own.
        unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstatat(self.fd.as_raw_fd(), c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) != 0 {
                let e = last_os_error();
                return match e.raw_os_error() {
                    Some(libc::ENOENT) => Ok(None),
                    _ => Err(e).with_context(|| format!("cannot look at {}", self.path.join(name).display())),
                };
            }
            Ok(Some(st.st_mode & libc::S_IFMT))
        }
    }

    /// The regular file `name` here (a link or anything else is refused); `None` when missing.
    fn regular(&self, name: &std::ffi::OsStr) -> Result<Option<()>> {
        match self.kind_of(name)? {
            None => Ok(None),
            Some(libc::S_IFREG) => Ok(Some(())),
            Some(libc::S_IFLNK) => Err(refuse_link(&self.path.join(name), "a symbolic link")),
            Some(_) => Err(refuse_link(&self.path.join(name), "not a regular file")),
        }
    }

    /// Reads the regular file `name` here, at most `limit` bytes; `None` when missing.
    fn read(&self, name: &std::ffi::OsStr, limit: u64) -> Result<Option<Vec<u8>>> {
        use std::io::Read;
        use std::os::fd::{AsRawFd, FromRawFd};
        if self.regular(name)?.is_none() {
            return Ok(None);
        }
        let path = self.path.join(name);
        let c = c_name(name)?;
        // SAFETY: openat on a descriptor we own; the new descriptor is owned by the File.
        let file = unsafe {
            let fd = libc::openat(self.fd.as_raw_fd(), c.as_ptr(), libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(last_os_error()).with_context(|| format!("cannot read {}", path.display()));
            }
            std::fs::File::from_raw_fd(fd)
        };
        if !file.metadata().map(|m| m.is_file()).unwrap_or(false) {
            return Err(refuse_link(&path, "not a regular file"));
        }
        let mut bytes = Vec::new();
        file.take(limit + 1).read_to_end(&mut bytes).with_context(|| format!("cannot read {}", path.display()))?;
        if bytes.len() as u64 > limit {
            anyhow::bail!("{} is more than {limit} bytes", path.display());
        }
        Ok(Some(bytes))
    }

    /// Writes `content` as `name` here: a new temporary file with an unpredictable name, created
    /// exclusively and without following links, then renamed over `name` (which must not be a link).
    fn replace(&self, name: &std::ffi::OsStr, content: &[u8]) -> Result<()> {
        use std::os::fd::{AsRawFd, FromRawFd};
        self.regular(name)?;
        let target = c_name(name)?;
        let tmp_name = std::ffi::OsString::from(format!(".{}.{}.tmp", name.to_string_lossy(), random_suffix()?));
        let tmp = c_name(&tmp_name)?;
        let tmp_path = self.path.join(&tmp_name);
        // SAFETY: openat/renameat/unlinkat on a descriptor we own with NUL-terminated names.
        unsafe {
            let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
            let fd = libc::openat(self.fd.as_raw_fd(), tmp.as_ptr(), flags, 0o644 as libc::c_uint);
            if fd < 0 {
                return Err(last_os_error()).with_context(|| format!("cannot create {}", tmp_path.display()));
            }
            let mut f = std::fs::File::from_raw_fd(fd);
            let written = f.write_all(content).and_then(|_| f.sync_all());
            drop(f);
            let renamed =
                written.and_then(|_| match libc::renameat(self.fd.as_raw_fd(), tmp.as_ptr(), self.fd.as_raw_fd(), target.as_ptr()) {
                    0 => Ok(()),
                    _ => Err(last_os_error()),
                });
            if let Err(e) = renamed {
                libc::unlinkat(self.fd.as_raw_fd(), tmp.as_ptr(), 0);
                return Err(e).with_context(|| format!("cannot write {}", self.path.join(name).display()));
            }
        }
        Ok(())
    }

    /// Removes the regular file `name` here (a link or anything else is refused); false when missing.
    fn remove(&self, name: &std::ffi::OsStr) -> Result<bool> {
        use std::os::fd::AsRawFd;
        if self.regular(name)?.is_none() {
            return Ok(false);
        }
        let c = c_name(name)?;
        // SAFETY: unlinkat on a descriptor we own; flags 0 removes a file, never a directory.
        if unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) } != 0 {
            return Err(last_os_error()).with_context(|| format!("cannot remove {}", self.path.join(name).display()));
        }
        Ok(true)
    }
}

/// 16 hex digits from the kernel's random source: temporary names nobody can plant in advance.
fn random_suffix() -> Result<String> {
    let mut bytes = [0u8; 8];
    // SAFETY: getrandom fills the buffer we pass, of the length we pass.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        return Err(last_os_error()).context("cannot read random bytes for a temporary file name");
    }
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The directory holding `rel` under `dir` (created when `create`) and the file's name; `None`
/// when a directory on the way is missing. Every directory on the way is reached without links.
fn parent_of(dir: &Path, rel: &Path, create: bool) -> Result<Option<(Dir, std::ffi::OsString)>> {
    use std::path::Component;
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(name) => parts.push(name),
            _ => anyhow::bail!("{} is not a plain relative path", rel.display()),
        }
    }
    let Some(name) = parts.pop() else { anyhow::bail!("empty output path") };
    let Some(mut at) = Dir::out(dir, create)? else { return Ok(None) };
    for part in parts {
        match at.child(part, create)? {
            Some(next) => at = next,
            None => return Ok(None),
        }
    }
    Ok(Some((at, name.to_os_string())))
}

/// Most bytes read back from one generated file (or the manifest) to compare it.
const MAX_READ_BACK: u64 = 4 << 20;

/// The bytes of `rel` under `dir`, reached without links; `None` when missing.
fn read_back(dir: &Path, rel: &Path) -> Result<Option<Vec<u8>>> {
    match parent_of(dir, rel, false)? {
        Some((at, name)) => at.read(&name, MAX_READ_BACK),
        None => Ok(None),
    }
}

/// Whether `rel` exists under `dir` as a regular file reached without links (a link is refused).
pub fn exists(dir: &Path, rel: &Path) -> Result<bool> {
    match parent_of(dir, rel, false)? {
        Some((at, name)) => Ok(at.regular(&name)?.is_some()),
        None => Ok(false),
    }
}

/// Removes `rel` under `dir`: only a regular file reached without links (anything else is refused).
pub fn remove(dir: &Path, rel: &Path) -> Result<bool> {
    match parent_of(dir, rel, false)? {
        Some((at, name)) => at.remove(&name),
        None => Ok(false),
    }
}

/// How `on_disk` (`None`: missing) compares with `file`.
fn compare(on_disk: Option<Vec<u8>>, file: &OutputFile) -> FileState {
    match on_disk {
        Some(bytes) if bytes == file.content.as_bytes() => FileState::Unchanged,
        Some(_) => FileState::Changed,
        None => FileState::Missing,
    }
}

/// Compares `file` with what is under `dir`.
pub fn state(dir: &Path, file: &OutputFile) -> Result<FileState> {
    Ok(compare(read_back(dir, &file.path)?, file))
}

/// Writes `file` under `dir` through a temporary file and a rename in the same directory, unless
/// the bytes on disk are already the same; no directory or file is reached through a link (the
/// directories are walked once, for the comparison and the write). Returns the state it found.
pub fn write_atomically(dir: &Path, file: &OutputFile) -> Result<FileState> {
    let (at, name) = parent_of(dir, &file.path, true)?.ok_or_else(|| anyhow::anyhow!("cannot create {}", dir.display()))?;
    let found = compare(at.read(&name, MAX_READ_BACK)?, file);
    if found != FileState::Unchanged {
        at.replace(&name, file.content.as_bytes())?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_once_and_reports_states() {
        let dir = std::env::temp_dir().join(format!("cdc-out-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let f = OutputFile { path: PathBuf::from("10.0.0.1/w.json"), content: "{}\n".into() };
        assert_eq!(state(&dir, &f).unwrap(), FileState::Missing);
        assert_eq!(write_atomically(&dir, &f).unwrap(), FileState::Missing);
        let written = dir.join("10.0.0.1/w.json");
        let mtime = std::fs::metadata(&written).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(write_atomically(&dir, &f).unwrap(), FileState::Unchanged);
        assert_eq!(std::fs::metadata(&written).unwrap().modified().unwrap(), mtime, "unchanged files are not rewritten");
        let g = OutputFile { content: "{\"a\":1}\n".into(), ..f.clone() };
        assert_eq!(state(&dir, &g).unwrap(), FileState::Changed);
        write_atomically(&dir, &g).unwrap();
        assert_eq!(std::fs::read_to_string(&written).unwrap(), g.content);
        let leftovers: Vec<_> = std::fs::read_dir(dir.join("10.0.0.1"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
