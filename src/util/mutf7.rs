//! IMAP modified UTF-7 (RFC 3501 5.1.3), the mailbox-name encoding of IMAP4rev1.
//! Names stay in this encoding on disk, as Dovecot and Courier keep them in Maildir++.

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn b64_value(c: u8) -> Option<u32> {
    B64.iter().position(|&x| x == c).map(|p| p as u32)
}

/// Decode to UTF-8; None if the name is not valid modified UTF-7
/// (raw 8-bit bytes, an unterminated or non-canonical shift, bad UTF-16).
pub fn decode(name: &[u8]) -> Option<String> {
    let mut out = String::new();
    let mut i = 0;
    while i < name.len() {
        let c = name[i];
        if c >= 0x80 {
            return None;
        }
        if c != b'&' {
            out.push(c as char);
            i += 1;
            continue;
        }
        let end = name[i + 1..].iter().position(|&x| x == b'-')? + i + 1;
        if end == i + 1 {
            out.push('&');
            i = end + 1;
            continue;
        }
        let mut bits: u32 = 0;
        let mut nbits = 0;
        let mut units: Vec<u16> = Vec::new();
        for &b in &name[i + 1..end] {
            bits = (bits << 6) | b64_value(b)?;
            nbits += 6;
            if nbits >= 16 {
                nbits -= 16;
                units.push((bits >> nbits) as u16);
                bits &= (1 << nbits) - 1;
            }
        }
        if bits != 0 || units.is_empty() {
            return None;
        }
        let s = String::from_utf16(&units).ok()?;
        // A shifted run must not encode printable ASCII (canonical form).
        if s.chars().any(|ch| (' '..='~').contains(&ch)) {
            return None;
        }
        out.push_str(&s);
        i = end + 1;
    }
    Some(out)
}

/// Encode UTF-8 to modified UTF-7.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        out.push('&');
        let mut bits: u32 = 0;
        let mut nbits = 0;
        for &u in pending.iter() {
            bits = (bits << 16) | u as u32;
            nbits += 16;
            while nbits >= 6 {
                nbits -= 6;
                out.push(B64[((bits >> nbits) & 63) as usize] as char);
            }
        }
        if nbits > 0 {
            out.push(B64[((bits << (6 - nbits)) & 63) as usize] as char);
        }
        out.push('-');
        pending.clear();
    };
    for ch in s.chars() {
        if (' '..='~').contains(&ch) {
            flush(&mut pending, &mut out);
            out.push(ch);
            if ch == '&' {
                out.push('-');
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(ch.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3501_example() {
        let name = b"~peter/mail/&U,BTFw-/&ZeVnLIqe-";
        let s = decode(name).unwrap();
        assert_eq!(s, "~peter/mail/台北/日本語");
        assert_eq!(encode(&s).as_bytes(), name);
        assert_eq!(decode(b"A&-B").unwrap(), "A&B");
        assert!(decode(b"&AGE-").is_none(), "ASCII must not be shifted");
        assert!(decode(b"&U,BT").is_none());
        assert!(decode("é".as_bytes()).is_none());
    }
}
