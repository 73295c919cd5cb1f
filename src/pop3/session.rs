//! One POP3 connection (RFC 1939 3): the AUTHORIZATION state until a login succeeds,
//! then TRANSACTION over a locked maildrop, then UPDATE at QUIT. Sans-I/O like the IMAP
//! engine: drivers `feed` bytes, call `step`, and drain `output`.
//!
//! Commands are lines; a client may send many at once (RFC 2449 6.6 PIPELINING) and
//! they are answered in order. RETR and TOP are streamed from the store a piece per
//! step, so a big message or a long pipeline never fills memory.

use super::maildrop::Maildrop;
use super::parser::{self, Command};
use super::transfer::Transfer;
use crate::config;
use crate::session::lock_wait::LockWaits;
use crate::session::login::LoginGate;
use crate::session::steps::{self, Steps};
use crate::session::{Handoff, LoggedIn, Peer, Protocol, Refusal, Service, Step};
use crate::store::{Store, StoreError};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// POP3 as a service of the transports (inetd, daemon, demo).
pub static SERVICE: Service = Service {
    name: "ipop3d",
    log_ident: config::POP3_LOG_IDENT,
    demo_port: 1110,
    start,
    resume,
    too_busy: b"-ERR [SYS/TEMP] Too many connections; try again later\r\n",
    cannot_serve: b"-ERR [SYS/TEMP] Cannot start your session; see the server log\r\n",
};

/// A session the root daemon handed off after its login (`net::handoff`).
fn resume(_peer: Peer, users_file: PathBuf, h: Handoff) -> Box<dyn Protocol> {
    let mut s = Session::new(h.peer.clone(), users_file);
    let (login, input, output) = h.into_login();
    s.output = output;
    s.logins.accept(login);
    s.feed(&input);
    Box::new(s)
}

fn start(peer: Peer, users_file: PathBuf) -> Box<dyn Protocol> {
    let mut s = Session::new(peer.text(), users_file);
    s.plaintext_allowed = peer.plaintext_allowed();
    s.secure = peer.secure;
    s.starttls_offered = peer.starttls && !peer.secure;
    Box::new(s)
}

pub(super) enum State {
    /// RFC 1939 4: USER (and its name) may have been given.
    Authorization { user: Option<Vec<u8>> },
    /// RFC 1939 5: logged in, the maildrop locked.
    Transaction(Box<Maildrop>),
    /// The session is over.
    Done,
}

pub(super) enum Frame {
    Line,
    /// After `AUTH PLAIN` and `+ `: the client's response line (RFC 5034 4).
    SaslResponse,
    /// An overlong line was refused; skip to its end.
    Discard,
}

/// Multi-line output in progress.
pub(super) enum Job {
    Transfer(Transfer, TransferKind),
    /// LIST or UIDL without an argument: the next position to list.
    Listing {
        next: usize,
        uidl: bool,
    },
    /// A command parked on a lock another program holds (`session::lock_wait`), run
    /// again whole: it changed nothing before it met the lock.
    Again(Command),
    /// The login's maildrop, parked the same way before it could be opened.
    Enter {
        user: crate::auth::User,
        method: String,
        store: Box<dyn Store>,
    },
}

/// What a session did, (messages, octets) each, for the logout line.
#[derive(Default, Debug, Clone, Copy)]
struct Counts {
    retr: (u64, u64),
    top: (u64, u64),
    dele: (u64, u64),
}

#[derive(Clone, Copy)]
pub(super) enum TransferKind {
    Retr,
    Top,
}

pub struct Session {
    pub(super) peer: String,
    /// Credentials checked, refusals held back, the login waiting for the driver.
    pub(super) logins: LoginGate,
    input: Vec<u8>,
    output: Vec<u8>,
    pub(super) state: State,
    frame: Frame,
    job: Option<Job>,
    /// The job waiting for a lock another program holds.
    lock_waits: LockWaits,
    /// The APOP challenge from the greeting (None: APOP not offered).
    pub(super) apop_challenge: Option<String>,
    /// The logged-in user, for logs.
    pub(super) user_name: Option<String>,
    bad_commands: u32,
    last_activity: Instant,
    /// When the connection began: the login deadline counts from here (bytes do not
    /// extend it).
    connected_at: Instant,
    closed: bool,
    logout_reason: Option<&'static str>,
    /// Read buffer of RETR/TOP, kept between messages.
    scratch: Vec<u8>,
    /// What the session did, for the logout line.
    counts: Counts,
    /// May the client send a password in the clear here (`Peer::plaintext_allowed`)?
    pub(super) plaintext_allowed: bool,
    /// The connection is encrypted (implicit TLS, or after STLS).
    pub(super) secure: bool,
    /// STLS may be offered on this connection.
    pub(super) starttls_offered: bool,
    /// STLS answered: nothing more is read until the driver has switched.
    starttls_pending: bool,
}

const MAX_BAD_COMMANDS: u32 = 20;

impl Session {
    pub fn new(peer: String, users_file: PathBuf) -> Session {
        let apop_challenge = crate::auth::apop_available(&users_file).then(challenge);
        let mut s = Session {
            peer,
            logins: LoginGate::new(users_file),
            input: Vec::new(),
            output: Vec::new(),
            state: State::Authorization { user: None },
            frame: Frame::Line,
            job: None,
            lock_waits: LockWaits::default(),
            apop_challenge,
            user_name: None,
            bad_commands: 0,
            last_activity: Instant::now(),
            connected_at: Instant::now(),
            closed: false,
            logout_reason: None,
            scratch: Vec::new(),
            counts: Counts::default(),
            plaintext_allowed: true,
            secure: false,
            starttls_offered: false,
            starttls_pending: false,
        };
        // RFC 1939 4 (and 7 for the APOP timestamp).
        let greeting = match &s.apop_challenge {
            Some(c) => format!("+OK POP3 server ready {c}\r\n"),
            None => "+OK POP3 server ready\r\n".to_string(),
        };
        s.out(&greeting);
        s
    }

    pub(super) fn out(&mut self, s: &str) {
        self.output.extend_from_slice(s.as_bytes());
    }

    pub(super) fn ok(&mut self, text: &str) {
        self.out(&format!("+OK {text}\r\n"));
    }

    pub(super) fn err(&mut self, text: &str) {
        self.out(&format!("-ERR {text}\r\n"));
    }

    /// A client mistake: -ERR, a log line, and the end after too many.
    pub(super) fn bad(&mut self, text: &str) {
        self.bad_commands += 1;
        crate::log::notice(&format!(
            "protocol error peer={} user={} error={text}",
            self.peer,
            self.user_name.as_deref().unwrap_or("-")
        ));
        self.err(text);
        if self.bad_commands >= MAX_BAD_COMMANDS {
            self.err("Too many invalid commands; closing");
            self.close("too many invalid commands");
        }
    }

    /// Log a server-side failure: `<what> failed user= peer= error=`, as imapd does.
    pub(super) fn log_failure(&self, what: &str, err: &dyn std::fmt::Display) {
        crate::log::error(&format!(
            "{what} failed user={} peer={} error={err}",
            self.user_name.as_deref().unwrap_or("-"),
            self.peer
        ));
    }

    pub(super) fn close(&mut self, reason: &'static str) {
        if !self.closed {
            self.logout_reason.get_or_insert(reason);
            self.finish();
        }
    }

    pub(super) fn set_frame(&mut self, frame: Frame) {
        self.frame = frame;
    }

    pub(super) fn start_job(&mut self, job: Job) {
        self.job = Some(job);
    }

    /// Keep `job` to run again when the lock another program holds may be free;
    /// nothing is answered meanwhile.
    pub(super) fn park(&mut self, job: Job) {
        self.lock_waits.park(Instant::now());
        self.job = Some(job);
    }

    /// Is `e` a lock another program holds, that the command may still wait for?
    pub(super) fn waits_for_lock(&self, e: &StoreError) -> bool {
        self.lock_waits.waits_for(e)
    }

    /// Take one line from the input and act on it; false if there is no whole line.
    fn process_input(&mut self) -> bool {
        let Some(lf) = self.input.iter().position(|&b| b == b'\n') else {
            if self.input.len() > config::POP3_MAX_LINE {
                // Refuse now, drop what came, and skip the rest of the line when it ends.
                self.input.clear();
                if !matches!(self.frame, Frame::Discard) {
                    self.frame = Frame::Discard;
                    self.bad("Command line too long");
                }
            }
            return false;
        };
        let line = crate::util::take_line(&mut self.input, lf);
        match std::mem::replace(&mut self.frame, Frame::Line) {
            Frame::Discard => {}
            Frame::SaslResponse => self.sasl_response(&line),
            Frame::Line if line.len() > config::POP3_MAX_LINE => self.bad("Command line too long"),
            Frame::Line => self.dispatch(&line),
        }
        true
    }

    fn dispatch(&mut self, line: &[u8]) {
        let cmd = match parser::parse(line) {
            Ok(c) => c,
            Err(e) => return self.bad(e),
        };
        match (&self.state, cmd) {
            (_, Command::Capa) => self.cmd_capa(),
            (_, Command::Quit) => self.cmd_quit(),
            (_, Command::Noop) if matches!(self.state, State::Transaction(_)) => self.ok("Done"),
            (State::Authorization { user: None }, Command::Stls)
                if self.starttls_offered && !self.secure =>
            {
                // RFC 2595 4: only in AUTHORIZATION, before USER.
                self.ok("Begin TLS negotiation");
                self.starttls_pending = true;
            }
            (_, Command::Stls) if self.secure => self.err("TLS is already active"),
            (_, Command::Stls) => self.err("STLS is not available on this connection"),
            (State::Authorization { .. }, cmd) => self.authorization(cmd),
            (State::Transaction(_), cmd) => self.transaction(cmd),
            (State::Done, _) => {}
        }
    }

    /// RFC 2449 5.
    fn cmd_capa(&mut self) {
        let mut c = String::from("+OK Capability list follows\r\n");
        c.push_str("TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n");
        if matches!(self.state, State::Authorization { .. }) && self.plaintext_allowed {
            c.push_str("USER\r\nSASL PLAIN\r\n");
        }
        if matches!(self.state, State::Authorization { .. })
            && self.starttls_offered
            && !self.secure
        {
            c.push_str("STLS\r\n");
        }
        if config::POP3_LOGIN_DELAY_SECS != 0 {
            c.push_str(&format!(
                "LOGIN-DELAY {}\r\n",
                config::POP3_LOGIN_DELAY_SECS
            ));
        }
        // This server never removes mail by itself.
        c.push_str("EXPIRE NEVER\r\n");
        c.push_str(&format!(
            "IMPLEMENTATION ipop3d-{}\r\n.\r\n",
            env!("CARGO_PKG_VERSION")
        ));
        self.out(&c);
    }

    /// RFC 1939 4 (QUIT before login) and 6 (the UPDATE state).
    fn cmd_quit(&mut self) {
        if let State::Transaction(drop) = &mut self.state {
            let left = drop.totals().0;
            let committed = drop.commit();
            if committed.as_ref().is_err_and(|e| self.waits_for_lock(e)) {
                return self.park(Job::Again(Command::Quit));
            }
            if let State::Transaction(drop) = std::mem::replace(&mut self.state, State::Done) {
                self.note_deletions(&drop);
            }
            match committed {
                Ok(()) => self.ok(&format!("Logging out ({left} messages left)")),
                Err(e) => {
                    self.log_failure("update", &e);
                    self.err(
                        "[SYS/TEMP] Some deleted messages were not removed; see the server log",
                    );
                }
            }
        } else {
            self.state = State::Done;
            self.ok("Logging out");
        }
        self.close("QUIT");
    }

    fn run_job(&mut self, job: Job) {
        match job {
            Job::Transfer(mut t, kind) => {
                let mut scratch = std::mem::take(&mut self.scratch);
                let r = t.pump(&mut self.output, config::OUTPUT_HIGH_WATER, &mut scratch);
                self.scratch = scratch;
                match r {
                    Ok(false) => self.job = Some(Job::Transfer(t, kind)),
                    Ok(true) => {
                        let c = match kind {
                            TransferKind::Retr => &mut self.counts.retr,
                            TransferKind::Top => &mut self.counts.top,
                        };
                        c.0 += 1;
                        c.1 += t.octets;
                    }
                    Err(e) => {
                        // Part of the message is out: the stream can't be repaired.
                        self.log_failure("read message", &e);
                        self.close("read error during RETR");
                    }
                }
            }
            Job::Listing { next, uidl } => self.list_some(next, uidl),
            Job::Again(Command::Quit) => self.cmd_quit(),
            Job::Again(cmd) => self.transaction(cmd),
            Job::Enter {
                user,
                method,
                store,
            } => self.open_maildrop(user, method, store),
        }
    }

    /// The DELEs standing when the session leaves TRANSACTION (committed or not).
    fn note_deletions(&mut self, drop: &Maildrop) {
        let (n, octets) = drop.marked_deleted();
        self.counts.dele = (n as u64, octets);
    }
}

/// An APOP timestamp (RFC 1939 7): `<pid.clock@host>`, never the same twice.
fn challenge() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static SERIAL: AtomicU32 = AtomicU32::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "<{}.{}.{}.{}@{}>",
        std::process::id(),
        SERIAL.fetch_add(1, Ordering::Relaxed),
        now.as_secs(),
        now.subsec_nanos(),
        crate::sys::hostname()
    )
}

impl Protocol for Session {
    fn feed(&mut self, data: &[u8]) {
        if !data.is_empty() {
            self.last_activity = Instant::now();
            self.input.extend_from_slice(data);
        }
    }

    fn wants_input(&self) -> bool {
        if self.starttls_pending {
            return false; // the next bytes are the TLS handshake, for the driver
        }
        !self.closed && self.input.len() < config::POP3_MAX_LINE + 65536
    }

    fn output(&mut self) -> &mut Vec<u8> {
        &mut self.output
    }

    fn is_closed(&self) -> bool {
        self.closed
    }

    fn before_login(&self) -> bool {
        matches!(self.state, State::Authorization { .. })
    }

    fn connection_lost(&mut self, reason: &'static str) {
        self.logout_reason.get_or_insert(reason);
    }

    fn idle_limit(&self) -> Duration {
        Duration::from_secs(config::POP3_AUTOLOGOUT_SECS)
    }

    /// The connection ended: a maildrop still in TRANSACTION is left untouched (RFC
    /// 1939 6: no UPDATE without QUIT), the lock goes, and the logout is logged.
    fn finish(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        if let State::Transaction(drop) = std::mem::replace(&mut self.state, State::Done) {
            self.note_deletions(&drop);
            drop.abandon();
        }
        let counts = self.counts;
        self.job = None;
        if let Some(user) = self.user_name.take() {
            crate::log::info(&format!(
                "logout user={user} peer={} reason={} retr={}/{} top={}/{} dele={}/{}",
                self.peer,
                self.logout_reason.unwrap_or("disconnected"),
                counts.retr.0,
                counts.retr.1,
                counts.top.0,
                counts.top.1,
                counts.dele.0,
                counts.dele.1,
            ));
        }
    }

    fn internal_error(&mut self, what: &str) {
        crate::log::error(&format!("internal error peer={} error={what}", self.peer));
        self.job = None;
        self.out("-ERR [SYS/TEMP] Internal server error; the session ends here\r\n");
        self.close("internal error");
    }

    fn take_starttls(&mut self) -> bool {
        std::mem::take(&mut self.starttls_pending)
    }

    fn tls_started(&mut self) {
        // Anything pipelined after STLS came in the clear: it is not trusted.
        self.input.clear();
        self.secure = true;
        self.starttls_offered = false;
        self.plaintext_allowed = true;
    }

    fn take_login(&mut self) -> Option<LoggedIn> {
        self.logins.take_accepted()
    }

    fn enter(&mut self, login: LoggedIn, store: Result<Box<dyn Store>, Refusal>) {
        self.enter_maildrop(login, store);
    }

    fn hand_off(&mut self, login: LoggedIn) -> Handoff {
        self.closed = true;
        login.into_handoff(std::mem::take(&mut self.input))
    }

    fn step(&mut self, now: Instant) -> Step {
        steps::step(self, now)
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
        &mut self.input
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
        // A client reading a long RETR is active; one that stopped reading makes no
        // progress here, and the autologout frees its maildrop.
        self.last_activity = now;
        if self.lock_waits.running() {
            crate::store::filelock::once(|| self.run_job(job));
        } else {
            self.run_job(job);
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
        self.input.contains(&b'\n')
    }

    /// RFC 1939 3's autologout timer; before login, the login deadline.
    fn logout_at(&self) -> Instant {
        let idle = self.last_activity + Duration::from_secs(config::POP3_AUTOLOGOUT_SECS);
        if matches!(self.state, State::Authorization { .. }) {
            idle.min(self.connected_at + Duration::from_secs(config::LOGIN_TIMEOUT_SECS))
        } else {
            idle
        }
    }

    /// RFC 1939 3: silently, without UPDATE.
    fn autologout(&mut self) {
        self.close("autologout");
    }

    fn close(&mut self, reason: &'static str) {
        Session::close(self, reason)
    }
}

#[cfg(test)]
mod fuzz {
    //! Mutated POP3 commands fed in random slices to sessions before and after login,
    //! over a real (temporary) Maildir: nothing may panic, output stays bounded, and
    //! no message is lost except by a DELE that a QUIT confirmed.
    use super::*;
    use crate::session::feed_in_slices;
    use crate::store::maildir::MaildirStore;
    use crate::util::fuzz::{Rng, mutate};

    const CORPUS: &[&str] = &[
        "USER fuzz\r\n",
        "PASS x y\r\n",
        "APOP fuzz 0123456789abcdef0123456789abcdef\r\n",
        "AUTH PLAIN\r\nAGZ1enoAeA==\r\n",
        "AUTH\r\n",
        "CAPA\r\n",
        "STAT\r\n",
        "LIST\r\n",
        "LIST 2\r\n",
        "UIDL\r\n",
        "UIDL 1\r\n",
        "RETR 1\r\n",
        "RETR 3\r\n",
        "TOP 2 1\r\n",
        "TOP 1 0\r\n",
        "DELE 1\r\n",
        "RSET\r\n",
        "NOOP\r\n",
        "STLS\r\n",
        "QUIT\r\n",
    ];

    const MESSAGES: &[&str] = &[
        "Subject: a\n\n.dot\nbody\n",
        "Subject: b\r\n\r\nline 1\r\nline 2\r\n",
        "Subject: c\n\nno newline at the end",
    ];

    #[test]
    fn mutated_commands_never_panic() {
        let dir = std::env::temp_dir().join(format!("ipop3d-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut rng = Rng(0x2545f4914f6cdd1d);
        let rounds = crate::util::fuzz::rounds(400);
        let mut transaction_steps = 0;
        for round in 0..rounds {
            let _ = std::fs::remove_dir_all(&dir);
            let mut store = MaildirStore::open(dir.clone()).expect("temp maildir");
            for (i, m) in MESSAGES.iter().enumerate() {
                std::fs::write(dir.join("new").join(format!("{round}.{i}.fuzz")), m).unwrap();
            }
            let mut s = Session::new("fuzz".into(), "/nonexistent".into());
            if round % 4 != 0 {
                let drop = Maildrop::open(&mut store).expect("maildrop");
                s.user_name = Some("fuzz".into());
                s.state = State::Transaction(Box::new(drop));
            }
            for _ in 0..12 {
                let mut cmd = CORPUS[rng.below(CORPUS.len())].as_bytes().to_vec();
                mutate(&mut cmd, &mut rng, b" .0123456789\r\n-+*=");
                feed_in_slices(&mut s, &cmd, &mut rng, |s| {
                    if matches!(s.state, State::Transaction(_)) {
                        transaction_steps += 1;
                    }
                });
                if s.is_closed() {
                    break;
                }
            }
            let quit = s.is_closed() && s.logout_reason == Some("QUIT");
            s.finish();
            // Without a QUIT nothing is deleted.
            if !quit {
                let left = ["new", "cur"]
                    .iter()
                    .map(|d| std::fs::read_dir(dir.join(d)).unwrap().count())
                    .sum::<usize>();
                assert_eq!(
                    left,
                    MESSAGES.len(),
                    "round {round}: mail lost without QUIT"
                );
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            transaction_steps > rounds,
            "the fuzzer must reach the TRANSACTION state ({transaction_steps})"
        );
    }
}
