//! base64 decoding (RFC 4648 4) as mail needs it: SASL responses, and
//! Content-Transfer-Encoding and encoded words for SEARCH. Characters outside the
//! alphabet (line breaks) are skipped; decoding stops at the first `=`.

pub fn decode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut n = 0;
    for &c in data {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | v as u32;
        n += 1;
        if n == 4 {
            out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
            acc = 0;
            n = 0;
        }
    }
    match n {
        2 => out.push((acc >> 4) as u8),
        3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_padded_unpadded_and_wrapped() {
        assert_eq!(super::decode(b"aGVsbG8="), b"hello");
        assert_eq!(super::decode(b"aGVs\r\nbG8"), b"hello");
        assert_eq!(super::decode(b""), b"");
    }
}
