//! RETR and TOP output (RFC 1939 3, 7): the message as CRLF lines whatever the store
//! keeps (Maildir files usually hold bare LF), each line that starts with "." given
//! one more, and ".\r\n" at the end. Streamed from the store in pieces as the client
//! reads, so a 50 MB message never sits in memory whole.
//!
//! The octets sent before dot-stuffing are `maildrop::pop3_size` (the CRLF size, plus
//! the CRLF that ends a last line left unterminated, as the multi-line response needs),
//! which is what STAT and LIST report.

use crate::store::MessageReader;
use std::io::{self, Read};

/// Bytes read from the store at a time.
pub const CHUNK: usize = 65536;

pub struct Transfer {
    reader: Box<dyn MessageReader>,
    /// TOP: body lines still to send (None: the whole message).
    body_lines: Option<u64>,
    in_header: bool,
    at_line_start: bool,
    /// The last byte sent was a CR (a CRLF may be split across reads).
    after_cr: bool,
    /// Length of the current line so far, without its line end.
    line_len: u64,
    /// Message octets sent (CRLF form, without the dot-stuffing), for the logs.
    pub octets: u64,
}

impl Transfer {
    /// RETR: the whole message.
    pub fn whole(reader: Box<dyn MessageReader>) -> Transfer {
        Transfer::new(reader, None)
    }

    /// TOP: the header, the blank line, and `lines` lines of the body.
    pub fn top(reader: Box<dyn MessageReader>, lines: u64) -> Transfer {
        Transfer::new(reader, Some(lines))
    }

    fn new(reader: Box<dyn MessageReader>, body_lines: Option<u64>) -> Transfer {
        Transfer {
            reader,
            body_lines,
            in_header: true,
            at_line_start: true,
            after_cr: false,
            line_len: 0,
            octets: 0,
        }
    }

    /// Append encoded output to `out` until it holds `limit` octets or the message has
    /// been sent (true). `buf` is scratch space for reading.
    pub fn pump(&mut self, out: &mut Vec<u8>, limit: usize, buf: &mut Vec<u8>) -> io::Result<bool> {
        buf.resize(CHUNK, 0);
        while out.len() < limit {
            if self.body_lines == Some(0) && !self.in_header {
                return Ok(self.end(out));
            }
            let n = match self.reader.read(buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok(self.end(out));
            }
            if self.encode(&buf[..n], out) {
                return Ok(self.end(out));
            }
        }
        Ok(false)
    }

    /// Encode one piece; true once TOP has sent all the lines it wants.
    fn encode(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> bool {
        out.reserve(data.len() + data.len() / 32 + 8);
        while !data.is_empty() {
            let nl = data.iter().position(|&b| b == b'\n');
            let content = &data[..nl.unwrap_or(data.len())];
            if !content.is_empty() {
                if self.at_line_start && content[0] == b'.' {
                    out.push(b'.');
                }
                out.extend_from_slice(content);
                self.octets += content.len() as u64;
                self.at_line_start = false;
                self.after_cr = content[content.len() - 1] == b'\r';
                self.line_len += content.len() as u64;
            }
            let Some(nl) = nl else {
                return false;
            };
            // A line end: CRLF on the wire whether the store has LF or CRLF.
            if self.after_cr {
                out.push(b'\n');
                self.octets += 1;
                self.line_len -= 1;
            } else {
                out.extend_from_slice(b"\r\n");
                self.octets += 2;
            }
            let empty = self.line_len == 0;
            self.at_line_start = true;
            self.after_cr = false;
            self.line_len = 0;
            data = &data[nl + 1..];
            if self.in_header {
                self.in_header = !empty;
            } else if let Some(left) = self.body_lines.as_mut() {
                *left -= 1;
            }
            if !self.in_header && self.body_lines == Some(0) {
                return true;
            }
        }
        false
    }

    /// Close the response: end an unterminated last line, then the "." line.
    fn end(&mut self, out: &mut Vec<u8>) -> bool {
        if !self.at_line_start {
            // Always a whole CRLF (a trailing bare CR stays data), as `maildrop::pop3_size` counts.
            out.extend_from_slice(b"\r\n");
            self.octets += 2;
            self.at_line_start = true;
        }
        out.extend_from_slice(b".\r\n");
        true
    }
}

#[cfg(test)]
mod tests {
    use super::Transfer;

    /// Encode `msg` fed in pieces of `piece` octets.
    fn run(msg: &[u8], top: Option<u64>, piece: usize) -> (String, u64) {
        struct Slow(Vec<u8>, usize, usize);
        impl std::io::Read for Slow {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.2.min(buf.len()).min(self.0.len() - self.1);
                buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
                self.1 += n;
                Ok(n)
            }
        }
        impl std::io::Seek for Slow {
            fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
                let std::io::SeekFrom::Start(p) = to else {
                    unimplemented!("transfers read from the start")
                };
                self.1 = (p as usize).min(self.0.len());
                Ok(self.1 as u64)
            }
        }
        let r = Box::new(Slow(msg.to_vec(), 0, piece));
        let mut t = match top {
            Some(n) => Transfer::top(r, n),
            None => Transfer::whole(r),
        };
        let (mut out, mut buf) = (Vec::new(), Vec::new());
        while !t.pump(&mut out, usize::MAX, &mut buf).unwrap() {}
        (String::from_utf8(out).unwrap(), t.octets)
    }

    #[test]
    fn crlf_and_dot_stuffing_in_any_piece_size() {
        let msg = b"Subject: x\n\n.hidden\r\nline\n..two\n.\nend";
        let want = "Subject: x\r\n\r\n..hidden\r\nline\r\n...two\r\n..\r\nend\r\n.\r\n";
        for piece in [1, 2, 3, 7, 64, 65536] {
            let (out, octets) = run(msg, None, piece);
            assert_eq!(out, want, "piece size {piece}");
            // The message's CRLF size, and the CRLF that ends its unterminated last line.
            let crlf = crate::store::maildir::folder::crlf_size(msg);
            assert_eq!(octets, crlf + 2, "piece size {piece}");
        }
    }

    #[test]
    fn octets_equal_crlf_size() {
        let msg = b"A: b\r\nC: d\n\nbody\r\nmore\n";
        let (_, octets) = run(msg, None, 5);
        assert_eq!(octets, crate::store::maildir::folder::crlf_size(msg));
    }

    #[test]
    fn top_sends_header_and_n_body_lines() {
        let msg = b"A: 1\nB: 2\n\nl1\n.l2\nl3\n";
        for piece in [1, 4, 100] {
            assert_eq!(run(msg, Some(0), piece).0, "A: 1\r\nB: 2\r\n\r\n.\r\n");
            assert_eq!(
                run(msg, Some(2), piece).0,
                "A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\n.\r\n"
            );
            assert_eq!(
                run(msg, Some(99), piece).0,
                "A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\nl3\r\n.\r\n"
            );
        }
        // CRLF header end, and a message that is all header.
        assert_eq!(run(b"A: 1\r\n\r\nx\r\n", Some(0), 3).0, "A: 1\r\n\r\n.\r\n");
        assert_eq!(run(b"A: 1\nB: 2", Some(5), 3).0, "A: 1\r\nB: 2\r\n.\r\n");
    }

    #[test]
    fn empty_message() {
        assert_eq!(run(b"", None, 10).0, ".\r\n");
    }
}
