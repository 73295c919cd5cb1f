//! The POP3 maildrop lock (RFC 1939 8: "the POP3 server acquires an exclusive-access
//! lock on the maildrop"). One POP3 session per user at a time; IMAP sessions and
//! deliveries never take it, so they go on. An flock(2) on a small file in the user's
//! store: per open file, so it also separates two sessions of one daemon, and released
//! by the kernel when a session's process dies, so a crash never leaves it stuck.
//! The file's mtime is the time of the last POP3 login (for LOGIN-DELAY).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::SystemTime;

pub struct MaildropLock {
    file: File,
    previous_login: Option<SystemTime>,
}

impl MaildropLock {
    /// Ok(None): another POP3 session holds it.
    pub fn acquire(path: &Path) -> io::Result<Option<MaildropLock>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        if !crate::sys::try_lock_exclusive(&file)? {
            return Ok(None);
        }
        let meta = file.metadata()?;
        // A fresh (empty) file records no earlier login.
        let previous_login = (meta.len() > 0).then(|| meta.modified().ok()).flatten();
        Ok(Some(MaildropLock {
            file,
            previous_login,
        }))
    }

    /// When the user last logged in over POP3 (None: never, as far as we know).
    pub fn previous_login(&self) -> Option<SystemTime> {
        self.previous_login
    }

    /// Record this login's time.
    pub fn record_login(&self) -> io::Result<()> {
        use std::io::Write;
        if self.file.metadata()?.len() == 0 {
            (&self.file).write_all(b"ipop3d maildrop lock\n")?;
        }
        self.file.set_modified(SystemTime::now())
    }
}
