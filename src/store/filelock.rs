//! fcntl locks on a whole file, as open-file-description locks (F_OFD_SETLK): they
//! conflict with the classic POSIX locks other programs take (procmail, Postfix, mutt
//! on an mbox), and unlike those they also separate two sessions inside one daemon
//! process. Held for the moment of a read or write, released on drop.

use std::fs::File;
use std::io;
use std::os::unix::io::AsRawFd;
use std::time::{Duration, Instant};

/// How long to wait for another program's lock before giving up.
const WAIT: Duration = Duration::from_secs(30);

/// A held fcntl lock; released on drop.
pub struct RangeLock<'f> {
    file: &'f File,
}

/// Take (or, with F_UNLCK, release) a whole-file OFD lock without waiting: Ok(false) if
/// another open file holds a conflicting one.
pub fn ofd_lock(file: &File, kind: libc::c_short) -> io::Result<bool> {
    // SAFETY: zeroed flock is a valid "whole file" request; the fd is open.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: fcntl with a valid fd and a pointer to a live flock.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(e),
    }
}

/// Try `attempt` until it gives a value, pausing between tries (1 ms doubling to 50 ms),
/// for at most WAIT.
pub fn wait_for<T>(
    mut attempt: impl FnMut() -> io::Result<Option<T>>,
    what: &str,
) -> io::Result<T> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    let mut long = None;
    loop {
        if let Some(v) = attempt()? {
            return Ok(v);
        }
        if long.is_none() && start.elapsed() >= crate::util::blocking::LONG {
            long = Some(crate::util::blocking::long_wait());
        }
        if start.elapsed() > WAIT {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("timed out waiting for the {what}"),
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

impl<'f> RangeLock<'f> {
    pub fn read(file: &'f File) -> io::Result<RangeLock<'f>> {
        Self::take(file, libc::F_RDLCK as libc::c_short, "mbox read lock")
    }

    pub fn write(file: &'f File) -> io::Result<RangeLock<'f>> {
        Self::take(file, libc::F_WRLCK as libc::c_short, "mbox write lock")
    }

    fn take(file: &'f File, kind: libc::c_short, what: &str) -> io::Result<RangeLock<'f>> {
        wait_for(
            || Ok(ofd_lock(file, kind)?.then_some(RangeLock { file })),
            what,
        )
    }
}

impl Drop for RangeLock<'_> {
    fn drop(&mut self) {
        let _ = ofd_lock(self.file, libc::F_UNLCK as libc::c_short);
    }
}
