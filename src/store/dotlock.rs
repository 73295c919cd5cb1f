//! Dot-locks: `NAME.lock` created with O_EXCL beside the file it guards, broken when
//! older than the stale timeout. Dovecot guards dovecot-uidlist this way, and writes the
//! replacement file into the lock itself before renaming it into place; `replace` does
//! the same, so a reader never sees a half-written file.
//!
//! The lock's content is the new file, so it cannot name its owner as an mbox lock
//! does. Ours say it otherwise: created mode 0400 (Dovecot's have the file's mode) and
//! held with an fcntl lock for as long as we hold them, which the kernel drops when the
//! process dies. A 0400 lock nobody holds that way, older than a moment, is left by a
//! killed session, and is broken at once instead of after the stale timeout.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::filelock::{Holders, ofd_lock, wait_for};

pub struct DotLock {
    lock_path: PathBuf,
    target: PathBuf,
    file: Option<File>,
}

/// The mode that marks a lock as ours while held (set to the file's mode on replace).
const HELD_MODE: u32 = 0o400;

/// How old an unheld lock of ours must be to be taken for a dead owner's (the moment
/// between creating it and taking its fcntl lock, with room to spare).
const OWNER_GRACE: Duration = Duration::from_secs(1);

impl DotLock {
    /// Take `target`'s lock, breaking one its owner left behind; how long another's
    /// is waited for depends on who may hold it (`Holders`).
    pub fn acquire(target: &Path, holders: Holders) -> io::Result<DotLock> {
        let mut lock_name = target.file_name().unwrap_or_default().to_os_string();
        lock_name.push(".lock");
        let lock_path = target.with_file_name(lock_name);
        let what = format!("dot-lock {}", lock_path.display());
        wait_for(
            || match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(HELD_MODE)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&lock_path)
            {
                Ok(file) => {
                    // Held while this descriptor is open; dropped by the kernel if we die.
                    let _ = ofd_lock(&file, libc::F_WRLCK as libc::c_short);
                    Ok(Some(DotLock {
                        lock_path: lock_path.clone(),
                        target: target.to_path_buf(),
                        file: Some(file),
                    }))
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if Self::owner_is_gone(&lock_path) || Self::is_stale(&lock_path) {
                        crate::log::warning(&format!(
                            "breaking stale lock {}",
                            lock_path.display()
                        ));
                        let _ = std::fs::remove_file(&lock_path);
                    }
                    Ok(None)
                }
                Err(e) => Err(e),
            },
            &what,
            holders,
        )
    }

    /// A lock of ours (mode 0400) that no live process holds.
    fn owner_is_gone(path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Ok(m) = std::fs::symlink_metadata(path) else {
            return false;
        };
        let old_enough = m
            .modified()
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age > OWNER_GRACE);
        if !m.is_file() || m.mode() & 0o7777 != HELD_MODE || !old_enough {
            return false;
        }
        let Ok(f) = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
        else {
            return false;
        };
        // The same file still, and nobody holds it: taking the lock (and letting it go
        // at once) shows its owner is gone.
        let same = f.metadata().is_ok_and(|n| n.ino() == m.ino());
        same && ofd_lock(&f, libc::F_RDLCK as libc::c_short).unwrap_or(false)
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
        use std::os::unix::fs::PermissionsExt;
        let mut f = self.file.take().expect("lock file open");
        f.write_all(content)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.sync_data()?;
        // Renamed while still held: nobody may take it for a dead owner's meanwhile.
        std::fs::rename(&self.lock_path, &self.target)?;
        drop(f);
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
