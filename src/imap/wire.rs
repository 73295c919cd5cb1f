//! IMAP's framing (RFC 3501 2.2, 4.3, 7.5; RFC 7888 non-synchronizing literals):
//! lines, literals and literal data streamed past the command, knowing no command. The
//! engine feeds bytes in and takes events out; when a line announces a literal it
//! decides what becomes of it (read into the command, streamed to a sink as APPEND's
//! message is, or refused). Usable by any protocol of the same framing (ManageSieve).

/// What the framer found.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A whole command: its lines, each announced literal's data inline after its
    /// `{n}\r\n` marker (the form the parser reads).
    Command(Vec<u8>),
    /// A line ended in a literal announcement: `command_so_far` is the command up to
    /// the marker. Nothing more is read until the engine calls `read_literal`,
    /// `stream_literal` or `refuse_literal`.
    Literal { size: u64, sync: bool },
    /// A line longer than the limit: the stream cannot be resynchronised.
    LineTooLong,
    /// The command with its literals is longer than the limit.
    CommandTooLong,
}

#[derive(Debug, PartialEq, Eq)]
enum Reading {
    Lines,
    /// A `Literal` event is waiting for the engine's decision.
    Deciding {
        size: u64,
        sync: bool,
        marker: Vec<u8>,
    },
    /// Literal data going into the command.
    Literal {
        remaining: usize,
    },
    /// Literal data for the engine (`streamed`), not kept.
    Streamed {
        remaining: u64,
    },
}

pub struct Framer {
    input: Vec<u8>,
    command: Vec<u8>,
    reading: Reading,
    max_line: usize,
    max_command: usize,
}

impl Framer {
    /// Lines up to `max_line` octets; a command with its literals up to `max_command`.
    pub fn new(max_line: usize, max_command: usize) -> Framer {
        Framer {
            input: Vec::new(),
            command: Vec::new(),
            reading: Reading::Lines,
            max_line,
            max_command,
        }
    }

    pub fn feed(&mut self, data: &[u8]) {
        self.input.extend_from_slice(data);
    }

    /// Bytes received and not yet framed (what a hand-off carries on).
    pub fn input_mut(&mut self) -> &mut Vec<u8> {
        &mut self.input
    }

    pub fn buffered(&self) -> usize {
        self.input.len()
    }

    /// The command up to the literal being decided on.
    pub fn command_so_far(&self) -> &[u8] {
        &self.command
    }

    /// Forget the command being assembled (after an error answered in its place).
    pub fn clear_command(&mut self) {
        self.command.clear();
        crate::util::release_spare(&mut self.command);
    }

    /// Is there something `next_event` (or `streamed`) can act on without more input?
    pub fn ready(&self) -> bool {
        match self.reading {
            Reading::Lines => self.input.contains(&b'\n'),
            Reading::Deciding { .. } => false,
            Reading::Literal { .. } | Reading::Streamed { .. } => !self.input.is_empty(),
        }
    }

    pub fn streaming(&self) -> bool {
        matches!(self.reading, Reading::Streamed { .. })
    }

    /// The next event; None when more input is needed (or a decision, or streamed
    /// data is waiting to be taken).
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            match self.reading {
                Reading::Deciding { .. } | Reading::Streamed { .. } => return None,
                Reading::Literal { remaining } => {
                    if self.input.is_empty() {
                        return None;
                    }
                    let n = remaining.min(self.input.len());
                    self.command.extend_from_slice(&self.input[..n]);
                    self.input.drain(..n);
                    self.reading = if n == remaining {
                        Reading::Lines
                    } else {
                        Reading::Literal {
                            remaining: remaining - n,
                        }
                    };
                }
                Reading::Lines => {
                    let line = match self.line() {
                        Ok(Some(l)) => l,
                        Ok(None) => return None,
                        Err(e) => return Some(e),
                    };
                    if self.command.len() + line.len() > self.max_command {
                        self.clear_command();
                        return Some(Event::CommandTooLong);
                    }
                    // A line ending in {n} or {n+} announces a literal.
                    if let Some((size, sync, at)) = literal_marker(&line) {
                        self.command.extend_from_slice(&line[..at]);
                        self.reading = Reading::Deciding {
                            size,
                            sync,
                            marker: line[at..].to_vec(),
                        };
                        return Some(Event::Literal { size, sync });
                    }
                    self.command.extend_from_slice(&line);
                    let command = std::mem::take(&mut self.command);
                    return Some(Event::Command(command));
                }
            }
        }
    }

    /// One raw line (its CRLF or bare LF taken off), for the engine's own modes
    /// (a SASL response, IDLE's DONE). Ok(None): not complete yet.
    pub fn line(&mut self) -> Result<Option<Vec<u8>>, Event> {
        let Some(lf) = self.input.iter().position(|&b| b == b'\n') else {
            return if self.input.len() > self.max_line {
                Err(Event::LineTooLong)
            } else {
                Ok(None)
            };
        };
        if lf > self.max_line {
            return Err(Event::LineTooLong);
        }
        Ok(Some(crate::util::take_line(&mut self.input, lf)))
    }

    fn decided(&mut self) -> (u64, Vec<u8>) {
        match std::mem::replace(&mut self.reading, Reading::Lines) {
            Reading::Deciding { size, marker, .. } => (size, marker),
            other => panic!("no literal to decide on ({other:?})"),
        }
    }

    /// Read the announced literal into the command.
    pub fn read_literal(&mut self) {
        let (size, marker) = self.decided();
        self.command.extend_from_slice(&marker);
        self.command.extend_from_slice(b"\r\n");
        self.reading = if size == 0 {
            Reading::Lines
        } else {
            Reading::Literal {
                remaining: size as usize,
            }
        };
    }

    /// Hand the announced literal's data to the engine (`streamed`) instead; the
    /// command so far is the engine's to keep (taken here). The line that follows the
    /// data comes as a `Command` of its own.
    pub fn stream_literal(&mut self) -> Vec<u8> {
        let (size, _) = self.decided();
        self.reading = if size == 0 {
            Reading::Lines
        } else {
            Reading::Streamed { remaining: size }
        };
        std::mem::take(&mut self.command)
    }

    /// Refuse the announced literal: the command is dropped. A client that waits for
    /// `+` sends no data; after a non-synchronizing one the engine ends the connection.
    pub fn refuse_literal(&mut self) {
        self.decided();
        self.clear_command();
    }

    /// Streamed literal data available now (at most what is left of it).
    pub fn streamed(&self) -> &[u8] {
        match self.reading {
            Reading::Streamed { remaining } => {
                let n = remaining.min(self.input.len() as u64) as usize;
                &self.input[..n]
            }
            _ => &[],
        }
    }

    /// The engine took `n` octets of `streamed`.
    pub fn consume_streamed(&mut self, n: usize) {
        let Reading::Streamed { remaining } = self.reading else {
            panic!("not streaming");
        };
        self.input.drain(..n);
        let left = remaining - n as u64;
        self.reading = if left == 0 {
            Reading::Lines
        } else {
            Reading::Streamed { remaining: left }
        };
    }
}

/// `{n}` or `{n+}` at the end of a line: (n, synchronizing?, where the marker starts).
fn literal_marker(line: &[u8]) -> Option<(u64, bool, usize)> {
    if line.last() != Some(&b'}') {
        return None;
    }
    let open = line.iter().rposition(|&c| c == b'{')?;
    let inner = &line[open + 1..line.len() - 1];
    let (digits, sync) = match inner.strip_suffix(b"+") {
        Some(d) => (d, false),
        None => (inner, true),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = std::str::from_utf8(digits).ok()?.parse::<u64>().ok()?;
    Some((n, sync, open))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_markers() {
        assert_eq!(literal_marker(b"a LOGIN {5}"), Some((5, true, 8)));
        assert_eq!(literal_marker(b"a LOGIN {5+}"), Some((5, false, 8)));
        assert_eq!(literal_marker(b"a LOGIN {x}"), None);
        assert_eq!(literal_marker(b"a LOGIN {}"), None);
        assert_eq!(literal_marker(b"a {99999999999999999999}"), None);
    }

    /// Feed `data` one octet at a time, reading literals into the command.
    fn commands(data: &[u8]) -> Vec<Event> {
        let mut f = Framer::new(100, 1000);
        let mut out = Vec::new();
        for b in data {
            f.feed(&[*b]);
            while let Some(e) = f.next_event() {
                if let Event::Literal { .. } = e {
                    f.read_literal();
                }
                out.push(e);
            }
        }
        out
    }

    #[test]
    fn lines_and_literals_in_any_pieces() {
        let got = commands(b"a NOOP\r\nb LOGIN {3}\r\nbob {4+}\r\npass\r\nc X\n");
        assert_eq!(
            got,
            vec![
                Event::Command(b"a NOOP".to_vec()),
                Event::Literal {
                    size: 3,
                    sync: true
                },
                Event::Literal {
                    size: 4,
                    sync: false
                },
                Event::Command(b"b LOGIN {3}\r\nbob {4+}\r\npass".to_vec()),
                Event::Command(b"c X".to_vec()),
            ]
        );
        // An empty literal, and CRLF inside a literal.
        let got = commands(b"d S {0}\r\n x {2}\r\n\r\n\r\n");
        assert_eq!(
            got.last(),
            Some(&Event::Command(b"d S {0}\r\n x {2}\r\n\r\n".to_vec()))
        );
    }

    #[test]
    fn streamed_literal_goes_past_the_command() {
        let mut f = Framer::new(100, 1000);
        f.feed(b"t APPEND INBOX {10}\r\n0123");
        assert_eq!(
            f.next_event(),
            Some(Event::Literal {
                size: 10,
                sync: true
            })
        );
        assert_eq!(f.command_so_far(), b"t APPEND INBOX ");
        assert_eq!(f.stream_literal(), b"t APPEND INBOX ");
        let mut got = Vec::new();
        for piece in [&b"456"[..], b"789\r\nu NOOP\r\n"] {
            let n = f.streamed().len();
            got.extend_from_slice(f.streamed());
            f.consume_streamed(n);
            f.feed(piece);
        }
        let n = f.streamed().len();
        got.extend_from_slice(f.streamed());
        f.consume_streamed(n);
        assert_eq!(got, b"0123456789");
        assert!(!f.streaming());
        assert_eq!(f.next_event(), Some(Event::Command(Vec::new())));
        assert_eq!(f.next_event(), Some(Event::Command(b"u NOOP".to_vec())));
    }

    #[test]
    fn limits() {
        let mut f = Framer::new(10, 30);
        f.feed(b"a 0123456789");
        assert_eq!(f.next_event(), Some(Event::LineTooLong));
        let mut f = Framer::new(10, 30);
        f.feed(b"a {20}\r\n01234567890123456789 {5}\r\n");
        assert_eq!(
            f.next_event(),
            Some(Event::Literal {
                size: 20,
                sync: true
            })
        );
        f.read_literal();
        assert_eq!(f.next_event(), Some(Event::CommandTooLong));
        // Refused: the command is dropped and the next line starts afresh.
        let mut f = Framer::new(10, 30);
        f.feed(b"a X {99}\r\nb NOOP\r\n");
        assert_eq!(
            f.next_event(),
            Some(Event::Literal {
                size: 99,
                sync: true
            })
        );
        f.refuse_literal();
        assert_eq!(f.next_event(), Some(Event::Command(b"b NOOP".to_vec())));
    }
}
