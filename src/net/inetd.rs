//! inetd/xinetd mode: one session on stdin/stdout, as UW imapd and ipop3d ran
//! (`imap stream tcp nowait root /usr/sbin/imapd imapd`). A blocking loop: write what
//! the session produced, wait for input or the session's next deadline, repeat.
//!
//! On a TCP connection the socket is made non-blocking, so that a client that stops
//! reading (mid-RETR, mid-FETCH) cannot hold the process, and the maildrop lock, in a
//! write forever: it gets the autologout period, then the session ends. Pipes and
//! terminals (ssh, a shell) are left as they are: their other ends belong to others.

use super::{Mode, Peer, Service, guarded};
use std::io;
use std::path::PathBuf;
use std::time::Instant;

pub fn serve(service: &Service, users_file: PathBuf) -> i32 {
    let peer = Peer {
        addr: crate::sys::peer_of_fd(0),
        mode: Mode::Inetd,
    };
    run((service.start)(peer, users_file))
}

/// Drive one session on stdin/stdout until it ends (also a session handed off by the
/// root daemon, `net::handoff`).
pub fn run(mut session: Box<dyn super::Protocol>) -> i32 {
    let tcp = crate::sys::peer_of_fd(0).is_some();
    if tcp {
        // stdin and stdout are the same socket; failing this only loses the guard.
        let _ = crate::sys::set_nonblocking(1);
        let _ = crate::sys::set_nonblocking(0);
    }
    let session = session.as_mut();
    let mut buf = vec![0u8; 65536];
    loop {
        let out = std::mem::take(session.output());
        if !out.is_empty() {
            let stall = session.idle_limit().as_millis().min(i32::MAX as u128) as i32;
            match crate::sys::write_all_fd(1, &out, stall) {
                Ok(()) => {}
                Err(e) => {
                    session.connection_lost(if e.kind() == io::ErrorKind::TimedOut {
                        "autologout: the client stopped reading"
                    } else {
                        "connection closed"
                    });
                    session.finish();
                    return 0;
                }
            }
        }
        if session.is_closed() {
            if tcp {
                linger();
            }
            return 0;
        }
        let Some(step) = guarded(session, |s| s.step(Instant::now())) else {
            continue;
        };
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
            Ok(n) => {
                guarded(session, |s| s.feed(&buf[..n]));
            }
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
