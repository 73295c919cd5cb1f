//! The contract between the protocol engines (IMAP, POP3) and the transports that drive
//! them (inetd, the daemon): bytes in, bounded steps, bytes out, and what the engine
//! asks of its driver (a hand-off after a login, TLS). Neither side knows the other's
//! details: engines import this, never `net`.

pub mod lock_wait;
pub mod login;
pub mod steps;

use crate::auth::User;
use crate::store::Store;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::Instant;

/// How the process runs, which decides what a login may do (see `auth::login`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One process per connection: a login switches the process to the user.
    Inetd,
    /// Many connections in one process: sessions run as the daemon's identity.
    Daemon,
}

/// What a driver should do next.
#[derive(Debug, Default)]
pub struct Step {
    /// More work is ready without new input (call `step` again after writing).
    pub busy: bool,
    /// Call `step` again at this time even if nothing arrives (IDLE polls, delays, timeouts).
    pub deadline: Option<Instant>,
}

/// A sans-I/O protocol session, as the drivers see it: bytes in, bounded steps,
/// bytes out.
pub trait Protocol: Send {
    /// Bytes that arrived from the client.
    fn feed(&mut self, data: &[u8]);
    /// Do what can be done now; bounded, so a daemon can serve others in between.
    fn step(&mut self, now: Instant) -> Step;
    /// What to send to the client; the driver drains it.
    fn output(&mut self) -> &mut Vec<u8>;
    /// Does the session want more input now? (false while it works through what it has,
    /// so a pipelining client cannot make it buffer without bound)
    fn wants_input(&self) -> bool;
    fn is_closed(&self) -> bool;
    /// The client went away (EOF, error, stopped reading): the reason for the logout line.
    fn connection_lost(&mut self, reason: &'static str);
    /// How long the client may leave the session without a sign of life (sending, or
    /// reading what it was sent) before it ends: the autologout period.
    fn idle_limit(&self) -> std::time::Duration;
    /// The connection ended: release what the session holds and log the logout.
    fn finish(&mut self);
    /// End the session because the code failed (a caught panic): a last word and a log line.
    fn internal_error(&mut self, what: &str);
    /// A login the engine accepted. Where the session goes on is the driver's decision
    /// (`net::privsep`): here, once the process is the user's and the store is open
    /// (`enter`), or in a process of the user (`hand_off`). The engine reads no input
    /// until one of them.
    fn take_login(&mut self) -> Option<LoggedIn> {
        None
    }
    /// Go on here as the user, with the store the driver opened (or why it could not).
    fn enter(&mut self, login: LoggedIn, store: Result<Box<dyn Store>, Refusal>) {
        let _ = (login, store);
    }
    /// Leave this process: what a process of the user needs to go on (the login, what
    /// the client pipelined after it, output not yet sent). The session ends here.
    fn hand_off(&mut self, login: LoggedIn) -> Handoff {
        let _ = login;
        unreachable!("an engine that logs in hands off")
    }
    /// The session said "begin TLS" (STARTTLS, STLS): once its output is written the
    /// driver starts the handshake and calls `tls_started`.
    fn take_starttls(&mut self) -> bool {
        false
    }
    /// TLS is up: forget input that came before it (RFC 3207 / CVE-2011-0411), and
    /// allow what needs an encrypted connection.
    fn tls_started(&mut self) {}
    /// Not logged in yet: the next step may check a password (a hash, PAM, a user
    /// database), work a daemon keeps apart from the steps of logged-in sessions.
    fn before_login(&self) -> bool {
        false
    }
}

/// Who connected, as the transport knows it.
pub struct Peer {
    /// The client's address; None on a pipe (ssh, a shell).
    pub addr: Option<SocketAddr>,
    pub mode: Mode,
    /// The connection is TLS from its first byte (993, 995, `--tls-listen`).
    pub secure: bool,
    /// STARTTLS/STLS can be offered (a certificate is loaded, the transport can switch).
    pub starttls: bool,
}

impl Peer {
    /// May a password cross this connection in the clear (`config::PLAINTEXT_AUTH`)?
    /// A TLS connection may; a pipe (ssh, a shell) is local. Addresses arrive
    /// canonical (IPv4 peers of dual-stack sockets as IPv4: `sys::peer_of_fd`, and the
    /// daemon's IPv6 listeners are IPv6-only).
    pub fn plaintext_allowed(&self) -> bool {
        if self.secure {
            return true;
        }
        let local = self.addr.is_none_or(|a| a.ip().is_loopback());
        match crate::config::PLAINTEXT_AUTH {
            "yes" => true,
            "no" => false,
            _ => local,
        }
    }

    /// The address as logs show it (`local` for a pipe).
    pub fn text(&self) -> String {
        self.addr
            .map(|a| a.ip().to_string())
            .unwrap_or_else(|| "local".into())
    }
}

/// A protocol a listener or an inetd process serves.
pub struct Service {
    /// Program name: `imapd`, `ipop3d`.
    pub name: &'static str,
    /// Syslog ident (compile-time setting).
    pub log_ident: &'static str,
    /// Port of the demo (`--demo`).
    pub demo_port: u16,
    /// A new session for a connection (greeting already in its output).
    pub start: fn(Peer, PathBuf) -> Box<dyn Protocol>,
    /// A session handed off by the root daemon after its login (`net::handoff`): the
    /// login is answered once the process belongs to the user.
    pub resume: fn(Peer, PathBuf, Handoff) -> Box<dyn Protocol>,
    /// Said to a connection refused because the daemon is full.
    pub too_busy: &'static [u8],
    /// Said when a logged-in session cannot be started (the hand-off failed).
    pub cannot_serve: &'static [u8],
}

/// Run `f` on a session, turning a panic into that session's end (last word + log line);
/// the process and other sessions go on.
pub fn guarded<S: Protocol + ?Sized, T>(session: &mut S, f: impl FnOnce(&mut S) -> T) -> Option<T> {
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

/// A login an engine accepted: the user, how (for the log line), and the tag to answer
/// (IMAP; `*` for PREAUTH, empty for POP3).
pub struct LoggedIn {
    pub user: User,
    pub method: String,
    pub tag: String,
    /// The client as logs show it.
    pub peer: String,
}

impl LoggedIn {
    /// The hand-off of this login: with what the client sent after it. The daemon adds
    /// the output it has not written yet.
    pub fn into_handoff(self, input: Vec<u8>) -> Handoff {
        Handoff {
            user: self.user,
            method: self.method,
            tag: self.tag,
            input,
            output: Vec::new(),
            peer: self.peer,
        }
    }
}

impl Handoff {
    /// In the user's process: the login to answer, what the client sent after it, and
    /// the output the daemon had not written.
    pub fn into_login(self) -> (LoggedIn, Vec<u8>, Vec<u8>) {
        let login = LoggedIn {
            user: self.user,
            method: self.method,
            tag: self.tag,
            peer: self.peer,
        };
        (login, self.input, self.output)
    }
}

/// Why a user who gave the right password cannot be served.
#[derive(Debug)]
pub enum Refusal {
    /// Could change by itself (the store could not be opened): POP3 `[SYS/TEMP]`.
    Temporary,
    /// Needs an administrator (no mail uid, uid mismatch): POP3 `[SYS/PERM]`.
    Permanent,
}

/// A logged-in session leaving a root daemon for a process of the user.
pub struct Handoff {
    pub user: User,
    pub method: String,
    /// IMAP: the tag of the LOGIN/AUTHENTICATE to answer.
    pub tag: String,
    /// What the client sent after the login command (pipelined commands).
    pub input: Vec<u8>,
    /// Output the daemon had not written yet.
    pub output: Vec<u8>,
    /// The client's address as logs show it (the user's process may only have the
    /// daemon's relay socket: a TLS session stays with the daemon, which relays).
    pub peer: String,
}

/// Test-only: feed `data` to an engine in random slices, stepping in between, as a
/// network would deliver it; the output must stay bounded. `each` runs after every step
/// (to look at the session's state).
#[cfg(test)]
pub fn feed_in_slices<S: Protocol>(
    s: &mut S,
    data: &[u8],
    rng: &mut crate::util::fuzz::Rng,
    mut each: impl FnMut(&mut S),
) {
    let mut rest = data;
    while !rest.is_empty() {
        let n = 1 + rng.below(rest.len());
        s.feed(&rest[..n]);
        rest = &rest[n..];
        s.step(Instant::now());
        assert!(s.output().len() < 64 * 1024 * 1024, "output unbounded");
        s.output().clear();
        each(s);
    }
    for _ in 0..4 {
        s.step(Instant::now());
        s.output().clear();
    }
}
