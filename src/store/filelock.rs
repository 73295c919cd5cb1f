//! fcntl locks on a whole file, as open-file-description locks (F_OFD_SETLK): they
//! conflict with the classic POSIX locks other programs take (procmail, Postfix, mutt
//! on an mbox), and unlike those they also separate two sessions inside one daemon
//! process. Held for the moment of a read or write, released on drop.
//!
//! How long a lock is waited for (`wait_for`) depends on who may hold it (`Holders`):
//! inside a session's step, one another program may keep is tried for a moment and
//! then reported (`WouldBlock`, `StoreError::Locked`), never slept on.

use std::fs::File;
use std::io;
use std::os::unix::io::AsRawFd;
use std::time::{Duration, Instant};

/// How long a lock is waited for at most when it may be (see `Holders`).
const WAIT: Duration = Duration::from_secs(crate::config::LOCK_WAIT_SECS);

/// How long a yielding thread tries a lock before `WouldBlock`: a lock changing hands.
/// Short, as a session waiting for a lock tries again every so often.
const MOMENT: Duration = Duration::from_millis(3);

/// Who may hold a lock, and so how long a wait for it may last.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Holders {
    /// Only our own code, for one read or write of a small file (the \Recent record,
    /// UIDVALIDITY's counter, a folder's first uidlist): waited for, up to WAIT.
    OursBriefly,
    /// Other programs too, for as long as they like: an MDA delivering, mutt rewriting
    /// an mbox, a Dovecot sync, a lock its owner left behind. Inside a session's step
    /// (`yielding`) this is waited for a moment only (MOMENT), then `WouldBlock`: the operation changed nothing, and the
    /// session asks again from its timer while its worker serves others. Elsewhere
    /// (a session's end, tools) it is waited for, up to WAIT.
    Anyone,
}

thread_local! {
    /// Is this thread running a session's step (`yielding`)?
    static YIELDING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Is it running a parked job again (`once`)?
    static ONCE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f`, a job parked on a lock, again: the lock is tried once, without the
/// moment's wait (it was waited for at the first try, and the session asks again soon).
pub fn once<T>(f: impl FnOnce() -> T) -> T {
    with_flag(&ONCE, true, f)
}

/// Run `f` as a session's step: a lock `Holders::Anyone` may hold is not waited for.
pub fn yielding<T>(f: impl FnOnce() -> T) -> T {
    with_yielding(true, f)
}

/// Run `f` where a wait is the only way on (a session ending with flag changes still
/// to write: there is no later step to ask again from).
pub fn patiently<T>(f: impl FnOnce() -> T) -> T {
    with_yielding(false, f)
}

fn with_yielding<T>(on: bool, f: impl FnOnce() -> T) -> T {
    with_flag(&YIELDING, on, f)
}

/// Run `f` with this thread's `flag` set to `on`, as it was again afterwards.
fn with_flag<T>(
    flag: &'static std::thread::LocalKey<std::cell::Cell<bool>>,
    on: bool,
    f: impl FnOnce() -> T,
) -> T {
    struct Restore(&'static std::thread::LocalKey<std::cell::Cell<bool>>, bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            self.0.with(|c| c.set(self.1));
        }
    }
    let _restore = Restore(flag, flag.with(|c| c.replace(on)));
    f()
}

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

/// Try `attempt` until it gives a value, pausing between tries (1 ms doubling to 50 ms):
/// for a moment when `holders` may keep it long and the thread is yielding (then
/// `WouldBlock`), else for at most WAIT (then `TimedOut`). A wait past a moment tells
/// the daemon's pool (`blocking::long_wait`), which runs a substitute meanwhile.
pub fn wait_for<T>(
    mut attempt: impl FnMut() -> io::Result<Option<T>>,
    what: &str,
    holders: Holders,
) -> io::Result<T> {
    let yields = holders == Holders::Anyone && YIELDING.with(|y| y.get());
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    let mut long = None;
    loop {
        if let Some(v) = attempt()? {
            return Ok(v);
        }
        let waited = start.elapsed();
        if yields && (waited >= MOMENT || ONCE.with(|o| o.get())) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("the {what} is held by another program"),
            ));
        }
        if long.is_none() && waited >= crate::util::blocking::LONG {
            long = Some(crate::util::blocking::long_wait());
        }
        if waited > WAIT {
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
    pub fn read(file: &'f File, holders: Holders) -> io::Result<RangeLock<'f>> {
        Self::take(
            file,
            libc::F_RDLCK as libc::c_short,
            "fcntl read lock",
            holders,
        )
    }

    pub fn write(file: &'f File, holders: Holders) -> io::Result<RangeLock<'f>> {
        Self::take(
            file,
            libc::F_WRLCK as libc::c_short,
            "fcntl write lock",
            holders,
        )
    }

    fn take(
        file: &'f File,
        kind: libc::c_short,
        what: &str,
        holders: Holders,
    ) -> io::Result<RangeLock<'f>> {
        wait_for(
            || Ok(ofd_lock(file, kind)?.then_some(RangeLock { file })),
            what,
            holders,
        )
    }
}

impl Drop for RangeLock<'_> {
    fn drop(&mut self) {
        let _ = ofd_lock(self.file, libc::F_UNLCK as libc::c_short);
    }
}
