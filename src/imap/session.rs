//! One IMAP connection as a state machine (RFC 3501 3: not authenticated,
//! authenticated, selected, logout). Sans-I/O: drivers call `feed` with what arrived,
//! `step` to do bounded work, and drain `output`. Framing (RFC 3501 4.3, 7.5; RFC 7888)
//! lives here: lines, synchronizing and non-synchronizing literals, and APPEND's message
//! literal, which is written through to the store as it arrives.

use super::parser::{self, AppendArgs, Parser};
use super::response::{self, Code, Reply, Status};
pub use super::state::Session;
use super::state::{Frame, State};
use super::wire::{Event, Framer};
use crate::auth::User;
use crate::config;
use crate::session::login::LoginGate;
use crate::session::steps::{self, Steps};
use crate::session::{Handoff, LoggedIn, Peer, Protocol, Refusal, Service};
pub use crate::session::{Mode, Step};
use crate::store::Store;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// IMAP as a service of the transports (inetd, daemon, demo).
pub static SERVICE: Service = Service {
    name: "imapd",
    log_ident: config::LOG_IDENT,
    demo_port: 1143,
    start,
    resume,
    too_busy: b"* BYE Too many connections; try again later\r\n",
    cannot_serve: b"* BYE Cannot start your session; see the server log\r\n",
};

/// A session the root daemon handed off after its login (`net::handoff`): no
/// greeting (the client had it), the login answered now that this process can become
/// the user, then whatever the client pipelined after it.
fn resume(_peer: Peer, users_file: PathBuf, h: Handoff) -> Box<dyn Protocol> {
    let mut s = Session::new(h.peer.clone(), users_file, None);
    let (login, input, output) = h.into_login();
    s.output = output;
    s.logins.accept(login);
    s.feed(&input);
    Box::new(s)
}

/// A new connection. Under inetd, a non-root imapd on a pipe (run from a shell or
/// through `ssh host imapd`) serves the invoking user at once, as UW imapd's PREAUTH.
fn start(peer: Peer, users_file: PathBuf) -> Box<dyn Protocol> {
    let preauth = if peer.mode == Mode::Inetd && peer.addr.is_none() && crate::sys::euid() != 0 {
        crate::auth::invoking_user()
    } else {
        None
    };
    let mut s = Session::new(peer.text(), users_file, preauth);
    s.plaintext_allowed = peer.plaintext_allowed();
    s.secure = peer.secure;
    s.starttls_offered = peer.starttls && !peer.secure;
    if !s.logins.busy() {
        // The greeting `new` wrote, made again now that the peer (TLS, plaintext
        // policy) is known: its capabilities change with it.
        s.output.clear();
        s.greet();
    }
    Box::new(s)
}

const MAX_BAD_COMMANDS: u32 = 20;

impl Session {
    /// A new connection. `preauth` is the account of a non-root imapd run from a shell
    /// or ssh (UW imapd's PREAUTH).
    pub fn new(peer: String, users_file: PathBuf, preauth: Option<User>) -> Session {
        let mut s = Session {
            peer,
            logins: LoginGate::new(users_file),
            wire: Framer::new(config::MAX_LINE, config::MAX_LINE + config::MAX_LITERAL),
            output: Vec::new(),
            frame: Frame::Line,
            append: None,
            state: State::NotAuthenticated,
            announced_keywords: 0,
            enabled: Vec::new(),
            job: None,
            lock_waits: Default::default(),
            again: None,
            bad_commands: 0,
            last_activity: Instant::now(),
            connected_at: Instant::now(),
            next_idle_poll: None,
            closed: false,
            logout_reason: None,
            plaintext_allowed: true,
            secure: false,
            starttls_offered: false,
            starttls_pending: false,
        };
        match preauth {
            // Greeted once the store is open (`enter`).
            Some(user) => s.logins.accept(LoggedIn {
                user,
                method: "PREAUTH".into(),
                tag: "*".into(),
                peer: s.peer.clone(),
            }),
            None => s.greet(),
        }
        s
    }

    /// The greeting (RFC 3501 7.1.1), with what this connection offers (STARTTLS,
    /// LOGINDISABLED: RFC 3501 6.2.1, 6.2.3).
    fn greet(&mut self) {
        let caps = Code::Capability(self.capabilities());
        self.untagged(Status::Ok, Some(caps), "imapd ready");
    }

    pub fn capabilities(&self) -> String {
        let mut c = super::registry::capabilities().join(" ");
        c.push_str(&format!(" APPENDLIMIT={}", config::APPEND_LIMIT));
        if self.user().is_none() && self.starttls_offered && !self.secure {
            c.push_str(" STARTTLS");
        }
        if self.user().is_none() {
            c.push_str(if self.plaintext_allowed {
                " AUTH=PLAIN"
            } else {
                " LOGINDISABLED"
            });
        }
        c
    }

    pub(super) fn out(&mut self, s: &str) {
        self.output.extend_from_slice(s.as_bytes());
    }

    /// A status response (RFC 3501 7.1); `tag` is `*` for an untagged one.
    pub(super) fn status(&mut self, tag: &str, status: Status, code: Option<&Code>, text: &str) {
        response::status(&mut self.output, tag, status, code, text);
    }

    pub(super) fn untagged(&mut self, status: Status, code: Option<Code>, text: &str) {
        self.status("*", status, code.as_ref(), text);
    }

    pub(super) fn out_bytes(&mut self, b: &[u8]) {
        self.output.extend_from_slice(b);
    }

    pub(super) fn output_len(&self) -> usize {
        self.output.len()
    }

    /// The output itself, for a response written in place (a FETCH literal).
    pub(super) fn output_buf(&mut self) -> &mut Vec<u8> {
        &mut self.output
    }

    pub(super) fn close(&mut self, reason: &'static str) {
        if !self.closed {
            self.closed = true;
            self.logout_reason.get_or_insert(reason);
            self.finish();
        }
    }

    fn has_complete_input(&self) -> bool {
        self.wire.ready()
    }

    /// Act on one unit of input (a command, a literal's announcement, a piece of
    /// APPEND's message, a line of SASL or IDLE); false if none is complete.
    fn process_input(&mut self) -> bool {
        if self.wire.streaming() {
            return self.take_message_data();
        }
        if !matches!(self.frame, Frame::Line) {
            return match self.wire.line() {
                Ok(Some(line)) => {
                    match std::mem::replace(&mut self.frame, Frame::Line) {
                        Frame::SaslResponse { tag, mechanism } => {
                            self.sasl_response(&tag, &mechanism, &line)
                        }
                        Frame::Idle { tag } => self.idle_done(&tag, &line),
                        Frame::Line => unreachable!("matched above"),
                    }
                    true
                }
                Ok(None) => false,
                Err(e) => {
                    self.framing_error(e);
                    false
                }
            };
        }
        match self.wire.next_event() {
            None => false,
            Some(Event::Command(command)) => {
                if self.append.is_some() {
                    // The line that ends APPEND's message.
                    self.finish_append(command);
                } else {
                    self.dispatch(&command);
                }
                true
            }
            Some(Event::Literal { size, sync }) => {
                self.on_literal(size, sync);
                true
            }
            Some(e) => {
                self.framing_error(e);
                false
            }
        }
    }

    /// A line too long to resynchronise after: BYE.
    fn framing_error(&mut self, e: Event) {
        let (what, bye) = match e {
            Event::CommandTooLong => ("command too long", "* BYE Command too long\r\n"),
            _ => ("line too long", "* BYE Command line too long\r\n"),
        };
        self.protocol_error(what);
        self.out(bye);
        self.close(what);
    }

    /// A line announced a literal (RFC 3501 4.3, RFC 7888): APPEND's message is
    /// streamed to the store; other literals are read into the command if not too large.
    fn on_literal(&mut self, size: u64, sync: bool) {
        if self.append.is_some() {
            // More after APPEND's message than its closing line (MULTIAPPEND).
            self.wire.refuse_literal();
            return self.finish_append(b"{".to_vec());
        }
        let so_far = self.wire.command_so_far();
        let tag = Parser::new(so_far).tag().unwrap_or_else(|_| "*".into());
        if let Some(args) = append_args(so_far) {
            return self.begin_append(tag, args, size, sync);
        }
        if size > config::MAX_LITERAL as u64 {
            self.wire.refuse_literal();
            self.protocol_error("literal too large");
            if sync {
                let text = format!("Literal too large (limit {} octets)", config::MAX_LITERAL);
                self.status(&tag, Status::Bad, None, &text);
            } else {
                // RFC 7888 4: the client sends a non-synchronizing literal at once;
                // the stream can't be resynchronised, so the connection ends.
                self.untagged(Status::Bye, None, "Non-synchronizing literal too large");
                self.close("literal too large");
            }
            return;
        }
        self.wire.read_literal();
        if sync {
            self.out("+ Ready for literal data\r\n");
        }
    }

    /// APPEND's message as it arrives: written through to the store (or discarded
    /// after an error, answered once the literal is in).
    fn take_message_data(&mut self) -> bool {
        let n = self.wire.streamed().len();
        if n == 0 {
            return false;
        }
        let who = format!("user={} peer={}", self.user_name(), self.peer);
        if let Some(a) = self.append.as_mut() {
            if let Some(sink) = a.sink.as_mut() {
                if let Err(e) = sink.write(self.wire.streamed()) {
                    crate::log::error(&format!("append failed {who} error={e}"));
                    let code = Code::of_store_error(&e);
                    a.error = Some(Reply::new(Status::No, Some(code), e.client_text()));
                    if let Some(s) = a.sink.take() {
                        s.abort();
                    }
                }
            }
        }
        self.wire.consume_streamed(n);
        true
    }

    pub(super) fn user_name(&self) -> &str {
        self.user().map(|u| u.name.as_str()).unwrap_or("-")
    }

    /// Log a server-side failure during a session: `<what> failed user= peer= error=`.
    pub(super) fn log_failure(&self, what: &str, err: &dyn std::fmt::Display) {
        crate::log::error(&format!(
            "{what} failed user={} peer={} error={err}",
            self.user_name(),
            self.peer
        ));
    }

    /// Log a client's protocol error (rate-limited by the BAD counter).
    pub(super) fn protocol_error(&mut self, what: &str) {
        crate::log::notice(&format!(
            "protocol error peer={} user={} error={what}",
            self.peer,
            self.user_name()
        ));
    }

    pub(super) fn bad(&mut self, tag: &str, text: &str) {
        self.bad_commands += 1;
        self.protocol_error(text);
        self.status(tag, Status::Bad, None, text);
        if self.bad_commands >= MAX_BAD_COMMANDS {
            self.untagged(Status::Bye, None, "Too many invalid commands");
            self.close("too many invalid commands");
        }
    }

    fn dispatch(&mut self, line: &[u8]) {
        let (tag, parsed) = parser::parse(line);
        let Some(tag) = tag else {
            return self.bad("*", "Missing or invalid tag");
        };
        match parsed {
            Ok(cmd) => self.execute(&tag, cmd),
            Err(e) => self.bad(&tag, &format!("Error in IMAP command: {}", e.0)),
        }
    }

    pub(super) fn set_frame(&mut self, frame: Frame) {
        self.frame = frame;
    }

    pub(super) fn take_command_buffer(&mut self) {
        self.wire.clear_command();
    }
}

/// Is the command so far `tag APPEND mailbox [flags] [date-time] `, so that the literal
/// just announced is the message? Its arguments then.
fn append_args(so_far: &[u8]) -> Option<AppendArgs> {
    let mut p = Parser::new(so_far);
    p.tag().ok()?;
    let rest = &so_far[p.i..];
    if rest.len() < 8 || !rest[..8].eq_ignore_ascii_case(b" APPEND ") {
        return None;
    }
    let mut p = Parser::new(&rest[8..]);
    let args = p.append_args().ok()?;
    (p.i == rest.len() - 8).then_some(args)
}

impl Protocol for Session {
    /// Bytes that arrived from the client.
    fn feed(&mut self, data: &[u8]) {
        if !data.is_empty() {
            self.last_activity = Instant::now();
            self.wire.feed(data);
        }
    }

    /// Does the session want more input now? (false while it works through what it has,
    /// so a pipelining client cannot make it buffer without bound)
    fn wants_input(&self) -> bool {
        if self.starttls_pending {
            return false; // the next bytes are the TLS handshake, for the driver
        }
        !self.closed && self.wire.buffered() < config::MAX_LINE + 65536
    }

    fn output(&mut self) -> &mut Vec<u8> {
        &mut self.output
    }

    fn is_closed(&self) -> bool {
        self.closed
    }

    fn before_login(&self) -> bool {
        self.user().is_none()
    }

    /// The connection ended (EOF, error, BYE): release the mailbox and log the logout.
    fn finish(&mut self) {
        self.closed = true;
        if let Some(a) = self.append.take() {
            if let Some(sink) = a.sink {
                sink.abort();
            }
        }
        let (user, mailbox) = match self.leave() {
            State::NotAuthenticated => (None, None),
            State::Authenticated(a) => (Some(a.user), None),
            State::Selected(a, m) => (Some(a.user), Some(m)),
        };
        if let Some(mut m) = mailbox {
            m.flush();
        }
        if let Some(user) = user {
            crate::log::info(&format!(
                "logout user={} peer={} reason={}",
                user.name,
                self.peer,
                self.logout_reason.unwrap_or("disconnected")
            ));
        }
    }

    /// End the session because the code failed (a caught panic): BYE and a log line.
    fn internal_error(&mut self, what: &str) {
        crate::log::error(&format!("internal error peer={} error={what}", self.peer));
        self.output
            .extend_from_slice(b"* BYE Internal server error; the session ends here\r\n");
        self.close("internal error");
    }

    fn take_starttls(&mut self) -> bool {
        std::mem::take(&mut self.starttls_pending)
    }

    fn tls_started(&mut self) {
        // Anything pipelined after STARTTLS came in the clear: it is not trusted.
        self.wire = Framer::new(config::MAX_LINE, config::MAX_LINE + config::MAX_LITERAL);
        self.secure = true;
        self.starttls_offered = false;
        self.plaintext_allowed = true;
    }

    fn take_login(&mut self) -> Option<LoggedIn> {
        self.logins.take_accepted()
    }

    fn enter(&mut self, login: LoggedIn, store: Result<Box<dyn Store>, Refusal>) {
        self.enter_logged_in(login, store);
    }

    fn hand_off(&mut self, login: LoggedIn) -> Handoff {
        self.closed = true;
        login.into_handoff(std::mem::take(self.wire.input_mut()))
    }

    /// Do what can be done now; bounded, so a daemon can serve others in between.
    fn step(&mut self, now: Instant) -> Step {
        steps::step(self, now)
    }

    /// The client went away without LOGOUT.
    fn connection_lost(&mut self, reason: &'static str) {
        self.logout_reason.get_or_insert(reason);
    }

    fn idle_limit(&self) -> Duration {
        Duration::from_secs(if self.user().is_some() {
            config::AUTOLOGOUT_SECS
        } else {
            config::LOGIN_TIMEOUT_SECS
        })
    }
}

impl Steps for Session {
    fn closed(&self) -> bool {
        self.closed
    }

    fn logins(&mut self) -> &mut LoginGate {
        &mut self.logins
    }

    fn input_buffer(&mut self) -> &mut Vec<u8> {
        self.wire.input_mut()
    }

    fn output_buffer(&mut self) -> &mut Vec<u8> {
        &mut self.output
    }

    fn switching_to_tls(&self) -> bool {
        self.starttls_pending
    }

    fn continue_job(&mut self, now: Instant) -> bool {
        let Some(job) = self.job.take() else {
            return false;
        };
        // A client reading a long FETCH is active; one that stopped reading makes no
        // progress here and is logged out in time.
        self.last_activity = now;
        if self.lock_waits.running() {
            crate::store::filelock::once(|| job.run(self));
        } else {
            job.run(self);
        }
        self.lock_waits.ran();
        true
    }

    fn has_job(&self) -> bool {
        self.job.is_some()
    }

    fn job_wakes_at(&self) -> Option<Instant> {
        self.job.as_ref().and(self.lock_waits.wakes_at())
    }

    fn take_input(&mut self) -> bool {
        self.process_input()
    }

    fn has_complete_input(&self) -> bool {
        Session::has_complete_input(self)
    }

    /// IDLE: look at the mailbox on schedule.
    fn timers(&mut self, now: Instant) -> Option<Instant> {
        if let (Frame::Idle { .. }, Some(t)) = (&self.frame, self.next_idle_poll) {
            if now >= t {
                self.idle_poll();
                self.next_idle_poll = Some(now + Duration::from_millis(config::IDLE_POLL_MS));
            }
        }
        self.next_idle_poll
    }

    /// RFC 3501 5.4; before login, the login deadline (bytes do not extend it).
    fn logout_at(&self) -> Instant {
        if self.user().is_some() {
            self.last_activity + Duration::from_secs(config::AUTOLOGOUT_SECS)
        } else {
            self.connected_at + Duration::from_secs(config::LOGIN_TIMEOUT_SECS)
        }
    }

    fn autologout(&mut self) {
        self.untagged(Status::Bye, None, "Autologout; idle for too long");
        self.close("autologout");
    }

    fn close(&mut self, reason: &'static str) {
        Session::close(self, reason)
    }
}

#[cfg(test)]
mod fuzz {
    //! A first, short fuzz run of the engine: mutated commands fed in random slices to
    //! an authenticated session on a real (temporary) Maildir. Nothing may panic, and
    //! output must stay bounded.
    use super::*;
    use crate::session::feed_in_slices;
    use crate::store::maildir::MaildirStore;
    use crate::util::fuzz::{Rng, mutate};

    const CORPUS: &[&str] = &[
        "a SELECT INBOX\r\n",
        "a EXAMINE INBOX\r\n",
        "b APPEND INBOX (\\Seen $X) \"01-Jan-2020 10:00:00 +0000\" {31}\r\nSubject: x\r\n\r\nhello world!!\r\n\r\n",
        "b APPEND INBOX {40+}\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n",
        "c FETCH 1:* (FLAGS BODY.PEEK[1.2.HEADER.FIELDS (A B)]<0.10> BODYSTRUCTURE ENVELOPE)\r\n",
        "c UID FETCH 1:4294967295 (BODY[] RFC822.SIZE INTERNALDATE)\r\n",
        "d STORE 1:* +FLAGS.SILENT (\\Deleted kw)\r\n",
        "e SEARCH CHARSET UTF-8 OR (FROM x BODY {3}\r\nabc) NOT SENTSINCE 1-Feb-2000 1:*\r\n",
        "f COPY 1:* INBOX\r\n",
        "f MOVE 1 INBOX\r\n",
        "g EXPUNGE\r\n",
        "g UID EXPUNGE 1:*\r\n",
        "h LIST \"\" *\r\n",
        "h LSUB \"\" %\r\n",
        "i CREATE Foo.Bar\r\n",
        "i RENAME Foo Baz\r\n",
        "i DELETE Baz.Bar\r\n",
        "j STATUS INBOX (MESSAGES UIDNEXT UNSEEN SIZE)\r\n",
        "k IDLE\r\nDONE\r\n",
        "l CLOSE\r\n",
        "m NOOP\r\n",
        "n SUBSCRIBE INBOX\r\n",
        "o LOGIN a b\r\n",
        "p AUTHENTICATE PLAIN\r\nAGEAYg==\r\n",
    ];

    #[test]
    fn mutated_commands_never_panic() {
        let dir = std::env::temp_dir().join(format!("imapd-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut rng = Rng(0x9e3779b97f4a7c15);
        let rounds = crate::util::fuzz::rounds(600);
        let mut selected_rounds = 0;
        for round in 0..rounds {
            if round % 50 == 0 {
                // COPY 1:* doubles the mailbox: start afresh now and then.
                let _ = std::fs::remove_dir_all(&dir);
            }
            let store = MaildirStore::open(dir.clone()).expect("temp maildir");
            let mut s = Session::new("fuzz".into(), "/nonexistent".into(), None);
            let user = User {
                name: "fuzz".into(),
                uid: None,
                gid: None,
                mail: crate::store::MailLocation::Maildir(dir.clone()),
            };
            s.authenticated(user, Box::new(store));
            for _ in 0..12 {
                let mut cmd = CORPUS[rng.below(CORPUS.len())].as_bytes().to_vec();
                mutate(&mut cmd, &mut rng, b"(){}[]<>\"\\*%:. 0123456789\r\n+");
                // Fed in random slices, stepping in between, as a network would.
                feed_in_slices(&mut s, &cmd, &mut rng, |s| {
                    if s.mailbox().is_some() {
                        selected_rounds += 1;
                    }
                });
                if s.is_closed() {
                    break;
                }
            }
            s.finish();
        }
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            selected_rounds > rounds / 2,
            "the fuzzer must reach the selected state ({selected_rounds})"
        );
    }
}

#[cfg(test)]
mod guarded {
    use super::Session;
    use crate::session::{Protocol, guarded};

    #[test]
    fn a_panic_ends_only_its_session_with_bye() {
        let mut s = Session::new("test".into(), "/nonexistent".into(), None);
        s.output().clear();
        let r: Option<()> = guarded(&mut s, |_| panic!("boom"));
        assert!(r.is_none());
        assert!(s.is_closed());
        assert!(String::from_utf8_lossy(s.output()).starts_with("* BYE Internal server error"));
        // Another session is untouched and answers.
        let mut other = Session::new("test".into(), "/nonexistent".into(), None);
        other.output().clear();
        other.feed(b"a NOOP\r\n");
        guarded(&mut other, |s| s.step(std::time::Instant::now()));
        assert_eq!(String::from_utf8_lossy(other.output()), "a OK Done\r\n");
    }
}
