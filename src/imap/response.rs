//! Response grammar helpers (RFC 3501 9: `string`, `nstring`, `flag-list`): every string
//! a server sends goes through `string`, which picks quoted or literal form so that no
//! value can break the framing.

use crate::store::Flags;

/// Append `s` as an IMAP string: quoted when safe, a literal otherwise.
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable = s.len() < 1024 && s.iter().all(|c| (0x20..0x7f).contains(c));
    if quotable {
        out.push(b'"');
        for &c in s {
            if c == b'"' || c == b'\\' {
                out.push(b'\\');
            }
            out.push(c);
        }
        out.push(b'"');
    } else {
        literal(out, s);
    }
}

/// `* n FETCH (`: the opening of every message-data FETCH response (RFC 3501 7.4.2).
pub fn fetch_open(out: &mut Vec<u8>, seq: usize) {
    out.extend_from_slice(format!("* {seq} FETCH (").as_bytes());
}

/// `* n FETCH (UID u FLAGS (...))`: a message's flags, as STORE answers and as other
/// sessions' changes are announced (`uid` None: the UID left out).
pub fn fetch_flags(
    out: &mut Vec<u8>,
    seq: usize,
    uid: Option<u32>,
    flags: Flags,
    recent: bool,
    keywords: &[String],
) {
    fetch_open(out, seq);
    if let Some(uid) = uid {
        out.extend_from_slice(format!("UID {uid} ").as_bytes());
    }
    out.extend_from_slice(b"FLAGS ");
    flag_list(out, flags, recent, keywords);
    out.extend_from_slice(b")\r\n");
}

pub fn literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// `astring` form for mailbox names in LIST/LSUB/STATUS: an atom when possible.
pub fn mailbox(out: &mut Vec<u8>, name: &str) {
    let atom = !name.is_empty()
        && name
            .bytes()
            .all(|c| c > b' ' && c < 0x7f && !b"(){%*\"\\]".contains(&c));
    if atom {
        out.extend_from_slice(name.as_bytes());
    } else {
        string(out, name.as_bytes());
    }
}

/// `(\Seen \Flagged $Junk)`; \Recent is the session's, passed separately.
pub fn flag_list(out: &mut Vec<u8>, flags: Flags, recent: bool, keywords: &[String]) {
    out.push(b'(');
    let mut first = true;
    let mut put = |out: &mut Vec<u8>, s: &str| {
        if !first {
            out.push(b' ');
        }
        first = false;
        out.extend_from_slice(s.as_bytes());
    };
    for (bit, name) in [
        (Flags::SEEN, "\\Seen"),
        (Flags::ANSWERED, "\\Answered"),
        (Flags::FLAGGED, "\\Flagged"),
        (Flags::DELETED, "\\Deleted"),
        (Flags::DRAFT, "\\Draft"),
    ] {
        if flags.has(bit) {
            put(out, name);
        }
    }
    if recent {
        put(out, "\\Recent");
    }
    for (i, k) in keywords.iter().enumerate() {
        if i < 32 && flags.keywords & (1 << i) != 0 && !k.is_empty() {
            put(out, k);
        }
    }
    out.push(b')');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_flags_lines() {
        let mut o = Vec::new();
        let flags = Flags {
            system: Flags::SEEN | Flags::FLAGGED,
            keywords: 0b10,
        };
        let keywords = ["$a".to_string(), "$Later".to_string()];
        fetch_flags(&mut o, 3, Some(17), flags, true, &keywords);
        fetch_flags(&mut o, 4, None, Flags::default(), false, &keywords);
        assert_eq!(
            String::from_utf8(o).unwrap(),
            "* 3 FETCH (UID 17 FLAGS (\\Seen \\Flagged \\Recent $Later))\r\n* 4 FETCH (FLAGS ())\r\n"
        );
    }

    #[test]
    fn strings_never_break_framing() {
        let mut o = Vec::new();
        string(&mut o, b"a\"b\\c");
        assert_eq!(o, b"\"a\\\"b\\\\c\"");
        o.clear();
        string(&mut o, b"line\r\nbreak");
        assert_eq!(o, b"{11}\r\nline\r\nbreak");
        o.clear();
        string(&mut o, "é".as_bytes());
        assert_eq!(o, b"{2}\r\n\xc3\xa9");
        o.clear();
        mailbox(&mut o, "Work.Projects");
        assert_eq!(o, b"Work.Projects");
    }
}
