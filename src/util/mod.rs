//! Small helpers shared by the protocol and the store.
pub mod base64;
pub mod blocking;
pub mod date;
#[cfg(test)]
pub mod fuzz;
pub mod md5;
pub mod mutf7;

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
