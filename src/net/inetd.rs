//! inetd/xinetd mode: one session on stdin/stdout, as UW imapd and ipop3d ran
//! (`imap stream tcp nowait root /usr/sbin/imapd imapd`). A blocking loop: write what
//! the session produced, wait for input or the session's next deadline, repeat.
//!
//! On a TCP connection the socket is made non-blocking, so that a client that stops
//! reading (mid-RETR, mid-FETCH) cannot hold the process, and the maildrop lock, in a
//! write forever: it gets the autologout period, then the session ends. Pipes and
//! terminals (ssh, a shell) are left as they are: their other ends belong to others.

use super::tls::Tls;
use crate::session::{Mode, Peer, Service, guarded};
use std::io;
use std::path::PathBuf;
use std::time::Instant;

pub fn serve(service: &Service, users_file: PathBuf, implicit_tls: bool) -> i32 {
    let addr = crate::sys::peer_of_fd(0);
    // Implicit TLS: asked for in the inetd line (`--tls`), or the imaps/pop3s port, so
    // the stock xinetd files need nothing special.
    let secure =
        implicit_tls || crate::sys::local_port_of_fd(0).is_some_and(|p| p == 993 || p == 995);
    let tls = if secure {
        match Tls::implicit(&addr.map_or("local".into(), |a| a.ip().to_string())) {
            Some(t) => Some(t),
            None => return 1,
        }
    } else {
        None
    };
    let peer = Peer {
        addr,
        mode: Mode::Inetd,
        secure,
        starttls: !secure && addr.is_some() && super::tls::available(),
    };
    run((service.start)(peer, users_file), tls)
}

/// Writes ciphertext to stdout, waiting at most `stall` ms for a client that reads.
struct Stdout {
    stall: i32,
}

impl io::Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        crate::sys::write_all_fd(1, buf, self.stall)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Send `out` (through TLS when up) and everything TLS has to say.
fn send(out: &[u8], tls: &mut Option<Tls>, stall: i32) -> io::Result<()> {
    match tls {
        None => crate::sys::write_all_fd(1, out, stall),
        Some(t) => {
            let mut rest = out;
            loop {
                let n = t.push(rest);
                rest = &rest[n..];
                while t.wants_write() {
                    t.write_to(&mut Stdout { stall })?;
                }
                if rest.is_empty() {
                    return Ok(());
                }
                if n == 0 {
                    return Err(io::Error::other("TLS refused more output"));
                }
            }
        }
    }
}

/// Drive one session on stdin/stdout until it ends (also a session handed off by the
/// root daemon, `net::handoff`).
pub fn run(mut session: Box<dyn crate::session::Protocol>, mut tls: Option<Tls>) -> i32 {
    let peer = crate::sys::peer_of_fd(0);
    let tcp = peer.is_some();
    let peer_text = peer.map_or("local".into(), |a| a.ip().to_string());
    if tcp {
        // stdin and stdout are the same socket; failing this only loses the guard.
        let _ = crate::sys::set_nonblocking(1);
        let _ = crate::sys::set_nonblocking(0);
    }
    let session = session.as_mut();
    let mut buf = vec![0u8; 65536];
    let mut plain = Vec::new();
    loop {
        let out = std::mem::take(session.output());
        if !out.is_empty() || tls.as_ref().is_some_and(|t| t.wants_write()) {
            let stall = session.idle_limit().as_millis().min(i32::MAX as u128) as i32;
            if let Err(e) = send(&out, &mut tls, stall) {
                session.connection_lost(if e.kind() == io::ErrorKind::TimedOut {
                    "autologout: the client stopped reading"
                } else {
                    "connection closed"
                });
                session.finish();
                return 0;
            }
        }
        if session.take_starttls() {
            // The "begin TLS" answer went out in the clear above; the rest is TLS.
            match Tls::new() {
                Some(t) => {
                    tls = Some(t);
                    session.tls_started();
                }
                None => {
                    crate::log::error("STARTTLS: certificate no longer available");
                    session.connection_lost("TLS unavailable");
                    session.finish();
                    return 1;
                }
            }
            continue;
        }
        if session.is_closed() {
            if let Some(t) = tls.as_mut() {
                t.close();
                let _ = send(&[], &mut tls, 2000);
            }
            if tcp {
                linger();
            }
            return 0;
        }
        let Some(step) = guarded(session, |s| s.step(Instant::now())) else {
            continue;
        };
        if let Some(login) = session.take_login() {
            // This process becomes the user (`privsep`), then the session goes on.
            let store = super::privsep::open_here(&login.user, Mode::Inetd, &login.peer);
            guarded(session, |s| s.enter(login, store));
            continue;
        }
        if !session.output().is_empty() || session.is_closed() {
            continue;
        }
        if step.busy {
            continue;
        }
        let timeout = step
            .deadline
            .map(|d| {
                d.saturating_duration_since(Instant::now())
                    .as_millis()
                    .min(i32::MAX as u128) as i32
            })
            .unwrap_or(-1);
        if !session.wants_input() {
            // Its input is full and its job waits (parked on a lock): until it is due.
            if timeout > 0 {
                std::thread::sleep(std::time::Duration::from_millis(timeout as u64));
            }
            continue;
        }
        match crate::sys::poll_readable(0, timeout) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(_) => {
                session.finish();
                return 1;
            }
        }
        match crate::sys::read_fd(0, &mut buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Ok(0) | Err(_) => {
                session.connection_lost("connection closed");
                session.finish();
                return 0;
            }
            Ok(n) => match tls.as_mut() {
                None => {
                    guarded(session, |s| s.feed(&buf[..n]));
                }
                Some(t) => {
                    plain.clear();
                    if let Err(e) = t.receive(&buf[..n], &mut plain) {
                        crate::log::notice(&format!("TLS failed peer={peer_text} error={e}"));
                        // Tell the client why, if TLS got far enough to say it.
                        let _ = send(&[], &mut tls, 2000);
                        session.connection_lost("TLS error");
                        session.finish();
                        return 0;
                    }
                    if t.just_established() {
                        crate::log::info(&format!(
                            "TLS established peer={peer_text} {}",
                            t.describe()
                        ));
                    }
                    if !plain.is_empty() {
                        guarded(session, |s| s.feed(&plain));
                    }
                }
            },
        }
    }
}

/// After the last words (a BYE, an -ERR before closing): end our side and take what the
/// client still sends for a moment. Closing with unread input makes the kernel reset
/// the connection, and a reset can destroy the last words before the client reads them.
fn linger() {
    if crate::sys::shutdown_write(1).is_err() {
        return;
    }
    let deadline = Instant::now() + std::time::Duration::from_secs(2);
    let mut buf = [0u8; 16384];
    let mut taken = 0usize;
    while taken < 1 << 20 {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_millis() as i32;
        if left <= 0 || !matches!(crate::sys::poll_readable(0, left), Ok(true)) {
            return;
        }
        match crate::sys::read_fd(0, &mut buf) {
            Ok(0) => return,
            Ok(n) => taken += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}
