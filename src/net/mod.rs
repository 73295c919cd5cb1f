//! Transports: inetd (one connection on stdin/stdout) and the mio daemon. Both feed the
//! same protocol engine.

pub mod daemon;
pub mod inetd;

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Run `f` on a session, turning a panic into that session's end (BYE + log line);
/// the process and other sessions go on.
pub fn guarded<T>(
    session: &mut crate::imap::Session,
    f: impl FnOnce(&mut crate::imap::Session) -> T,
) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(|| f(session))) {
        Ok(v) => Some(v),
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            session.internal_error(&what);
            None
        }
    }
}

/// Panics are reported through syslog only: under inetd, stderr is the client's socket.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        crate::log::error(&format!("panic: {info}"));
    }));
}
