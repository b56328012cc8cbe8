//! A test's own folder in the temporary directory, gone however the test ends.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh, empty folder in the temporary directory, unique to this process
/// and this call, removed with all it holds when dropped: when the test
/// passes and when a failed assertion unwinds through it alike, so no
/// failure leaves it behind.
///
/// ```
/// let dir = test_support::TempDir::new("doc");
/// std::fs::write(dir.path().join("a.txt"), "hi").unwrap();
/// let path = dir.path().to_path_buf();
/// drop(dir);
/// assert!(!path.exists());
/// ```
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Create `PREFIX-PID-N` in the temporary directory (emptied first if a
    /// process of the same id left one behind).
    pub fn new(prefix: &str) -> TempDir {
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{call}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir(path)
    }

    /// Where the folder is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Nothing to do about a failure here but leave the folder.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
