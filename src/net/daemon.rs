//! Daemon mode: `imapd --listen ADDR:PORT` serves every connection from one thread on a
//! mio event loop. Sessions do bounded work per step (see `Session::step`), connections
//! with more work ready are served round-robin, output is written as sockets drain, and
//! input is read only while a session wants it, so one client never stalls another.

use super::guarded;
use crate::config;
use crate::imap::{Mode, Session};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Conn {
    stream: TcpStream,
    session: Session,
    /// Bytes of the session's output already written.
    written: usize,
    /// Edge-triggered readiness we have not yet consumed.
    readable: bool,
    writable: bool,
    deadline: Option<Instant>,
    queued: bool,
    /// When the session ended with output still unsent.
    closing_since: Option<Instant>,
}

/// How long a finished session's last output may wait for a client that does not read.
const CLOSING_GRACE: Duration = Duration::from_secs(30);

pub struct Daemon {
    poll: Poll,
    listeners: Vec<TcpListener>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    ready: VecDeque<usize>,
    users_file: PathBuf,
    live: usize,
}

/// Bind every address first (as root, for ports below 1024); serving comes later, so
/// the caller can drop privileges in between.
pub fn bind(addrs: &[SocketAddr], users_file: PathBuf) -> io::Result<Daemon> {
    let poll = Poll::new()?;
    let mut listeners = Vec::new();
    for (i, a) in addrs.iter().enumerate() {
        let mut l = TcpListener::bind(*a)?;
        poll.registry()
            .register(&mut l, Token(i), Interest::READABLE)?;
        listeners.push(l);
    }
    crate::sys::raise_nofile_limit();
    Ok(Daemon {
        poll,
        listeners,
        conns: Vec::new(),
        free: Vec::new(),
        timers: BinaryHeap::new(),
        ready: VecDeque::new(),
        users_file,
        live: 0,
    })
}

impl Daemon {
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let base = self.listeners.len();
        loop {
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
                let t = ev.token().0;
                if t < base {
                    self.accept(t);
                    continue;
                }
                let idx = t - base;
                if let Some(Some(c)) = self.conns.get_mut(idx) {
                    c.readable |= ev.is_readable() || ev.is_read_closed() || ev.is_error();
                    c.writable |= ev.is_writable();
                    self.drive(idx);
                }
            }
            // Timers: IDLE polls, login delays, autologout.
            let now = Instant::now();
            while let Some(Reverse((t, idx))) = self.timers.peek().copied() {
                if t > now {
                    break;
                }
                self.timers.pop();
                let due = matches!(self.conns.get(idx), Some(Some(c)) if c.deadline == Some(t));
                if due {
                    if let Some(Some(c)) = self.conns.get_mut(idx) {
                        c.deadline = None;
                    }
                    self.drive(idx);
                }
            }
            // One round for each connection that has work ready, then back to poll.
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
            let (mut stream, addr) = match self.listeners[li].accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    crate::log::error(&format!("accept failed: {e}"));
                    return;
                }
            };
            if self.live >= config::MAX_CONNECTIONS {
                let _ = stream.write(b"* BYE Too many connections; try again later\r\n");
                crate::log::warning(&format!(
                    "connection refused peer={} reason=too many connections",
                    addr.ip()
                ));
                continue;
            }
            let _ = stream.set_nodelay(true);
            let idx = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
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
            let session = Session::new(
                Mode::Daemon,
                addr.ip().to_string(),
                self.users_file.clone(),
                None,
            );
            self.conns[idx] = Some(Conn {
                stream,
                session,
                written: 0,
                readable: true,
                writable: true,
                deadline: None,
                queued: false,
                closing_since: None,
            });
            self.live += 1;
            self.drive(idx);
        }
    }

    /// Move one connection forward: read what it wants, step it, write what it made.
    fn drive(&mut self, idx: usize) {
        let Some(Some(c)) = self.conns.get_mut(idx) else {
            return;
        };
        let mut gone = false;
        // Read, at most a few buffers per turn, only while the session wants input.
        let mut buf = [0u8; 65536];
        let mut reads = 0;
        while c.readable && c.session.wants_input() && reads < 4 {
            match c.stream.read(&mut buf) {
                Ok(0) => {
                    c.readable = false;
                    gone = true;
                    break;
                }
                Ok(n) => {
                    reads += 1;
                    guarded(&mut c.session, |s| s.feed(&buf[..n]));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    gone = true;
                    break;
                }
            }
        }
        let step = guarded(&mut c.session, |s| s.step(Instant::now())).unwrap_or_default();
        // Write as much as the socket takes.
        loop {
            let out = c.session.output();
            if c.written >= out.len() {
                out.clear();
                c.written = 0;
                break;
            }
            if !c.writable {
                break;
            }
            match c.stream.write(&out[c.written..]) {
                Ok(0) => {
                    gone = true;
                    break;
                }
                Ok(n) => c.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    gone = true;
                    break;
                }
            }
        }
        if c.written > 0 && c.written >= config::OUTPUT_HIGH_WATER {
            // Keep the buffer from growing: drop what has been written.
            let w = c.written;
            c.session.output().drain(..w);
            c.written = 0;
        }
        let flushed = c.session.output().len() <= c.written;
        if gone {
            c.session.logout_reason_eof();
            c.session.finish();
            return self.remove(idx);
        }
        if c.session.is_closed() {
            if flushed {
                return self.remove(idx);
            }
            // A client that stops reading must not keep a finished session forever.
            let limit = *c.closing_since.get_or_insert_with(Instant::now) + CLOSING_GRACE;
            if Instant::now() >= limit {
                return self.remove(idx);
            }
            if c.deadline != Some(limit) {
                c.deadline = Some(limit);
                self.timers.push(Reverse((limit, idx)));
            }
            return;
        }
        // More to do now (and room to write it)? Then come back after others had a turn.
        let more_input = c.readable && c.session.wants_input();
        if (step.busy || more_input) && flushed && !c.queued {
            c.queued = true;
            self.ready.push_back(idx);
        }
        if let Some(d) = step.deadline {
            if c.deadline != Some(d) {
                c.deadline = Some(d);
                self.timers.push(Reverse((d, idx)));
            }
        }
    }

    fn remove(&mut self, idx: usize) {
        if let Some(mut c) = self.conns[idx].take() {
            let _ = self.poll.registry().deregister(&mut c.stream);
            self.free.push(idx);
            self.live -= 1;
        }
    }
}
