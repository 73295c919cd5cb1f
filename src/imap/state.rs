//! What one IMAP connection holds (RFC 3501 3: not authenticated, authenticated,
//! selected, logout): the `Session` the command files (`cmd/`) act on and the framing
//! and step loop (`session.rs`) drive, and the `Job` a long command leaves behind.

use super::parser::AppendArgs;
use crate::auth::User;
use crate::session::login::LoginGate;
use crate::store::{AppendSink, Mailbox, Store};
use std::time::Instant;

/// A command in progress across several steps (FETCH, SEARCH, COPY, MOVE): each step
/// runs one bounded slice of it, and leaves the rest as the session's job again.
pub trait Job: Send {
    fn run(self: Box<Self>, session: &mut Session);
}

pub(super) enum Frame {
    /// Reading a command line.
    Line,
    /// Reading `remaining` octets of a literal into the command being assembled.
    Literal { remaining: usize },
    /// Reading APPEND's message: into the store, or discarded after an error.
    Message { remaining: u64 },
    /// After AUTHENTICATE's `+`: the client's response line.
    SaslResponse { tag: String, mechanism: String },
    /// In IDLE, waiting for DONE.
    Idle { tag: String },
}

/// An APPEND whose message is arriving.
pub(super) struct PendingAppend {
    pub tag: String,
    pub args: AppendArgs,
    pub sink: Option<Box<dyn AppendSink>>,
    /// A failure found before or during the transfer, answered once the literal is in.
    pub error: Option<String>,
}

pub struct Session {
    pub(super) peer: String,
    /// Credentials checked, refusals held back, the login waiting for the driver.
    pub(super) logins: LoginGate,
    pub(super) input: Vec<u8>,
    pub(super) output: Vec<u8>,
    pub(super) frame: Frame,
    /// The command being assembled (lines and small literals).
    pub(super) command: Vec<u8>,
    pub(super) append: Option<PendingAppend>,
    pub(super) user: Option<User>,
    pub(super) store: Option<Box<dyn Store>>,
    pub(super) mailbox: Option<Box<dyn Mailbox>>,
    /// Keywords of the selected mailbox announced in `* FLAGS` so far (RFC 3501 7.2.6:
    /// a new one is announced before a FETCH shows it).
    pub(super) announced_keywords: usize,
    pub(super) job: Option<Box<dyn Job>>,
    pub(super) bad_commands: u32,
    pub(super) last_activity: Instant,
    /// When the connection began: the login deadline counts from here, and bytes do
    /// not extend it (a client that sends a byte a minute must still log in in time).
    pub(super) connected_at: Instant,
    pub(super) next_idle_poll: Option<Instant>,
    pub(super) closed: bool,
    pub(super) logout_reason: Option<&'static str>,
    /// May the client send a password in the clear here (`Peer::plaintext_allowed`)?
    pub(super) plaintext_allowed: bool,
    /// The connection is encrypted (implicit TLS, or after STARTTLS).
    pub(super) secure: bool,
    /// STARTTLS may be offered on this connection.
    pub(super) starttls_offered: bool,
    /// STARTTLS answered: nothing more is read until the driver has switched.
    pub(super) starttls_pending: bool,
}
