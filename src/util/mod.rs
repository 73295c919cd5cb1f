//! Small helpers shared by the protocol and the store.
pub mod base64;
pub mod blocking;
pub mod date;
#[cfg(test)]
pub mod fuzz;
pub mod md5;
pub mod mutf7;

/// Capacity a connection's empty buffer keeps: a usual response or command fits.
pub const BUFFER_KEEP: usize = 64 * 1024;

/// An emptied connection buffer gives back what it grew past `BUFFER_KEEP` (a session
/// that once sent a 4 MB literal must not hold 4 MB while it idles for an hour: the
/// daemon's live memory grew with every long session's largest response).
pub fn release_spare(buf: &mut Vec<u8>) {
    if buf.is_empty() && buf.capacity() > BUFFER_KEEP {
        *buf = Vec::new();
    }
}

/// Take the line that ends at `lf` (the index of its LF) off the front of `input`,
/// without its line end (CRLF, or a bare LF as some clients send).
pub fn take_line(input: &mut Vec<u8>, lf: usize) -> Vec<u8> {
    let mut line: Vec<u8> = input.drain(..=lf).collect();
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    line
}
