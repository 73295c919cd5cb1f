//! Syslog lines (RFC 3164 datagrams to /dev/log), facility and ident from config.
//!
//! Line formats an admin or fail2ban can match:
//!   `login user=<u> peer=<addr> method=<LOGIN|AUTHENTICATE|PREAUTH>`
//!   `login failed user=<u> peer=<addr> reason=<text>`
//!   `logout user=<u> peer=<addr> reason=<text>`
//!   `protocol error peer=<addr> user=<u> error=<text>`
//! A user name is what a client sent: it goes through `value`, so it can never hold a
//! space, `=` or a line end, and `user=<u> peer=` always ends at the real peer (a name
//! `x peer=203.0.113.66` would otherwise make fail2ban ban that address).
//! Logging never blocks a session and never fails it: a missing syslog socket drops lines.

use std::os::unix::net::UnixDatagram;
use std::sync::Mutex;

struct Logger {
    socket: Option<UnixDatagram>,
    path: String,
    ident: String,
    facility: u8,
    also_stderr: bool,
}

static LOGGER: Mutex<Option<Logger>> = Mutex::new(None);

/// Octets of a client-supplied value logged at most (more is cut, `...` after it).
const MAX_VALUE: usize = 64;

/// A client-supplied value as one log token: letters, digits and `. _ @ + - : /` as
/// they are; every other octet (space, `=`, quotes, control characters, 8-bit) as
/// `\xHH`; `-` for an empty value. The result never contains a space or `=`.
pub fn value(raw: &[u8]) -> String {
    if raw.is_empty() {
        return "-".into();
    }
    let mut out = String::with_capacity(raw.len().min(MAX_VALUE) + 8);
    for &b in raw.iter().take(MAX_VALUE) {
        if b.is_ascii_alphanumeric() || b"._@+-:/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    if raw.len() > MAX_VALUE {
        out.push_str("...");
    }
    out
}

/// Syslog severities used here (RFC 5424 6.2.1).
#[derive(Clone, Copy, Debug)]
pub enum Level {
    Err = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
}

pub fn facility_code(name: &str) -> u8 {
    match name {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" => 4,
        "authpriv" => 10,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => 2,
    }
}

/// Set up logging. `also_stderr` is for the daemon in the foreground; inetd mode never
/// writes to stderr, which inetd connects to the client's socket.
pub fn init(ident: &str, socket_path: &str, also_stderr: bool) {
    // Connect now, as openlog(LOG_NDELAY) does: after a privilege drop the socket
    // may no longer be reachable.
    let socket = UnixDatagram::unbound()
        .ok()
        .filter(|s| s.connect(socket_path).is_ok());
    if let Some(s) = &socket {
        let _ = s.set_nonblocking(true);
    }
    let mut guard = LOGGER.lock().unwrap_or_else(|e| e.into_inner());
    *guard = Some(Logger {
        socket,
        path: socket_path.to_string(),
        ident: ident.to_string(),
        facility: facility_code(crate::config::LOG_FACILITY),
        also_stderr,
    });
}

/// The syslog socket logging was set up with (passed on to handed-off sessions).
pub fn socket_path() -> String {
    let guard = LOGGER.lock().unwrap_or_else(|e| e.into_inner());
    guard
        .as_ref()
        .map_or_else(|| crate::config::LOG_SOCKET.to_string(), |l| l.path.clone())
}

pub fn log(level: Level, msg: &str) {
    let mut guard = LOGGER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(logger) = guard.as_mut() else { return };
    // Control characters from client input must not forge extra log lines.
    let clean: String = msg
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    let stamp = crate::util::date::syslog_timestamp();
    let pri = (logger.facility as u32) * 8 + level as u32;
    let line = format!(
        "<{pri}>{stamp} {}[{}]: {clean}",
        logger.ident,
        std::process::id()
    );
    if logger.socket.is_none() {
        if let Ok(s) = UnixDatagram::unbound() {
            if s.connect(&logger.path).is_ok() {
                let _ = s.set_nonblocking(true);
                logger.socket = Some(s);
            }
        }
    }
    if let Some(s) = &logger.socket {
        if s.send(line.as_bytes()).is_err() {
            // syslogd restarted: reconnect once next time.
            logger.socket = None;
        }
    }
    if logger.also_stderr {
        eprintln!("{} {}: {clean}", stamp, logger.ident);
    }
}

pub fn info(msg: &str) {
    log(Level::Info, msg)
}
pub fn notice(msg: &str) {
    log(Level::Notice, msg)
}
pub fn warning(msg: &str) {
    log(Level::Warning, msg)
}
pub fn error(msg: &str) {
    log(Level::Err, msg)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_value_cannot_forge_another_field() {
        let v = super::value(b"x peer=203.0.113.66 reason=\r\n\"");
        assert_eq!(
            v,
            "x\\x20peer\\x3d203.0.113.66\\x20reason\\x3d\\x0d\\x0a\\x22"
        );
        assert!(!v.contains(' ') && !v.contains('='));
        assert_eq!(super::value(b"alice@example.org"), "alice@example.org");
        assert_eq!(super::value(b""), "-");
        assert!(super::value(&[b'a'; 100]).ends_with("..."));
    }
}
