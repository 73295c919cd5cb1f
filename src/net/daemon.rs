//! Daemon mode: `imapd --listen ADDR:PORT` (or ipop3d) serves every connection of the
//! process; one daemon may listen for several protocols (the demo serves IMAP and POP3).
//!
//! One thread runs the mio event loop and does nothing but socket I/O: accept, read,
//! write, timers. The protocol engine's work (`Protocol::step`: parsing, crypt(3) at
//! login, opening a 100,000-message folder, a slice of FETCH or SEARCH) runs on a small
//! pool of worker threads: a session is handed to a worker whole, and comes back with
//! its output through a channel and a mio `Waker`. Sessions not logged in yet step on
//! a pool of their own, so password checks (PAM may wait on a directory) never hold
//! up a logged-in session. So a slow client, a 100 MB APPEND,
//! a huge mailbox or an expensive password hash never holds up another client's NOOP.
//! Steps are bounded (see `imap::Session::step`), so a few workers serve thousands of
//! sessions.

use super::tls::Tls;
use crate::config;
use crate::session::{Mode, Peer, Protocol, Service, Step, guarded};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Set by SIGHUP: load the TLS certificate and key again.
static RELOAD: AtomicBool = AtomicBool::new(false);

/// The token of the workers' waker; listeners and connections use small numbers.
const WAKER: Token = Token(usize::MAX);

/// How long a finished session's last output may wait for a client that does not read.
const CLOSING_GRACE: Duration = Duration::from_secs(30);

struct Conn {
    stream: TcpStream,
    /// None while a worker has it.
    session: Option<Box<dyn Protocol>>,
    /// Bytes of the session's output already written.
    written: usize,
    /// Edge-triggered readiness not yet consumed.
    readable: bool,
    writable: bool,
    /// The client closed its side (seen while the session was away).
    gone: bool,
    deadline: Option<Instant>,
    /// The time of this connection's live entry in the timer heap, if any: a later
    /// deadline is not pushed again but moved to when that entry fires, so the heap
    /// holds about one entry per connection however often the deadline moves.
    scheduled: Option<Instant>,
    queued: bool,
    /// When the session ended with output still unsent.
    closing_since: Option<Instant>,
    /// TLS, from the first byte (`--tls-listen`) or after STARTTLS/STLS.
    tls: Option<Tls>,
    /// The client's address, for log lines.
    peer: String,
    /// Counted in `prelogin` (by this address) until the session logs in or ends.
    prelogin: Option<std::net::IpAddr>,
    /// A TLS session handed to the user's process: the daemon keeps the TLS and
    /// relays plaintext over a socket pair (rustls state cannot move processes).
    relay: Option<Relay>,
}

/// The daemon's end of a handed-off TLS session.
struct Relay {
    sock: mio::net::UnixStream,
    /// Plaintext from the client not yet written to the user's process.
    to_child: Vec<u8>,
    /// Plaintext from the user's process not yet taken by TLS.
    from_child: Vec<u8>,
    readable: bool,
    writable: bool,
}

/// Relays buffer at most this much in each direction before they stop reading.
const RELAY_BUFFER: usize = 256 * 1024;

/// Tokens of relay sockets: RELAY_BASE + connection index.
const RELAY_BASE: usize = usize::MAX / 2;

/// A session sent to a worker: step it, or (`finish`) end it.
struct Work {
    idx: usize,
    session: Box<dyn Protocol>,
    finish: bool,
}

struct Done {
    idx: usize,
    session: Box<dyn Protocol>,
    step: Step,
}

pub struct Daemon {
    poll: Poll,
    /// Listeners, their protocol, and whether they speak TLS from the first byte.
    listeners: Vec<(TcpListener, &'static Service, bool)>,
    conns: Vec<Option<Conn>>,
    /// The protocol each connection slot speaks (for a hand-off).
    services: Vec<&'static Service>,
    free: Vec<usize>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    ready: VecDeque<usize>,
    users_file: PathBuf,
    live: usize,
    /// Connections not logged in yet, by client address (MAX_PRELOGIN_PER_ADDRESS).
    prelogin: std::collections::HashMap<std::net::IpAddr, usize>,
    /// accept() failed for lack of descriptors: try again when a connection closes.
    accept_paused: bool,
    work: mpsc::Sender<Work>,
    /// Steps of sessions not logged in yet go to workers of their own (`before_login`).
    login_work: mpsc::Sender<Work>,
    done: mpsc::Receiver<Done>,
    wake: Option<Arc<Wake>>,
}

/// Bind every address first (as root, for ports below 1024); the workers start and
/// sessions are served later, so the caller can drop privileges in between.
pub fn bind(
    addrs: &[(SocketAddr, &'static Service, bool)],
    users_file: PathBuf,
) -> io::Result<Daemon> {
    let poll = Poll::new()?;
    let mut listeners = Vec::new();
    for (i, (a, service, tls)) in addrs.iter().enumerate() {
        let mut l = TcpListener::from_std(crate::sys::tcp_listener(*a)?);
        poll.registry()
            .register(&mut l, Token(i), Interest::READABLE)?;
        listeners.push((l, *service, *tls));
    }
    crate::sys::raise_nofile_limit();
    // Channels now, threads in `run` (after any privilege drop by the caller).
    let (work, _) = mpsc::channel();
    let (login_work, _) = mpsc::channel();
    let (_, done) = mpsc::channel();
    Ok(Daemon {
        poll,
        listeners,
        conns: Vec::new(),
        services: Vec::new(),
        free: Vec::new(),
        timers: BinaryHeap::new(),
        ready: VecDeque::new(),
        users_file,
        live: 0,
        prelogin: std::collections::HashMap::new(),
        accept_paused: false,
        work,
        login_work,
        done,
        wake: None,
    })
}

/// Wakes the event loop, once per batch of finished steps rather than once per step:
/// the loop clears `pending` before it drains the channel.
struct Wake {
    waker: Waker,
    pending: AtomicBool,
}

/// A pool of worker threads taking sessions from one queue. A worker in a long wait
/// for a lock (`util::blocking`) has a substitute run for it meanwhile, so the workers
/// free to serve other sessions stay as many.
struct Pool {
    name: &'static str,
    jobs: Mutex<mpsc::Receiver<Work>>,
    done: mpsc::Sender<Done>,
    wake: Arc<Wake>,
    /// Workers (and substitutes) in a long wait now.
    waiting: AtomicUsize,
    /// Substitutes running; each retires once there are more than workers waiting.
    substitutes: AtomicUsize,
}

/// At most this many substitutes at once (a thread each, mostly asleep).
const MAX_SUBSTITUTES: usize = 8 * config::WORKERS;

thread_local! {
    static POOL: std::cell::RefCell<Option<Arc<Pool>>> = const { std::cell::RefCell::new(None) };
}

impl Pool {
    fn spawn(self: &Arc<Self>, i: usize, substitute: bool) -> io::Result<()> {
        let pool = self.clone();
        let name = if substitute {
            format!("{}-sub", self.name)
        } else {
            format!("{}-{i}", self.name)
        };
        std::thread::Builder::new()
            .name(name)
            .spawn(move || worker(pool, substitute))?;
        Ok(())
    }

    /// `util::blocking`'s hook: a worker of this thread's pool starts or ends a long wait.
    fn long_wait(begin: bool) {
        POOL.with(|p| {
            let Some(pool) = p.borrow().clone() else {
                return;
            };
            if !begin {
                pool.waiting.fetch_sub(1, Ordering::AcqRel);
                return;
            }
            let waiting = pool.waiting.fetch_add(1, Ordering::AcqRel) + 1;
            let subs = &pool.substitutes;
            let mut n = subs.load(Ordering::Acquire);
            while n < waiting && n < MAX_SUBSTITUTES {
                match subs.compare_exchange(n, n + 1, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => {
                        if pool.spawn(0, true).is_err() {
                            subs.fetch_sub(1, Ordering::AcqRel);
                        }
                        return;
                    }
                    Err(now) => n = now,
                }
            }
        });
    }

    /// Should this substitute end now (fewer workers waiting than substitutes)?
    fn retire(&self) -> bool {
        let mut n = self.substitutes.load(Ordering::Acquire);
        while n > self.waiting.load(Ordering::Acquire) {
            match self
                .substitutes
                .compare_exchange(n, n - 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(now) => n = now,
            }
        }
        false
    }
}

fn worker(pool: Arc<Pool>, substitute: bool) {
    POOL.with(|p| *p.borrow_mut() = Some(pool.clone()));
    loop {
        if substitute && pool.retire() {
            return;
        }
        let next = {
            let jobs = pool.jobs.lock().unwrap_or_else(|e| e.into_inner());
            if substitute {
                // Woken now and then to see whether it is still needed.
                match jobs.recv_timeout(Duration::from_secs(1)) {
                    Ok(w) => Ok(w),
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    Err(mpsc::RecvTimeoutError::Disconnected) => Err(()),
                }
            } else {
                jobs.recv().map_err(|_| ())
            }
        };
        let Ok(Work {
            idx,
            mut session,
            finish,
        }) = next
        else {
            return;
        };
        let step = if finish {
            guarded(session.as_mut(), |s| s.finish());
            Step::default()
        } else {
            guarded(session.as_mut(), |s| s.step(Instant::now())).unwrap_or_default()
        };
        if pool.done.send(Done { idx, session, step }).is_err() {
            return;
        }
        if !pool.wake.pending.swap(true, Ordering::AcqRel) {
            let _ = pool.wake.waker.wake();
        }
    }
}

impl Daemon {
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|(l, _, _)| l.local_addr().ok())
            .collect()
    }

    fn start_workers(&mut self) -> io::Result<()> {
        let wake = Arc::new(Wake {
            waker: Waker::new(self.poll.registry(), WAKER)?,
            pending: AtomicBool::new(false),
        });
        let (done_tx, done_rx) = mpsc::channel();
        let pool = |name: &'static str, n: usize| -> io::Result<mpsc::Sender<Work>> {
            let (work_tx, work_rx) = mpsc::channel();
            let pool = Arc::new(Pool {
                name,
                jobs: Mutex::new(work_rx),
                done: done_tx.clone(),
                wake: wake.clone(),
                waiting: AtomicUsize::new(0),
                substitutes: AtomicUsize::new(0),
            });
            for i in 0..n {
                pool.spawn(i, false)?;
            }
            Ok(work_tx)
        };
        crate::util::blocking::set_hook(Pool::long_wait);
        self.work = pool("worker", config::WORKERS.max(2))?;
        self.login_work = pool("login", config::LOGIN_WORKERS.max(1))?;
        self.done = done_rx;
        self.wake = Some(wake);
        Ok(())
    }

    pub fn run(mut self) -> io::Result<()> {
        // Before the workers start: their arenas are chosen at their first allocation.
        crate::sys::return_freed_memory(
            Duration::from_secs(config::MALLOC_TRIM_SECS),
            config::MALLOC_ARENAS,
        );
        self.start_workers()?;
        let reaps = crate::sys::euid() == 0;
        if reaps {
            // Before anything (a package upgrade) can replace the executable.
            super::handoff::prepare();
        }
        let mut events = Events::with_capacity(1024);
        let base = self.listeners.len();
        crate::sys::on_sighup(&RELOAD);
        loop {
            if reaps {
                // Session processes of handed-off logins that have ended.
                crate::sys::reap_children();
            }
            if RELOAD.swap(false, Ordering::AcqRel) {
                // New connections get the new certificate; sessions keep theirs.
                super::tls::reload(true);
            }
            let now = Instant::now();
            let timeout = if !self.ready.is_empty() {
                Some(Duration::ZERO)
            } else {
                self.timers
                    .peek()
                    .map(|Reverse((t, _))| t.saturating_duration_since(now))
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for ev in events.iter() {
                let t = ev.token();
                if t == WAKER {
                    continue; // finished steps are collected below
                }
                if t.0 < base {
                    self.accept(t.0);
                    continue;
                }
                if t.0 >= RELAY_BASE {
                    let idx = t.0 - RELAY_BASE;
                    if let Some(Some(Conn { relay: Some(r), .. })) = self.conns.get_mut(idx) {
                        r.readable |= ev.is_readable() || ev.is_read_closed() || ev.is_error();
                        r.writable |= ev.is_writable();
                        self.relay_io(idx);
                    }
                    continue;
                }
                let idx = t.0 - base;
                if let Some(Some(c)) = self.conns.get_mut(idx) {
                    c.readable |= ev.is_readable() || ev.is_read_closed() || ev.is_error();
                    c.writable |= ev.is_writable();
                    if c.relay.is_some() {
                        self.relay_io(idx);
                    } else {
                        self.drive(idx);
                    }
                }
            }
            if let Some(w) = &self.wake {
                w.pending.store(false, Ordering::Release);
            }
            while let Ok(done) = self.done.try_recv() {
                self.returned(done);
            }
            // Timers: IDLE polls, login delays, autologout.
            let now = Instant::now();
            while let Some(Reverse((t, idx))) = self.timers.peek().copied() {
                if t > now {
                    break;
                }
                self.timers.pop();
                if let Some(Some(c)) = self.conns.get_mut(idx) {
                    if c.scheduled != Some(t) {
                        continue; // superseded by an earlier entry
                    }
                    c.scheduled = None;
                    match c.deadline {
                        Some(d) if d <= now => {
                            c.deadline = None;
                            self.drive(idx);
                        }
                        // The deadline moved later meanwhile: wait for it.
                        Some(d) => {
                            c.scheduled = Some(d);
                            self.timers.push(Reverse((d, idx)));
                        }
                        None => {}
                    }
                }
            }
            // Entries of connections that have ended stay in the heap until they would
            // fire (up to the autologout period): a daemon taking twenty connections a
            // second kept tens of thousands. Dropped once they outnumber the live ones.
            if self.timers.len() > 2 * self.live + 1024 {
                let conns = &self.conns;
                self.timers.retain(|Reverse((t, idx))| {
                    matches!(conns.get(*idx), Some(Some(c)) if c.scheduled == Some(*t))
                });
            }
            // One more round for each connection that had work ready.
            for _ in 0..self.ready.len() {
                let Some(idx) = self.ready.pop_front() else {
                    break;
                };
                if let Some(Some(c)) = self.conns.get_mut(idx) {
                    c.queued = false;
                    self.drive(idx);
                }
            }
        }
    }

    fn accept(&mut self, li: usize) {
        loop {
            let (listener, service, secure) = &self.listeners[li];
            let (service, secure): (&'static Service, bool) = (service, *secure);
            let (mut stream, addr) = match listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors (EMFILE, ENFILE) or memory: the queued
                    // connections wait in the kernel; the next close tries again (the
                    // listener is edge-triggered: it would not say so by itself).
                    if !self.accept_paused {
                        crate::log::error(&format!(
                            "accept failed: {e}; resuming when a connection closes"
                        ));
                    }
                    self.accept_paused = true;
                    return;
                }
            };
            if self.live >= config::MAX_CONNECTIONS {
                let _ = stream.write(service.too_busy);
                crate::log::warning(&format!(
                    "connection refused peer={} reason=too many connections",
                    addr.ip()
                ));
                continue;
            }
            let waiting = self.prelogin.get(&addr.ip()).copied().unwrap_or(0);
            if waiting >= config::MAX_PRELOGIN_PER_ADDRESS {
                let _ = stream.write(service.too_busy);
                crate::log::warning(&format!(
                    "connection refused peer={} reason=too many connections not logged in from this address",
                    addr.ip()
                ));
                continue;
            }
            let _ = stream.set_nodelay(true);
            let tls = if secure {
                match Tls::implicit(&addr.ip().to_string()) {
                    Some(t) => Some(t),
                    None => continue,
                }
            } else {
                None
            };
            let idx = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.services.push(service);
                self.conns.len() - 1
            });
            self.services[idx] = service;
            let token = Token(self.listeners.len() + idx);
            if let Err(e) = self.poll.registry().register(
                &mut stream,
                token,
                Interest::READABLE | Interest::WRITABLE,
            ) {
                crate::log::error(&format!("register failed: {e}"));
                self.free.push(idx);
                continue;
            }
            let peer = Peer {
                addr: Some(addr),
                mode: Mode::Daemon,
                secure,
                starttls: !secure && super::tls::available(),
            };
            let session = (service.start)(peer, self.users_file.clone());
            *self.prelogin.entry(addr.ip()).or_insert(0) += 1;
            self.conns[idx] = Some(Conn {
                stream,
                session: Some(session),
                written: 0,
                readable: true,
                writable: true,
                gone: false,
                deadline: None,
                scheduled: None,
                queued: false,
                closing_since: None,
                tls,
                peer: addr.ip().to_string(),
                prelogin: Some(addr.ip()),
                relay: None,
            });
            self.live += 1;
            self.drive(idx);
        }
    }

    /// Read what the session wants, then send it to a worker for a step. A session that
    /// is with a worker only has its readiness noted.
    fn drive(&mut self, idx: usize) {
        let Some(Some(c)) = self.conns.get_mut(idx) else {
            return;
        };
        let Some(session) = c.session.as_mut() else {
            return;
        };
        let mut buf = [0u8; 65536];
        let mut reads = 0;
        while c.readable && session.wants_input() && reads < 4 {
            match c.stream.read(&mut buf) {
                Ok(0) => {
                    c.readable = false;
                    c.gone = true;
                    break;
                }
                Ok(n) => {
                    reads += 1;
                    match c.tls.as_mut() {
                        None => session.feed(&buf[..n]),
                        Some(t) => {
                            let mut plain = Vec::new();
                            if let Err(e) = t.receive(&buf[..n], &mut plain) {
                                crate::log::notice(&format!(
                                    "TLS failed peer={} error={e}",
                                    c.peer
                                ));
                                c.gone = true;
                                break;
                            }
                            if t.just_established() {
                                crate::log::info(&format!(
                                    "TLS established peer={} {}",
                                    c.peer,
                                    t.describe()
                                ));
                            }
                            if !plain.is_empty() {
                                session.feed(&plain);
                            }
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    c.gone = true;
                    break;
                }
            }
        }
        let finish = c.gone;
        if finish {
            session.connection_lost("connection closed");
        }
        let session = c.session.take().expect("present");
        let pool = if session.before_login() {
            &self.login_work
        } else {
            &self.work
        };
        if let Err(mpsc::SendError(w)) = pool.send(Work {
            idx,
            session,
            finish,
        }) {
            // No workers (they only stop when the daemon does): keep the session.
            c.session = Some(w.session);
        }
    }

    /// A worker is done with a session: write its output and schedule what comes next.
    fn returned(&mut self, done: Done) {
        let Done {
            idx,
            session,
            mut step,
        } = done;
        if !session.before_login() {
            self.uncount_prelogin(idx);
        }
        let Some(Some(c)) = self.conns.get_mut(idx) else {
            return;
        };
        c.session = Some(session);
        let session = c.session.as_mut().expect("just put back");
        if let Some(login) = session.take_login() {
            if super::privsep::hands_off(Mode::Daemon) {
                let mut h = session.hand_off(login);
                // Output not yet written goes along, ahead of the login's answer.
                let out = std::mem::take(session.output());
                h.output = out[c.written.min(out.len())..].to_vec();
                return self.hand_off(idx, h);
            }
            // A `--user` daemon: the store opens as the daemon's user, here (a few
            // stat calls), and the session goes on with its next step.
            let store = super::privsep::open_here(&login.user, Mode::Daemon, &login.peer);
            session.enter(login, store);
            step.busy = true; // its answer, and what the client pipelined after it
        }
        let mut broken = false;
        if let Some(t) = c.tls.as_mut() {
            // Plaintext into TLS as far as its buffer takes it, ciphertext out.
            loop {
                let out = session.output();
                if c.written < out.len() {
                    let n = t.push(&out[c.written..]);
                    c.written += n;
                }
                if !t.wants_write() || !c.writable {
                    break;
                }
                match t.write_to(&mut c.stream) {
                    Ok(0) => {
                        broken = true;
                        break;
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.writable = false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        broken = true;
                        break;
                    }
                }
            }
            let out = session.output();
            if c.written >= out.len() {
                out.clear();
                crate::util::release_spare(out);
                c.written = 0;
            }
        }
        loop {
            if c.tls.is_some() {
                break;
            }
            let out = session.output();
            if c.written >= out.len() {
                out.clear();
                crate::util::release_spare(out);
                c.written = 0;
                break;
            }
            if !c.writable {
                break;
            }
            match c.stream.write(&out[c.written..]) {
                Ok(0) => {
                    broken = true;
                    break;
                }
                Ok(n) => c.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    broken = true;
                    break;
                }
            }
        }
        if c.written >= config::OUTPUT_HIGH_WATER {
            // Keep the buffer from growing: drop what has been written.
            let w = c.written;
            session.output().drain(..w);
            c.written = 0;
        }
        let flushed =
            session.output().len() <= c.written && c.tls.as_ref().is_none_or(|t| !t.wants_write());
        if flushed && !broken && session.take_starttls() {
            // The "begin TLS" answer is out in the clear; from here on, TLS.
            match Tls::new() {
                Some(t) => {
                    c.tls = Some(t);
                    session.tls_started();
                    if !c.queued {
                        c.queued = true;
                        self.ready.push_back(idx);
                    }
                }
                None => {
                    crate::log::error("STARTTLS: certificate no longer available");
                    return self.remove(idx);
                }
            }
        }
        if session.is_closed() || broken {
            if flushed || broken || c.gone {
                return self.remove(idx);
            }
            // A client that stops reading must not keep a finished session forever.
            let limit = *c.closing_since.get_or_insert_with(Instant::now) + CLOSING_GRACE;
            if Instant::now() >= limit {
                return self.remove(idx);
            }
            Self::set_deadline(&mut self.timers, c, idx, limit);
            return;
        }
        // More to do now (and the output went out)? Come back after the others.
        let more_input = c.readable && session.wants_input();
        if (step.busy || more_input) && flushed && !c.queued {
            c.queued = true;
            self.ready.push_back(idx);
        }
        if let Some(d) = step.deadline {
            Self::set_deadline(&mut self.timers, c, idx, d);
        }
    }

    /// Call the connection's session again at `d`: a heap entry only when none earlier
    /// is pending (a session that moves its deadline on every step adds nothing).
    fn set_deadline(
        timers: &mut BinaryHeap<Reverse<(Instant, usize)>>,
        c: &mut Conn,
        idx: usize,
        d: Instant,
    ) {
        c.deadline = Some(d);
        if c.scheduled.is_none_or(|s| d < s) {
            c.scheduled = Some(d);
            timers.push(Reverse((d, idx)));
        }
    }

    /// Pass a logged-in connection to a process of the user (`net::handoff`) and forget
    /// it: our descriptor is closed, not shut down, so the connection stays up.
    fn hand_off(&mut self, idx: usize, h: crate::session::Handoff) {
        // Logged in: no longer one of its address's connections waiting to log in.
        self.uncount_prelogin(idx);
        if self.conns[idx].as_ref().is_some_and(|c| c.tls.is_some()) {
            return self.hand_off_tls(idx, h);
        }
        let Some(mut c) = self.conns[idx].take() else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut c.stream);
        let service = self.services[idx];
        use std::os::fd::AsRawFd;
        let user = h.user.name.clone();
        if let Err(e) = super::handoff::spawn(c.stream.as_raw_fd(), service, &self.users_file, &h) {
            crate::log::error(&format!(
                "login refused user={user} reason=cannot start the session process: {e}"
            ));
            let _ = c
                .stream
                .write(b"* BYE Cannot start your session; see the server log\r\n");
        }
        drop(c);
        self.free.push(idx);
        self.live -= 1;
    }

    /// A TLS session logs in inside a root daemon: the user's process gets one end of
    /// a socket pair, the daemon keeps the TLS connection and relays plaintext.
    fn hand_off_tls(&mut self, idx: usize, h: crate::session::Handoff) {
        let service = self.services[idx];
        let pair = std::os::unix::net::UnixStream::pair().and_then(|(ours, theirs)| {
            use std::os::fd::AsRawFd;
            super::handoff::spawn(theirs.as_raw_fd(), service, &self.users_file, &h)?;
            ours.set_nonblocking(true)?;
            Ok(ours)
        });
        let Some(Some(c)) = self.conns.get_mut(idx) else {
            return;
        };
        c.session = None;
        match pair {
            Ok(ours) => {
                let mut sock = mio::net::UnixStream::from_std(ours);
                if let Err(e) = self.poll.registry().register(
                    &mut sock,
                    Token(RELAY_BASE + idx),
                    Interest::READABLE | Interest::WRITABLE,
                ) {
                    crate::log::error(&format!("register relay failed: {e}"));
                    return self.remove(idx);
                }
                c.relay = Some(Relay {
                    sock,
                    to_child: Vec::new(),
                    from_child: Vec::new(),
                    readable: true,
                    writable: true,
                });
                self.relay_io(idx);
            }
            Err(e) => {
                crate::log::error(&format!(
                    "login refused user={} reason=cannot start the session process: {e}",
                    h.user.name
                ));
                if let Some(t) = c.tls.as_mut() {
                    t.push(service.cannot_serve);
                    let _ = t.write_to(&mut c.stream);
                }
                self.remove(idx);
            }
        }
    }

    /// Move what can move between the TLS client and the user's process.
    fn relay_io(&mut self, idx: usize) {
        let Some(Some(c)) = self.conns.get_mut(idx) else {
            return;
        };
        let (Some(t), Some(r)) = (c.tls.as_mut(), c.relay.as_mut()) else {
            return;
        };
        let mut buf = vec![0u8; 65536];
        let mut end = false;
        loop {
            let mut progress = false;
            // Client -> TLS -> plaintext -> the user's process.
            if c.readable && r.to_child.len() < RELAY_BUFFER {
                match c.stream.read(&mut buf) {
                    Ok(0) => end = true,
                    Ok(n) => {
                        progress = true;
                        if let Err(e) = t.receive(&buf[..n], &mut r.to_child) {
                            crate::log::notice(&format!("TLS failed peer={} error={e}", c.peer));
                            end = true;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.readable = false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => progress = true,
                    Err(_) => end = true,
                }
            }
            if !r.to_child.is_empty() && r.writable {
                match r.sock.write(&r.to_child) {
                    Ok(n) => {
                        r.to_child.drain(..n);
                        progress = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => r.writable = false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => progress = true,
                    Err(_) => end = true,
                }
            }
            // The user's process -> TLS -> client.
            if r.readable && r.from_child.len() < RELAY_BUFFER {
                match r.sock.read(&mut buf) {
                    Ok(0) => {
                        // The session ended: say close_notify after its last words.
                        t.push(&std::mem::take(&mut r.from_child));
                        t.close();
                        end = true;
                    }
                    Ok(n) => {
                        r.from_child.extend_from_slice(&buf[..n]);
                        progress = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => r.readable = false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => progress = true,
                    Err(_) => end = true,
                }
            }
            if !r.from_child.is_empty() {
                let n = t.push(&r.from_child);
                if n > 0 {
                    r.from_child.drain(..n);
                    progress = true;
                }
            }
            while t.wants_write() && c.writable {
                match t.write_to(&mut c.stream) {
                    Ok(0) => {
                        end = true;
                        break;
                    }
                    Ok(_) => progress = true,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.writable = false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        end = true;
                        break;
                    }
                }
            }
            if end || !progress {
                break;
            }
        }
        if end {
            if let Some(mut r) = c.relay.take() {
                let _ = self.poll.registry().deregister(&mut r.sock);
            }
            // Last ciphertext (close_notify) as far as the socket takes it now.
            if let Some(t) = c.tls.as_mut() {
                while t.wants_write() {
                    if !matches!(t.write_to(&mut c.stream), Ok(n) if n > 0) {
                        break;
                    }
                }
            }
            self.remove(idx);
        }
    }

    /// The connection logged in or ended: no longer one of its address's waiting ones.
    fn uncount_prelogin(&mut self, idx: usize) {
        let Some(Some(c)) = self.conns.get_mut(idx) else {
            return;
        };
        if let Some(ip) = c.prelogin.take() {
            if let Some(n) = self.prelogin.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    self.prelogin.remove(&ip);
                }
            }
        }
    }

    fn remove(&mut self, idx: usize) {
        self.uncount_prelogin(idx);
        if let Some(mut c) = self.conns[idx].take() {
            let _ = self.poll.registry().deregister(&mut c.stream);
            // Unread input at close makes the kernel reset the connection, which can
            // destroy the last words (BYE, -ERR) before the client reads them: end our
            // side first, and take what has already arrived.
            let _ = c.stream.shutdown(std::net::Shutdown::Write);
            let mut buf = [0u8; 16384];
            for _ in 0..64 {
                match c.stream.read(&mut buf) {
                    Ok(n) if n > 0 => {}
                    _ => break,
                }
            }
            self.free.push(idx);
            self.live -= 1;
        }
        if self.accept_paused {
            // A descriptor is free again: serve what queued meanwhile.
            self.accept_paused = false;
            for li in 0..self.listeners.len() {
                self.accept(li);
            }
        }
    }
}
