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

#[cfg(test)]
mod tests {
    use crate::imap::{Mode, Session};

    #[test]
    fn a_panic_ends_only_its_session_with_bye() {
        let mut s = Session::new(Mode::Daemon, "test".into(), "/nonexistent".into(), None);
        s.output().clear();
        let r: Option<()> = super::guarded(&mut s, |_| panic!("boom"));
        assert!(r.is_none());
        assert!(s.is_closed());
        assert!(String::from_utf8_lossy(s.output()).starts_with("* BYE Internal server error"));
        // Another session is untouched and answers.
        let mut other = Session::new(Mode::Daemon, "test".into(), "/nonexistent".into(), None);
        other.output().clear();
        other.feed(b"a NOOP\r\n");
        super::guarded(&mut other, |s| s.step(std::time::Instant::now()));
        assert_eq!(String::from_utf8_lossy(other.output()), "a OK Done\r\n");
    }
}
