//! What one IMAP connection holds (RFC 3501 3: not authenticated, authenticated,
//! selected, logout): the `Session` the command files (`cmd/`) act on and the framing
//! and step loop (`session.rs`) drive, and the `Job` a long command leaves behind.

use super::parser::AppendArgs;
use super::response::Reply;
use super::wire::Framer;
use crate::auth::User;
use crate::session::lock_wait::LockWaits;
use crate::session::login::LoginGate;
use crate::store::{AppendSink, Mailbox, Store};
use std::time::Instant;

/// A command in progress across several steps (FETCH, SEARCH, COPY, MOVE): each step
/// runs one bounded slice of it, and leaves the rest as the session's job again.
pub trait Job: Send {
    fn run(self: Box<Self>, session: &mut Session);
}

/// A command parked on a lock another program holds (`Session::park`), run again
/// whole: it changed nothing before it met the lock.
pub(super) struct RetryCommand {
    pub tag: String,
    pub command: super::parser::Command,
}

impl Job for RetryCommand {
    fn run(self: Box<Self>, session: &mut Session) {
        session.execute(&self.tag, self.command);
    }
}

/// What the next line from the client is (the framer, `wire::Framer`, knows lines and
/// literals; this is what the engine expects of them).
pub(super) enum Frame {
    /// A command.
    Line,
    /// After AUTHENTICATE's `+`: the client's response line.
    SaslResponse { tag: String, mechanism: String },
    /// In IDLE, waiting for DONE.
    Idle { tag: String },
}

/// RFC 3501 3: where the connection is (logout is `Session::closed`).
pub(super) enum State {
    NotAuthenticated,
    Authenticated(Account),
    Selected(Account, Box<dyn Mailbox>),
}

/// A logged-in user and their mail store.
pub(super) struct Account {
    pub user: User,
    pub store: Box<dyn Store>,
}

/// Commands reach these only in the state `cmd::needs` names for them, which the
/// dispatcher checks: a command of the selected state finds a mailbox selected.
impl Session {
    pub(super) fn user(&self) -> Option<&User> {
        match &self.state {
            State::NotAuthenticated => None,
            State::Authenticated(a) | State::Selected(a, _) => Some(&a.user),
        }
    }

    /// The user's store (authenticated or selected state).
    pub(super) fn store(&mut self) -> &mut dyn Store {
        match &mut self.state {
            State::Authenticated(a) | State::Selected(a, _) => a.store.as_mut(),
            State::NotAuthenticated => unreachable!("dispatch checks the state"),
        }
    }

    pub(super) fn store_ref(&self) -> Option<&dyn Store> {
        match &self.state {
            State::Authenticated(a) | State::Selected(a, _) => Some(a.store.as_ref()),
            State::NotAuthenticated => None,
        }
    }

    /// The selected mailbox, if any.
    pub(super) fn mailbox(&self) -> Option<&dyn Mailbox> {
        match &self.state {
            State::Selected(_, m) => Some(m.as_ref()),
            _ => None,
        }
    }

    pub(super) fn mailbox_mut(&mut self) -> Option<&mut (dyn Mailbox + 'static)> {
        match &mut self.state {
            State::Selected(_, m) => Some(m.as_mut()),
            _ => None,
        }
    }

    /// The selected mailbox (selected state).
    pub(super) fn selected_ref(&self) -> &dyn Mailbox {
        self.mailbox().expect("dispatch checks the state")
    }

    pub(super) fn selected(&mut self) -> &mut (dyn Mailbox + 'static) {
        self.mailbox_mut().expect("dispatch checks the state")
    }

    /// Log in: the authenticated state.
    pub(super) fn authenticated(&mut self, user: User, store: Box<dyn Store>) {
        self.state = State::Authenticated(Account { user, store });
    }

    /// Enter the selected state with `mailbox` (from authenticated or selected).
    pub(super) fn select(&mut self, mailbox: Box<dyn Mailbox>) {
        self.state = match std::mem::replace(&mut self.state, State::NotAuthenticated) {
            State::Authenticated(a) | State::Selected(a, _) => State::Selected(a, mailbox),
            State::NotAuthenticated => unreachable!("dispatch checks the state"),
        };
    }

    /// Back to the authenticated state; the mailbox that was selected.
    pub(super) fn unselect(&mut self) -> Option<Box<dyn Mailbox>> {
        match std::mem::replace(&mut self.state, State::NotAuthenticated) {
            State::Selected(a, m) => {
                self.state = State::Authenticated(a);
                Some(m)
            }
            other => {
                self.state = other;
                None
            }
        }
    }

    /// The session ends: what it held, to be released.
    pub(super) fn leave(&mut self) -> State {
        std::mem::replace(&mut self.state, State::NotAuthenticated)
    }
}

/// An APPEND whose message is arriving.
pub(super) struct PendingAppend {
    pub tag: String,
    pub args: AppendArgs,
    pub sink: Option<Box<dyn AppendSink>>,
    /// A failure found before or during the transfer, answered once the literal is in.
    pub error: Option<Reply>,
}

pub struct Session {
    pub(super) peer: String,
    /// Credentials checked, refusals held back, the login waiting for the driver.
    pub(super) logins: LoginGate,
    /// Lines and literals of the client's input (RFC 3501 4.3, RFC 7888).
    pub(super) wire: Framer,
    pub(super) output: Vec<u8>,
    pub(super) frame: Frame,
    pub(super) append: Option<PendingAppend>,
    pub(super) state: State,
    /// Keywords of the selected mailbox announced in `* FLAGS` so far (RFC 3501 7.2.6:
    /// a new one is announced before a FETCH shows it).
    pub(super) announced_keywords: usize,
    /// Extensions the client turned on with ENABLE (RFC 5161), from
    /// `registry::ENABLEABLE`; for the rest of the connection.
    pub(super) enabled: Vec<&'static str>,
    pub(super) job: Option<Box<dyn Job>>,
    /// The job (or command) waiting for a lock another program holds.
    pub(super) lock_waits: LockWaits,
    /// The command `execute` is running, kept to be parked whole if it meets such a
    /// lock (`store_error`); None in a job, which parks itself where it stands.
    pub(super) again: Option<super::parser::Command>,
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
