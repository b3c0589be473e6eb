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
    match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        _ => {}
    }
    let bytes = crate::credentials::read_bounded(&path, 4 << 20, "manifest")?;
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

/// Compares `file` with what is under `dir`.
pub fn state(dir: &Path, file: &OutputFile) -> Result<FileState> {
    let path = dir.join(&file.path);
    match std::fs::read(&path) {
        Ok(bytes) if bytes == file.content.as_bytes() => Ok(FileState::Unchanged),
        Ok(_) => Ok(FileState::Changed),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileState::Missing),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes `file` under `dir` through a temporary file and a rename in the same directory, unless
/// the bytes on disk are already the same. Returns the state it found.
pub fn write_atomically(dir: &Path, file: &OutputFile) -> Result<FileState> {
    let found = state(dir, file)?;
    if found == FileState::Unchanged {
        return Ok(found);
    }
    let path = dir.join(&file.path);
    let parent = path.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = parent.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| -> Result<()> {
        let mut f = std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(file.content.as_bytes()).and_then(|_| f.sync_all()).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|_| found)
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
