//! Files for unit tests: a directory removed when the test ends, and files written with a mode.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A fresh directory under the system's temporary directory, removed when the test ends.
pub struct TestDir(PathBuf);

impl TestDir {
    /// An empty directory named after `tag` and this process.
    pub fn new(tag: &str) -> TestDir {
        let d = std::env::temp_dir().join(format!("cdc-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TestDir(d)
    }

    /// Writes `name` in this directory with `text` and `mode`; returns its path.
    pub fn file(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let p = self.0.join(name);
        write(&p, text, mode);
        p
    }
}

impl std::ops::Deref for TestDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `text` to `path` and sets its mode.
pub fn write(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}
