//! Syslog lines (RFC 3164 datagrams to /dev/log), facility and ident from config.
//!
//! Line formats an admin or fail2ban can match (user and peer always quoted the same way):
//!   `login user=<u> peer=<addr> method=<LOGIN|AUTHENTICATE|PREAUTH>`
//!   `login failed user=<u> peer=<addr> reason=<text>`
//!   `logout user=<u> peer=<addr> reason=<text>`
//!   `protocol error peer=<addr> user=<u> error=<text>`
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
