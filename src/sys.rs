//! Every `unsafe` call of the crate lives here: libc wrappers for time zones, peer
//! addresses, identities and privilege drop, and libxcrypt's crypt_r.
//! Each block says why it is sound.

use std::ffi::{CStr, CString, c_char, c_int};
use std::io;

unsafe extern "C" {
    fn tzset();
}

/// Offset of local time from UTC at `t`, in seconds (honours TZ).
pub fn utc_offset(t: i64) -> i32 {
    let tt = t as libc::time_t;
    // SAFETY: localtime_r writes only into the zeroed `tm` we own; tzset is idempotent.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        tzset();
        if libc::localtime_r(&tt, &mut tm).is_null() {
            return 0;
        }
        tm.tm_gmtoff as i32
    }
}

/// The peer of a socket on `fd` (stdin under inetd), as `ip:port`, or None for a
/// pipe or terminal.
pub fn peer_of_fd(fd: c_int) -> Option<std::net::SocketAddr> {
    // SAFETY: getpeername writes at most `len` bytes into the zeroed storage we own.
    let (storage, len) = unsafe {
        let mut storage: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        if libc::getpeername(fd, &mut storage as *mut _ as *mut libc::sockaddr, &mut len) != 0 {
            return None;
        }
        (storage, len)
    };
    match storage.ss_family as c_int {
        libc::AF_INET if len as usize >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and it is large enough.
            let a: libc::sockaddr_in = unsafe { std::ptr::read(&storage as *const _ as *const _) };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some((ip, u16::from_be(a.sin_port)).into())
        }
        libc::AF_INET6 if len as usize >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let a: libc::sockaddr_in6 = unsafe { std::ptr::read(&storage as *const _ as *const _) };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            // A dual-stack listener (systemd's ListenStream=143, xinetd's IPv6 flag)
            // hands IPv4 peers over as ::ffff:a.b.c.d: log and check them as IPv4.
            match ip.to_ipv4_mapped() {
                Some(v4) => Some((v4, u16::from_be(a.sin6_port)).into()),
                None => Some((ip, u16::from_be(a.sin6_port)).into()),
            }
        }
        _ => None,
    }
}

pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

pub fn egid() -> u32 {
    // SAFETY: as geteuid.
    unsafe { libc::getegid() }
}

/// Name and home directory of a uid, from NSS (getpwuid_r).
pub fn user_of_uid(uid: u32) -> Option<(String, String)> {
    let mut buf = vec![0 as c_char; 16384];
    // SAFETY: getpwuid_r fills `pw` with pointers into `buf`, which outlives their use below.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut result);
        if rc != 0 || result.is_null() {
            return None;
        }
        let name = CStr::from_ptr(pw.pw_name).to_string_lossy().into_owned();
        let home = CStr::from_ptr(pw.pw_dir).to_string_lossy().into_owned();
        Some((name, home))
    }
}

/// Become `uid`/`gid` for good: supplementary groups, gid, uid, then check that root
/// cannot be regained. Called before any mail file is opened.
pub fn drop_privileges(uid: u32, gid: u32) -> io::Result<()> {
    drop_privileges_keeping(uid, gid, &[gid], None)
}

/// Like `drop_privileges`, but keep `group` as the saved set-group-ID, so that the
/// process can switch its effective group to it for a moment (the mbox spool's dot-lock)
/// and back. `groups` become the supplementary groups (the user's own).
pub fn drop_privileges_keeping(
    uid: u32,
    gid: u32,
    groups: &[u32],
    group: Option<u32>,
) -> io::Result<()> {
    if uid == 0 {
        return Err(io::Error::other("refusing to serve mail as uid 0"));
    }
    let groups: Vec<libc::gid_t> = groups.to_vec();
    // SAFETY: plain system calls with a valid group array of the length given.
    unsafe {
        if libc::setgroups(groups.len(), groups.as_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::setresgid(gid, gid, group.unwrap_or(gid)) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::setresuid(uid, uid, uid) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::setuid(0) == 0 || libc::seteuid(0) == 0 {
            return Err(io::Error::other(
                "root privileges could be regained after setuid",
            ));
        }
    }
    Ok(())
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into our buffer.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut c_char, buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// libxcrypt's `struct crypt_data` is 32768 bytes (crypt.h: CRYPT_DATA_INTERNAL_SIZE etc.).
#[repr(C)]
struct CryptData {
    opaque: [u8; 32768],
}

#[link(name = "crypt")]
unsafe extern "C" {
    fn crypt_r(phrase: *const c_char, setting: *const c_char, data: *mut CryptData) -> *mut c_char;
    fn crypt_gensalt_rn(
        prefix: *const c_char,
        count: std::ffi::c_ulong,
        rbytes: *const c_char,
        nrbytes: c_int,
        output: *mut c_char,
        output_size: c_int,
    ) -> *mut c_char;
}

/// A fresh setting (salt) for libxcrypt's default method and cost: what `passwd` would
/// use for a new password on this system (yescrypt on Debian 11+ and RHEL 9).
pub fn default_setting() -> Option<String> {
    let mut out = [0 as c_char; 256];
    // SAFETY: a NULL prefix and NULL rbytes ask for the default method and the OS's
    // random bytes; `out` is large enough (CRYPT_GENSALT_OUTPUT_SIZE is 192) and its
    // size is passed; the result is a NUL-terminated string in `out`.
    unsafe {
        let r = crypt_gensalt_rn(
            std::ptr::null(),
            0,
            std::ptr::null(),
            0,
            out.as_mut_ptr(),
            out.len() as c_int,
        );
        if r.is_null() {
            return None;
        }
        let s = CStr::from_ptr(out.as_ptr()).to_string_lossy().into_owned();
        if s.starts_with('*') { None } else { Some(s) }
    }
}

/// crypt(3) of `password` with the salt and method of `setting` (a full hash such as
/// `$y$...`, `$6$...`): what login(1) and pam_unix compute. None on any failure,
/// including libxcrypt's failure tokens (which start with `*`).
pub fn crypt(password: &[u8], setting: &str) -> Option<String> {
    let phrase = CString::new(password).ok()?;
    let setting = CString::new(setting).ok()?;
    let mut data: Box<CryptData> = Box::new(CryptData { opaque: [0; 32768] });
    // SAFETY: both strings are NUL-terminated and live across the call; `data` is a
    // zeroed crypt_data as crypt_r requires; the result points into `data`, copied
    // out before `data` is dropped.
    unsafe {
        let out = crypt_r(phrase.as_ptr(), setting.as_ptr(), &mut *data);
        if out.is_null() {
            return None;
        }
        let s = CStr::from_ptr(out).to_string_lossy().into_owned();
        if s.starts_with('*') { None } else { Some(s) }
    }
}

/// Raise the soft open-file limit to the hard limit (the daemon holds a socket per client).
pub fn raise_nofile_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit read and write the struct we own.
    unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
            return 0;
        }
        rl.rlim_cur = rl.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        rl.rlim_cur as u64
    }
}

/// A long-running daemon's heap should go back to its size when a burst of load ends.
/// glibc's malloc keeps what a burst freed: once a large buffer (a message being sent, a
/// COPY batch) has been freed, its adaptive threshold serves the next ones from the heap
/// instead of fresh mappings, and each worker thread's arena keeps its own free pages.
/// A fixed threshold sends buffers over 256 KiB to mmap (unmapped when freed), at most
/// `arenas` arenas are shared by all threads (each keeps the pages its frees leave
/// partly used: a long-running daemon grows with their number), and a thread returns
/// the arenas' free pages every `interval`. Call it before starting threads.
pub fn return_freed_memory(interval: std::time::Duration, arenas: usize) {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: mallopt and malloc_trim only adjust and walk glibc's own heap.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 10);
            if arenas > 0 {
                libc::mallopt(libc::M_ARENA_MAX, arenas.min(i32::MAX as usize) as i32);
            }
        }
        let _ = std::thread::Builder::new()
            .name("trim".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(interval);
                    // SAFETY: as above.
                    unsafe {
                        libc::malloc_trim(0);
                    }
                }
            });
    }
    #[cfg(not(target_env = "gnu"))]
    let _ = (interval, arenas);
}

/// Set the file creation mask (mail files are private to their owner).
pub fn set_umask(mask: u32) {
    // SAFETY: umask only changes the process's mask and cannot fail.
    unsafe {
        libc::umask(mask as libc::mode_t);
    }
}

/// Wait until `fd` is readable or `timeout_ms` passes (-1: forever). Ok(true) if readable
/// (or hung up: the read will say so).
pub fn poll_readable(fd: c_int, timeout_ms: i32) -> io::Result<bool> {
    poll_for(fd, libc::POLLIN, timeout_ms)
}

/// Wait until `fd` takes more output (or has failed: the write will say so).
pub fn poll_writable(fd: c_int, timeout_ms: i32) -> io::Result<bool> {
    poll_for(fd, libc::POLLOUT, timeout_ms)
}

fn poll_for(fd: c_int, events: libc::c_short, timeout_ms: i32) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd we own, count 1.
        let rc = unsafe { libc::poll(&mut p, 1, timeout_ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(rc > 0);
    }
}

/// read(2) on a raw descriptor (stdin under inetd), retrying on EINTR.
pub fn read_fd(fd: c_int, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is valid for buf.len() bytes of writing.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// write(2) all of `buf` to a raw descriptor (stdout under inetd).
/// Write all of `buf`; on a non-blocking descriptor, wait for room, but give up with
/// `TimedOut` when the reader takes nothing for `stall_ms`.
pub fn write_all_fd(fd: c_int, mut buf: &[u8], stall_ms: i32) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: buf is valid for buf.len() bytes of reading.
        let n = unsafe { libc::write(fd, buf.as_ptr() as *const libc::c_void, buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => {
                    if !poll_writable(fd, stall_ms)? {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the client stopped reading",
                        ));
                    }
                    continue;
                }
                _ => return Err(e),
            }
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// Half-close a socket: the client sees our end of the stream after the last byte.
pub fn shutdown_write(fd: c_int) -> io::Result<()> {
    // SAFETY: shutdown on a descriptor number; an invalid one is an error return.
    if unsafe { libc::shutdown(fd, libc::SHUT_WR) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Make `fd` non-blocking (for the whole open file: under inetd, the client's socket).
pub fn set_nonblocking(fd: c_int) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor number; an invalid one is an error return.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above, setting flags built from the ones just read.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// uid, gid and home of a user name, from NSS (getpwnam_r).
pub fn lookup_user(name: &str) -> Option<(u32, u32, String)> {
    passwd_entry(name).map(|a| (a.uid, a.gid, a.home))
}

/// chown(2), for the demo's files when it runs as root.
pub fn chown(path: &std::path::Path, uid: u32, gid: u32) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c =
        CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::other("NUL in path"))?;
    // SAFETY: a NUL-terminated path that lives across the call.
    if unsafe { libc::lchown(c.as_ptr(), uid, gid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Give an open file another name, `to` (a hard link): linkat(2) of /proc/self/fd/N
/// with AT_SYMLINK_FOLLOW, as its manual page shows, links the very file that was
/// opened, whatever its name has become since, with no privilege needed. EXDEV when
/// `to` is on another filesystem; ENOENT without /proc.
pub fn link_open_file(file: &std::fs::File, to: &std::path::Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let from = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map_err(|_| io::Error::other("NUL in path"))?;
    let to =
        CString::new(to.as_os_str().as_bytes()).map_err(|_| io::Error::other("NUL in path"))?;
    // SAFETY: two NUL-terminated paths that live across the call.
    let r = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Take an exclusive flock(2) on `file` without waiting: Ok(false) if another open file
/// description holds it (another process, or another session of this daemon). The lock
/// goes with the descriptor, so a killed process never leaves it behind.
pub fn try_lock_exclusive(file: &std::fs::File) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: flock on a descriptor the File keeps open for the duration of the call.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(e),
        }
    }
}

/// A system account as NSS and the shadow database describe it.
pub struct Account {
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    /// passwd's own password field (`x` when the hash is in shadow).
    pub passwd_hash: String,
    pub shadow: Option<Shadow>,
}

pub struct Shadow {
    pub hash: String,
    /// Expiry day (days since the epoch); -1: never.
    pub expire: i64,
}

/// getpwnam_r, then getspnam_r (readable by root only: that is where logins are checked).
pub fn account(name: &str) -> Option<Account> {
    account_entry(name, true)
}

/// The passwd entry alone (uid, gid, home): what everything but the password check
/// needs, without reading /etc/shadow.
pub fn passwd_entry(name: &str) -> Option<Account> {
    account_entry(name, false)
}

fn account_entry(name: &str, with_shadow: bool) -> Option<Account> {
    let cname = CString::new(name).ok()?;
    let mut buf = vec![0 as c_char; 16384];
    // SAFETY: getpwnam_r/getspnam_r fill the structs with pointers into `buf`, which
    // outlives every use below.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwnam_r(
            cname.as_ptr(),
            &mut pw,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        if rc != 0 || result.is_null() {
            return None;
        }
        let text = |p: *const c_char| {
            if p.is_null() {
                String::new()
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        let mut acct = Account {
            uid: pw.pw_uid,
            gid: pw.pw_gid,
            home: text(pw.pw_dir),
            passwd_hash: text(pw.pw_passwd),
            shadow: None,
        };
        if !with_shadow {
            return Some(acct);
        }
        let mut sbuf = vec![0 as c_char; 16384];
        let mut sp: libc::spwd = std::mem::zeroed();
        let mut sresult: *mut libc::spwd = std::ptr::null_mut();
        let rc = libc::getspnam_r(
            cname.as_ptr(),
            &mut sp,
            sbuf.as_mut_ptr(),
            sbuf.len(),
            &mut sresult,
        );
        if rc == 0 && !sresult.is_null() {
            acct.shadow = Some(Shadow {
                hash: text(sp.sp_pwdp),
                expire: sp.sp_expire as i64,
            });
        }
        Some(acct)
    }
}

/// The user's groups (primary first), as initgroups(3) would set them.
pub fn groups_of(name: &str, gid: u32) -> Vec<u32> {
    let Ok(cname) = CString::new(name) else {
        return vec![gid];
    };
    let mut n: c_int = 64;
    loop {
        let mut groups = vec![0 as libc::gid_t; n as usize];
        // SAFETY: getgrouplist writes at most `n` gids and sets `n` to the count.
        let rc = unsafe { libc::getgrouplist(cname.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
        if rc >= 0 {
            groups.truncate(n as usize);
            return groups;
        }
        if n > 65536 {
            return vec![gid];
        }
        n = n.max(64) * 2;
    }
}

/// A listening TCP socket, non-blocking and close-on-exec. An IPv6 address listens on
/// IPv6 only (IPV6_V6ONLY), so `--listen 0.0.0.0:143 --listen [::]:143` binds both, as
/// Dovecot's `listen = *, ::` does, and IPv4 peers keep their IPv4 addresses in logs.
pub fn tcp_listener(addr: std::net::SocketAddr) -> io::Result<std::net::TcpListener> {
    use std::os::fd::FromRawFd;
    // SAFETY: the socket is ours until wrapped; the sockaddr structs are zeroed, filled
    // and passed with their own sizes.
    unsafe {
        let family = if addr.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        let fd = libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let listener = std::net::TcpListener::from_raw_fd(fd);
        let on: c_int = 1;
        let set = |level, name| {
            let p = &on as *const c_int as *const libc::c_void;
            let len = std::mem::size_of::<c_int>() as libc::socklen_t;
            if libc::setsockopt(fd, level, name, p, len) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        };
        set(libc::SOL_SOCKET, libc::SO_REUSEADDR)?;
        let rc = match addr {
            std::net::SocketAddr::V4(a) => {
                let mut sa: libc::sockaddr_in = std::mem::zeroed();
                sa.sin_family = libc::AF_INET as libc::sa_family_t;
                sa.sin_port = a.port().to_be();
                sa.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
                let len = std::mem::size_of_val(&sa) as libc::socklen_t;
                libc::bind(fd, &sa as *const _ as *const libc::sockaddr, len)
            }
            std::net::SocketAddr::V6(a) => {
                set(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY)?;
                let mut sa: libc::sockaddr_in6 = std::mem::zeroed();
                sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sa.sin6_port = a.port().to_be();
                sa.sin6_addr.s6_addr = a.ip().octets();
                sa.sin6_scope_id = a.scope_id();
                let len = std::mem::size_of_val(&sa) as libc::socklen_t;
                libc::bind(fd, &sa as *const _ as *const libc::sockaddr, len)
            }
        };
        if rc != 0 || libc::listen(fd, 1024) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(listener)
    }
}

/// The local port of a socket (getsockname), e.g. 993 for an imaps connection.
pub fn local_port_of_fd(fd: c_int) -> Option<u16> {
    // SAFETY: getsockname writes at most `len` bytes into the storage.
    unsafe {
        let mut ss: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        if libc::getsockname(fd, &mut ss as *mut _ as *mut libc::sockaddr, &mut len) != 0 {
            return None;
        }
        match ss.ss_family as c_int {
            libc::AF_INET => {
                let a = &*(&ss as *const _ as *const libc::sockaddr_in);
                Some(u16::from_be(a.sin_port))
            }
            libc::AF_INET6 => {
                let a = &*(&ss as *const _ as *const libc::sockaddr_in6);
                Some(u16::from_be(a.sin6_port))
            }
            _ => None,
        }
    }
}

static HUP_FLAG: std::sync::atomic::AtomicPtr<std::sync::atomic::AtomicBool> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

extern "C" fn on_hup(_: c_int) {
    let p = HUP_FLAG.load(std::sync::atomic::Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: `p` points to a static AtomicBool (set in `on_sighup`).
        unsafe { (*p).store(true, std::sync::atomic::Ordering::Release) };
    }
}

/// SIGHUP sets `flag` (the daemon then reloads its certificate); a system call the
/// signal interrupts returns EINTR, so the event loop sees it at once.
pub fn on_sighup(flag: &'static std::sync::atomic::AtomicBool) {
    HUP_FLAG.store(
        flag as *const _ as *mut std::sync::atomic::AtomicBool,
        std::sync::atomic::Ordering::Release,
    );
    // SAFETY: installing a handler that only does an atomic store.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_hup as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGHUP, &sa, std::ptr::null_mut());
    }
}

/// Collect every child that has exited, without waiting (the root daemon's session
/// processes). SIGCHLD keeps its default disposition: with it ignored, std's spawn
/// cannot wait for a child whose exec failed, and panics.
pub fn reap_children() {
    let mut status = 0;
    // SAFETY: waitpid with WNOHANG writes the status through a valid pointer.
    while unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } > 0 {}
}

/// This program's executable, opened now, for running it again later even after the
/// file has been replaced or removed (a package upgrade unlinks it): the path to exec
/// is `/proc/self/fd/N`, which stays the same inode for as long as we hold it.
pub fn own_executable() -> std::io::Result<std::path::PathBuf> {
    use std::os::fd::IntoRawFd;
    let f = std::fs::File::open("/proc/self/exe")?;
    // Kept open for the life of the process. It is close-on-exec, which is fine: exec
    // resolves the path before it closes anything.
    let fd = f.into_raw_fd();
    Ok(std::path::PathBuf::from(format!("/proc/self/fd/{fd}")))
}

/// Between fork and exec: let exec close every descriptor from `from` up. Marked
/// close-on-exec rather than closed now, so that what must live until exec (std's
/// error pipe, the program's own descriptor) still does. Async-signal-safe: one
/// close_range (Linux 5.11), else fcntl on each number up to the descriptor limit.
pub fn close_on_exec_from(from: i32) -> std::io::Result<()> {
    // SAFETY: close_range only changes flags of descriptors in the range.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            from as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes through a valid pointer.
    let max = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur.min(1 << 16) as i32
    } else {
        1 << 16
    };
    for fd in from..max {
        // SAFETY: fcntl on a descriptor number; EBADF for unused ones is ignored.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// The group kept as saved set-group-ID by `drop_privileges_keeping`, if any.
pub fn saved_privileged_gid() -> Option<u32> {
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: getresgid writes three gid_t through valid pointers.
    if unsafe { libc::getresgid(&mut r, &mut e, &mut s) } != 0 {
        return None;
    }
    (s != r).then_some(s)
}

/// Drop the saved set-group-ID kept by `drop_privileges_keeping`: the group is gone
/// for good (real, effective and saved become the real group).
pub fn give_up_saved_group() {
    // SAFETY: plain system calls.
    unsafe {
        let g = libc::getgid();
        libc::setresgid(g, g, g);
    }
}

/// Switch the effective group (to the saved or real one); false if not allowed.
pub fn set_egid(gid: u32) -> bool {
    // SAFETY: plain system call.
    unsafe { libc::setegid(gid) == 0 }
}

/// The gid of a group name.
pub fn group_gid(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as c_char; 16384];
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: getgrnam_r fills grp using buf; result says whether it found one.
    let rc = unsafe {
        libc::getgrnam_r(
            c.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    (rc == 0 && !result.is_null()).then_some(grp.gr_gid)
}

#[cfg(test)]
mod tests {
    #[test]
    fn crypt_sha512_known_vector() {
        // From the glibc/libxcrypt SHA-crypt test vectors.
        let h = "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1";
        assert_eq!(super::crypt(b"Hello world!", h).as_deref(), Some(h));
        assert_ne!(super::crypt(b"hello world!", h).as_deref(), Some(h));
    }
}
