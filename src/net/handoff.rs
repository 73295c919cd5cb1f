//! Privilege separation in daemon mode. A daemon running as root does only what comes
//! before a login (accept, greeting, CAPABILITY, LOGIN/AUTHENTICATE/USER+PASS, the
//! password check); a session that logs in is handed to a new process of this program
//! (`--handoff PROTOCOL`), which gets the client's socket as stdin/stdout and the
//! session's state on fd 3, drops to the user exactly as an inetd process does, and
//! answers the login. The client sees one unbroken session; the root daemon never
//! opens a mail file, and the serving process holds only the user's identity.
//!
//! State on fd 3, netstring-like fields (`LEN:BYTES`): user, uid, gid, mail location,
//! login method, IMAP tag, input the client sent after the login command, output not
//! yet written.

use crate::auth::User;
use crate::session::{Handoff, Mode, Peer, Service};
use crate::store::MailLocation;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn put(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(format!("{}:", field.len()).as_bytes());
    out.extend_from_slice(field);
}

fn take<'a>(data: &mut &'a [u8]) -> Option<&'a [u8]> {
    let colon = data.iter().position(|&c| c == b':')?;
    let len: usize = std::str::from_utf8(&data[..colon]).ok()?.parse().ok()?;
    let rest = &data[colon + 1..];
    let field = rest.get(..len)?;
    *data = &rest[len..];
    Some(field)
}

impl Handoff {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let opt = |v: Option<u32>| v.map(|n| n.to_string()).unwrap_or_default();
        let mail = self.user.mail.to_string();
        for f in [
            self.user.name.as_bytes(),
            opt(self.user.uid).as_bytes(),
            opt(self.user.gid).as_bytes(),
            mail.as_bytes(),
            self.method.as_bytes(),
            self.tag.as_bytes(),
            &self.input,
            &self.output,
            self.peer.as_bytes(),
        ] {
            put(&mut out, f);
        }
        out
    }

    pub fn decode(mut data: &[u8]) -> Option<Handoff> {
        let d = &mut data;
        let text = |f: &[u8]| String::from_utf8(f.to_vec()).ok();
        let num = |f: &[u8]| -> Option<Option<u32>> {
            if f.is_empty() {
                Some(None)
            } else {
                std::str::from_utf8(f).ok()?.parse().ok().map(Some)
            }
        };
        let name = text(take(d)?)?;
        let uid = num(take(d)?)?;
        let gid = num(take(d)?)?;
        let mail = MailLocation::parse(&text(take(d)?)?)?;
        Some(Handoff {
            user: User {
                name,
                uid,
                gid,
                mail,
            },
            method: text(take(d)?)?,
            tag: text(take(d)?)?,
            input: take(d)?.to_vec(),
            output: take(d)?.to_vec(),
            peer: text(take(d)?)?,
        })
    }
}

/// Parent: start the user's process on `socket` and give it the state. The caller then
/// closes its own descriptor of the socket (without shutting it down).
pub fn spawn(
    socket: RawFd,
    service: &Service,
    users_file: &std::path::Path,
    h: &Handoff,
) -> io::Result<()> {
    let dup = |fd: RawFd| -> io::Result<OwnedFd> {
        // SAFETY: fcntl F_DUPFD_CLOEXEC returns a new descriptor we then own.
        let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `n` is a fresh descriptor nobody else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(n) })
    };
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 fills two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both are fresh descriptors we own from here.
    let (state_r, state_w) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let exe = match crate::config::SESSION_PROGRAM {
        "" => session_program()?,
        program => PathBuf::from(program),
    };
    let mut cmd = Command::new(exe);
    // Nothing of the root daemon's environment: a session needs only a PATH.
    cmd.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    cmd.arg("--handoff")
        .arg(service.name)
        .arg("--users")
        .arg(users_file)
        .arg("--log-socket")
        .arg(crate::log::socket_path())
        .stdin(Stdio::from(dup(socket)?))
        .stdout(Stdio::from(dup(socket)?))
        .stderr(Stdio::null());
    let r = state_r.as_raw_fd();
    use std::os::unix::process::CommandExt;
    // SAFETY: only dup2 and close_range (async-signal-safe) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(r, 3) < 0 {
                return Err(io::Error::last_os_error());
            }
            // No descriptor of the daemon's (other clients' sockets, listeners, log and
            // TLS files) reaches the user's process: only 0-2 and the state on 3.
            crate::sys::close_on_exec_from(4)
        });
    }
    let child = cmd.spawn()?;
    drop(state_r);
    let mut w = std::fs::File::from(state_w);
    w.write_all(&h.encode())?;
    drop(w);
    // Reaped by the daemon's loop (sys::reap_children).
    drop(child);
    Ok(())
}

/// The program a session process runs: this daemon's own executable, opened once, so
/// that a package upgrade that replaces /usr/sbin/imapd does not leave `current_exe()`
/// naming a deleted file (exec would fail for every login until a restart).
fn session_program() -> io::Result<PathBuf> {
    static OWN: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    OWN.get_or_init(|| crate::sys::own_executable().map_err(|e| e.to_string()))
        .clone()
        .map_err(io::Error::other)
}

/// Open our executable now (the daemon calls this at start, before anything can
/// replace it).
pub fn prepare() {
    let _ = session_program();
}

/// Child (`imapd --handoff imapd`): read the state, become the user, go on as inetd.
pub fn serve(service: &'static Service, users_file: PathBuf) -> i32 {
    if crate::sys::euid() != 0 {
        // Only a root daemon hands sessions off; nobody else may claim a login.
        crate::log::error("--handoff refused: not started by the root daemon");
        return 1;
    }
    // SAFETY: fd 3 is the state pipe the daemon set up; we own it from here.
    let mut state = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(3) });
    let mut data = Vec::new();
    if state.read_to_end(&mut data).is_err() {
        return 1;
    }
    drop(state);
    let Some(h) = Handoff::decode(&data) else {
        crate::log::error("--handoff: damaged session state");
        return 1;
    };
    let peer = Peer {
        addr: crate::sys::peer_of_fd(0),
        mode: Mode::Inetd,
        secure: false,
        starttls: false,
    };
    let session = (service.resume)(peer, users_file, h);
    super::inetd::run(session, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trip() {
        let h = Handoff {
            user: User {
                name: "alice".into(),
                uid: Some(1000),
                gid: None,
                mail: MailLocation::Mbox {
                    inbox: "/var/mail/alice".into(),
                    folders: "/home/alice/mail".into(),
                },
            },
            method: "LOGIN".into(),
            tag: "a1".into(),
            input: b"a2 SELECT INBOX\r\n".to_vec(),
            output: b"".to_vec(),
            peer: "192.0.2.1".into(),
        };
        let d = Handoff::decode(&h.encode()).unwrap();
        assert_eq!(d.user.name, "alice");
        assert_eq!((d.user.uid, d.user.gid), (Some(1000), None));
        assert_eq!(d.user.mail, h.user.mail);
        assert_eq!(d.input, h.input);
        assert!(Handoff::decode(&h.encode()[..20]).is_none());
    }
}
