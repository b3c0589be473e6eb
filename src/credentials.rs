//! Passwords: where they come from, and how they are kept out of every output.

use anyhow::{bail, Context, Result};
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A password; its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The password itself, for the one call that sends it to the server.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where the password in use came from (shown in facts, never the password).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordSource {
    /// No password.
    None,
    /// `--password-file` (or `--replica-password-file`).
    File,
    /// The positional PASSWORD argument: visible in `ps` to other local users.
    CommandLine,
    /// An environment variable such as `REDISCLI_AUTH` or `MYSQL_PWD`.
    Environment(&'static str),
    /// A my.cnf `[client]` group.
    DefaultsFile,
}

/// The `login` fact: who logs in and where the password came from (never the password).
pub fn login_fact(user: Option<&str>, source: PasswordSource) -> String {
    let who = user.unwrap_or("default user");
    match source {
        PasswordSource::None => format!("{who}, no password"),
        other => format!("{who}, password from {}", other.describe()),
    }
}

impl PasswordSource {
    /// How the source is named in facts.
    pub fn describe(self) -> String {
        match self {
            PasswordSource::None => "none".into(),
            PasswordSource::File => "password file".into(),
            PasswordSource::CommandLine => "command line".into(),
            PasswordSource::Environment(var) => format!("environment ({var})"),
            PasswordSource::DefaultsFile => "defaults file".into(),
        }
    }
}

/// The note shown when a password was given on the command line.
pub const COMMAND_LINE_PASSWORD_NOTE: &str =
    "the password was given on the command line, where other local users can read it (ps); use --password-file instead";

/// Refuses a secrets file that users other than its owner and group can read or write.
pub fn check_private(path: &Path, what: &str) -> Result<()> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {what} {}", path.display()))?;
    if !meta.is_file() {
        bail!("{what} {} is not a regular file", path.display());
    }
    let mode = meta.permissions().mode();
    if mode & 0o006 != 0 {
        bail!(
            "{what} {} is readable or writable by every user (mode {:o}); run: chmod o-rwx {}",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    Ok(())
}

/// Size limits of the files a check reads: far above any real one, far below harm.
pub mod limits {
    /// A password file.
    pub const PASSWORD_FILE: u64 = 4 << 10;
    /// One my.cnf (each included file too).
    pub const DEFAULTS_FILE: u64 = 64 << 10;
    /// A CA bundle (Debian's whole bundle is about 200 KiB).
    pub const CA_BUNDLE: u64 = 1 << 20;
    /// A client certificate or key.
    pub const CERTIFICATE: u64 = 64 << 10;
    /// A generator inventory.
    pub const INVENTORY: u64 = 4 << 20;
}

/// Reads a whole file of at most `limit` bytes. It must be a regular file (not a FIFO, device or
/// directory, which could block or never end); a larger one is refused, naming it and the limit.
pub fn read_bounded(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {what} {}", path.display()))?;
    if !meta.is_file() {
        bail!("{what} {} is not a regular file", path.display());
    }
    if meta.len() > limit {
        bail!("{what} {} is {} bytes, more than the {} bytes a real one needs", path.display(), meta.len(), limit);
    }
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {what} {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).with_context(|| format!("cannot read {what} {}", path.display()))?;
    if bytes.len() as u64 > limit {
        bail!("{what} {} grew past {limit} bytes while being read", path.display());
    }
    Ok(bytes)
}

/// Reads a password file: the first line, without its line ending; refused when other users can read it.
pub fn read_password_file(path: &Path) -> Result<Secret> {
    check_private(path, "password file")?;
    let bytes = read_bounded(path, limits::PASSWORD_FILE, "password file")?;
    let text = String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("password file {} is not UTF-8 text", path.display()))?;
    let first = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if first.is_empty() {
        bail!("password file {} is empty", path.display());
    }
    Ok(Secret::new(first))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_files::TempDir;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn password_file_first_line_only() {
        let d = TempDir::new("cred-first-line");
        let p = d.file("ok", "s3cret\r\nsecond line\n", 0o600);
        assert_eq!(read_password_file(&p).unwrap().expose(), "s3cret");
        let g = d.file("group", "s3cret\n", 0o640);
        assert!(read_password_file(&g).is_ok(), "group-readable (e.g. root:consul 0640) is allowed");
    }

    #[test]
    fn world_readable_or_empty_refused_without_leaking() {
        let d = TempDir::new("cred-refused");
        let p = d.file("world", "s3cret\n", 0o644);
        let err = format!("{:#}", read_password_file(&p).unwrap_err());
        assert!(err.contains("readable") && err.contains("chmod"), "{err}");
        assert!(!err.contains("s3cret"));
        let e = d.file("empty", "\n", 0o600);
        assert!(format!("{:#}", read_password_file(&e).unwrap_err()).contains("empty"));
        let missing = std::env::temp_dir().join("cdc-no-such-file");
        assert!(format!("{:#}", read_password_file(&missing).unwrap_err()).contains("cannot read password file"));
    }

    #[test]
    fn files_are_bounded_and_regular() {
        let d = TempDir::new("cred-bounded");
        let big = d.file("big", &"x".repeat(5000), 0o600);
        let e = format!("{:#}", read_bounded(&big, 4096, "password file").unwrap_err());
        assert!(e.contains("5000 bytes, more than the 4096"), "{e}");
        for special in ["/dev/zero", "/dev/null", "/"] {
            let e = format!("{:#}", read_bounded(Path::new(special), 4096, "defaults file").unwrap_err());
            assert!(e.contains("not a regular file"), "{special}: {e}");
        }
        assert_eq!(read_bounded(&d.file("small", "abc", 0o600), 3, "x").unwrap(), b"abc");
    }
}
