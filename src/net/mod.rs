//! Transports: inetd (one connection on stdin/stdout) and the mio daemon. Both drive
//! protocol engines (IMAP, POP3) through `session::Protocol`; a `session::Service`
//! says which engine a listener or an inetd process speaks.

pub mod daemon;
pub mod handoff;
pub mod inetd;
pub mod privsep;
pub mod tls;

/// Panics are reported through syslog only: under inetd, stderr is the client's socket.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        crate::log::error(&format!("panic: {info}"));
    }));
}
