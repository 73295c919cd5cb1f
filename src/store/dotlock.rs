//! Dot-locks: `NAME.lock` created with O_EXCL beside the file it guards, broken when
//! older than the stale timeout. Dovecot guards dovecot-uidlist this way, and writes the
//! replacement file into the lock itself before renaming it into place; `replace` does
//! the same, so a reader never sees a half-written file.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

pub struct DotLock {
    lock_path: PathBuf,
    target: PathBuf,
    file: Option<File>,
}

/// How long to wait for another process's lock before giving up.
const WAIT: Duration = Duration::from_secs(30);

impl DotLock {
    pub fn acquire(target: &Path) -> io::Result<DotLock> {
        let mut lock_name = target.file_name().unwrap_or_default().to_os_string();
        lock_name.push(".lock");
        let lock_path = target.with_file_name(lock_name);
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&lock_path)
            {
                Ok(file) => {
                    return Ok(DotLock {
                        lock_path,
                        target: target.to_path_buf(),
                        file: Some(file),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if Self::is_stale(&lock_path) {
                        crate::log::warning(&format!(
                            "breaking stale lock {}",
                            lock_path.display()
                        ));
                        let _ = std::fs::remove_file(&lock_path);
                        continue;
                    }
                    if start.elapsed() > WAIT {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "timed out waiting for dot-lock",
                        ));
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn is_stale(path: &Path) -> bool {
        let stale = Duration::from_secs(crate::config::DOTLOCK_STALE_SECS);
        match std::fs::metadata(path).and_then(|m| m.modified()) {
            Ok(mtime) => SystemTime::now()
                .duration_since(mtime)
                .map(|age| age > stale)
                .unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Write `content` as the new target file and release the lock (atomic rename).
    pub fn replace(mut self, content: &[u8]) -> io::Result<()> {
        let mut f = self.file.take().expect("lock file open");
        f.write_all(content)?;
        f.sync_data()?;
        drop(f);
        std::fs::rename(&self.lock_path, &self.target)?;
        // Make the rename itself durable: a uidlist that came back older after a crash
        // would hand out UIDs that clients have already seen.
        if let Some(dir) = self.target.parent() {
            sync_dir(dir)?;
        }
        Ok(())
    }
}

impl Drop for DotLock {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.lock_path);
        }
    }
}

/// fsync a directory, so that renames and creations in it survive a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
