//! inetd/xinetd mode: one session on stdin/stdout, as UW imapd and ipop3d ran
//! (`imap stream tcp nowait root /usr/sbin/imapd imapd`). A blocking loop: write what
//! the session produced, wait for input or the session's next deadline, repeat.

use super::{Mode, Peer, Service, guarded};
use std::path::PathBuf;
use std::time::Instant;

pub fn serve(service: &Service, users_file: PathBuf) -> i32 {
    let peer = Peer {
        addr: crate::sys::peer_of_fd(0),
        mode: Mode::Inetd,
    };
    let mut session = (service.start)(peer, users_file);
    let session = session.as_mut();
    let mut buf = vec![0u8; 65536];
    loop {
        let out = std::mem::take(session.output());
        if !out.is_empty() && crate::sys::write_all_fd(1, &out).is_err() {
            session.connection_lost();
            session.finish();
            return 0;
        }
        if session.is_closed() {
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
            Ok(0) | Err(_) => {
                session.connection_lost();
                session.finish();
                return 0;
            }
            Ok(n) => {
                guarded(session, |s| s.feed(&buf[..n]));
            }
        }
    }
}
