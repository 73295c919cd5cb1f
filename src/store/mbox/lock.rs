//! mbox locks, taken the way the other programs on the spool take them, and held only for
//! the moment of a read or write (never for a whole session):
//! - writers: dot-lock `NAME.lock` beside the file first, then an fcntl write lock (the
//!   order of Dovecot's `mbox_write_locks = dotlock fcntl`; Postfix local(8) and procmail
//!   take both too), so whichever comes second waits;
//! - readers: an fcntl read lock (Dovecot's `mbox_read_locks = fcntl`), which keeps a
//!   delivery from being half-read.
//!
//! The fcntl locks are open-file-description locks (F_OFD_SETLK): they conflict with the
//! classic POSIX locks other programs take, and unlike those they also separate two
//! sessions inside one daemon process.
//!
//! A spool directory like Debian's `drwxrwsr-t root:mail` lets only group mail create
//! `USER.lock`. The session keeps the privileged group (config MBOX_PRIVILEGED_GROUP) as
//! its saved set-group-ID and switches to it only to create and remove that lock (and a
//! missing spool INBOX), by name inside the spool directory opened once at login
//! (`bind_spool`): never on a path through the user's own directories, which the user
//! could swap for a symlink to the spool between our check and our use.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub use crate::store::filelock::{Holders, RangeLock, wait_for};

/// `NAME.lock` beside the mbox, held while the store writes.
pub struct DotLock {
    path: PathBuf,
}

impl DotLock {
    pub fn path_for(mbox: &Path) -> PathBuf {
        let mut name = mbox.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        mbox.with_file_name(name)
    }

    pub fn acquire(mbox: &Path) -> io::Result<DotLock> {
        let path = Self::path_for(mbox);
        wait_for(
            || match create_lock_file(&path) {
                Ok(()) => Ok(Some(DotLock { path: path.clone() })),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if is_stale(&path) {
                        crate::log::warning(&format!("breaking stale lock {}", path.display()));
                        let _ = remove_lock_file(&path);
                    }
                    Ok(None)
                }
                Err(e) => Err(e),
            },
            "mbox dot-lock",
            Holders::Anyone,
        )
    }
}

impl Drop for DotLock {
    fn drop(&mut self) {
        let _ = remove_lock_file(&self.path);
    }
}

/// O_EXCL creation: atomic on local file systems and on NFSv3+.
fn create_lock_file(path: &Path) -> io::Result<()> {
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path);
    let mut f = match created {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            create_in_spool(path, 0o644).map_err(|_| e)?
        }
        other => other?,
    };
    // Dovecot's form: who holds it, so a lock left by a killed session on this host can
    // be broken at once instead of after the stale timeout.
    use std::io::Write;
    let _ = write!(f, "{}:{}", std::process::id(), crate::sys::hostname());
    Ok(())
}

fn remove_lock_file(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            remove_in_spool(path).map_err(|_| e)
        }
        other => other,
    }
}

/// The spool directory as opened at login, and the user's INBOX's name in it.
struct Spool {
    dir: std::os::fd::OwnedFd,
    path: PathBuf,
    inbox: std::ffi::OsString,
}

static SPOOL: std::sync::OnceLock<Spool> = std::sync::OnceLock::new();

/// At login, with privileges dropped and `group` kept as saved set-group-ID: open the
/// directory of the spool INBOX `inbox` and check it is `group`'s and group-writable.
/// From then on the privileged group acts only on `INBOX` and `INBOX.lock` in it. If
/// the check fails, the process gives the group up for good.
pub fn bind_spool(inbox: &Path, group: u32) -> io::Result<()> {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let bound = (|| {
        let dir_path = inbox
            .parent()
            .ok_or_else(|| io::Error::other("INBOX has no directory"))?;
        let name = inbox
            .file_name()
            .ok_or_else(|| io::Error::other("INBOX has no name"))?;
        let c = std::ffi::CString::new(dir_path.as_os_str().as_bytes())?;
        // SAFETY: a NUL-terminated path; the descriptor returned is owned below.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and is owned by nobody else.
        let dir = unsafe { OwnedFd::from_raw_fd(fd) };
        let m = std::fs::File::from(dir.try_clone()?).metadata()?;
        if m.gid() != group || m.mode() & 0o020 == 0 {
            return Err(io::Error::other(
                "the spool directory is not the privileged group's",
            ));
        }
        let _ = SPOOL.set(Spool {
            dir,
            path: dir_path.to_path_buf(),
            inbox: name.to_os_string(),
        });
        Ok(())
    })();
    if bound.is_err() {
        crate::sys::give_up_saved_group();
    }
    bound
}

/// `path` names the spool INBOX or its lock: the bound spool and the name inside it.
fn in_spool(path: &Path) -> Option<(&'static Spool, std::ffi::CString)> {
    use std::os::unix::ffi::OsStrExt;
    let spool = SPOOL.get()?;
    if path.parent()? != spool.path {
        return None;
    }
    let name = path.file_name()?;
    let mut lock = spool.inbox.clone();
    lock.push(".lock");
    if name != spool.inbox && name != lock {
        return None;
    }
    Some((spool, std::ffi::CString::new(name.as_bytes()).ok()?))
}

fn not_in_spool() -> io::Error {
    io::Error::from(io::ErrorKind::PermissionDenied)
}

/// Create the spool INBOX or its lock with the privileged group, by name in the spool.
fn create_in_spool(path: &Path, mode: u32) -> io::Result<File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let (spool, name) = in_spool(path).ok_or_else(not_in_spool)?;
    with_privileged_group(|| {
        // SAFETY: a directory descriptor we own and a NUL-terminated name; the new
        // descriptor is owned by the File.
        let fd = unsafe {
            libc::openat(
                spool.dir.as_raw_fd(),
                name.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: just opened, owned by nobody else.
        Ok(unsafe { File::from_raw_fd(fd) })
    })
}

/// Remove the spool INBOX's lock with the privileged group, by name in the spool.
fn remove_in_spool(path: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (spool, name) = in_spool(path).ok_or_else(not_in_spool)?;
    with_privileged_group(|| {
        // SAFETY: a directory descriptor we own and a NUL-terminated name.
        if unsafe { libc::unlinkat(spool.dir.as_raw_fd(), name.as_ptr(), 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    })
}

fn is_stale(path: &Path) -> bool {
    // Only a file that looks like a lock is ever broken: a dot-lock is empty or holds a
    // PID and a host name. Anything bigger is somebody's data (an mbox folder that
    // another program named `X.lock`), never deleted.
    let looks_like_a_lock =
        std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && m.len() <= MAX_LOCK_FILE_SIZE);
    if !looks_like_a_lock {
        return false;
    }
    if holder_is_gone(path) {
        return true;
    }
    let stale = Duration::from_secs(crate::config::MBOX_DOTLOCK_STALE_SECS);
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age > stale)
}

/// What a dot-lock can hold: nothing, or `PID:HOST` (ours, liblockfile's, procmail's).
const MAX_LOCK_FILE_SIZE: u64 = 300;

/// A lock that names a process of this host (`PID:HOST`) that no longer exists.
fn holder_is_gone(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let Some((pid, host)) = text.trim().split_once(':') else {
        return false;
    };
    let Ok(pid) = pid.parse::<i32>() else {
        return false;
    };
    if pid <= 0 || host != crate::sys::hostname() {
        return false;
    }
    // SAFETY: signal 0 only checks whether the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// Run `f` with the effective group switched to the privileged group, when the process
/// keeps that group as its saved set-group-ID (see `sys::drop_privileges_keeping`);
/// otherwise just run it. Only for names in the bound spool (`create_in_spool`).
fn with_privileged_group<T>(f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    let Some(group) = crate::sys::saved_privileged_gid() else {
        return f();
    };
    let own = crate::sys::egid();
    if own == group || !crate::sys::set_egid(group) {
        return f();
    }
    let r = f();
    crate::sys::set_egid(own);
    r
}

/// Open an mbox for reading and writing without following a symlink.
pub fn open_mbox(path: &Path) -> io::Result<File> {
    open_quietly(path, true)
}

/// Open an mbox for reading only, without following a symlink.
pub fn open_mbox_readonly(path: &Path) -> io::Result<File> {
    open_quietly(path, false)
}

/// Without touching the access time where the owner may (O_NOATIME): procmail, seeing a
/// mailbox read in the current second, writes one byte of a delivery and sleeps a whole
/// second holding the lock (its NFS_ATIME_HACK, so that a shell's "new mail" check sees
/// the delivery as newer than the read). Sessions read a busy INBOX every second, so
/// every delivery slept: 20 a minute beside ten sessions. A file of someone else's
/// (EPERM) is opened the ordinary way.
fn open_quietly(path: &Path, write: bool) -> io::Result<File> {
    let open = |flags: libc::c_int| {
        OpenOptions::new()
            .read(true)
            .write(write)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | flags)
            .open(path)
    };
    match open(libc::O_NOATIME) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => open(0),
        other => other,
    }
}

/// Create a missing mbox with what the spool expects: 0600 owned by the user, or, in a
/// setgid spool directory, 0660 with the directory's group (Debian's /var/mail).
pub fn create_mbox(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = path.parent().unwrap_or(Path::new("/"));
    let setgid = std::fs::metadata(dir).is_ok_and(|m| m.mode() & 0o2000 != 0);
    let mode = if setgid { 0o660 } else { 0o600 };
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path);
    let f = match created {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            create_in_spool(path, mode).map_err(|_| e)
        }
        other => other,
    };
    match f {
        Ok(f) => {
            // The umask must not take the group bits the spool needs.
            f.set_permissions(std::fs::Permissions::from_mode(mode))?;
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_looks_like_a_lock_is_ever_broken() {
        let dir = std::env::temp_dir().join(format!("imapd-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let old =
            SystemTime::now() - Duration::from_secs(crate::config::MBOX_DOTLOCK_STALE_SECS + 60);
        // An old lock, empty as procmail leaves it: stale.
        let lock = dir.join("a.lock");
        std::fs::write(&lock, b"").unwrap();
        File::options()
            .write(true)
            .open(&lock)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(is_stale(&lock));
        // A folder another program named `b.lock`, with mail in it: never broken.
        let folder = dir.join("b.lock");
        let mail = "From a@b  Mon Nov 23 10:00:00 2026\nSubject: kept\n\nbody\n".repeat(20);
        std::fs::write(&folder, mail).unwrap();
        File::options()
            .write(true)
            .open(&folder)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(!is_stale(&folder));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
