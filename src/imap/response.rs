//! Response grammar helpers (RFC 3501 9: `string`, `nstring`, `flag-list`): every string
//! a server sends goes through `string`, which picks quoted or literal form so that no
//! value can break the framing.

use crate::store::{Flags, StoreError};
use std::fmt;

/// RFC 3501 9 `sequence-set` of an ascending list: `1:3,7` (COPYUID, ESEARCH ALL).
pub fn sequence_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end + 1 {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// The condition of a status response (RFC 3501 7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
    Bye,
    Preauth,
}

/// A response code: the bracketed `resp-text-code` of a status response (RFC 3501 7.1),
/// with those of RFC 4315 (UIDPLUS), 5530 (response codes), 7162 (CLOSED) and 7889
/// (TOOBIG). An extension adds its codes here (CONDSTORE: HIGHESTMODSEQ, NOMODSEQ,
/// MODIFIED).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    // RFC 3501 7.1
    /// The flag list, without its parentheses.
    PermanentFlags(String),
    ReadOnly,
    ReadWrite,
    TryCreate,
    UidNext(u32),
    UidValidity(u32),
    Unseen(u32),
    Capability(String),
    /// The charsets SEARCH takes.
    BadCharset(&'static str),
    // RFC 4315 UIDPLUS
    AppendUid {
        uidvalidity: u32,
        uid: u32,
    },
    CopyUid {
        uidvalidity: u32,
        source: String,
        dest: String,
    },
    // RFC 5530
    Unavailable,
    AuthenticationFailed,
    AuthorizationFailed,
    PrivacyRequired,
    InUse,
    ExpungeIssued,
    Cannot,
    Limit,
    OverQuota,
    AlreadyExists,
    NonExistent,
    ServerBug,
    // RFC 7162 3.2.11
    Closed,
    // RFC 7889 APPENDLIMIT (the code itself is RFC 4469's)
    TooBig,
}

impl Code {
    /// The code for a store failure (RFC 5530 names each case).
    pub fn of_store_error(e: &StoreError) -> Code {
        match e {
            StoreError::NoSuchMailbox => Code::NonExistent,
            StoreError::AlreadyExists => Code::AlreadyExists,
            StoreError::InvalidName(_) | StoreError::NotAllowed(_) => Code::Cannot,
            StoreError::Expunged => Code::ExpungeIssued,
            StoreError::ReadOnly => Code::ReadOnly,
            StoreError::TooManyKeywords => Code::Limit,
            // RFC 5530 3: "someone else may be holding an exclusive lock needed".
            StoreError::InUse | StoreError::Locked { .. } => Code::InUse,
            StoreError::Busy => Code::Unavailable,
            StoreError::Io { err, .. } if err.raw_os_error() == Some(libc::ENOSPC) => {
                Code::OverQuota
            }
            StoreError::Io { .. } | StoreError::Corrupt(_) => Code::ServerBug,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Code::PermanentFlags(flags) => write!(f, "PERMANENTFLAGS ({flags})"),
            Code::ReadOnly => f.write_str("READ-ONLY"),
            Code::ReadWrite => f.write_str("READ-WRITE"),
            Code::TryCreate => f.write_str("TRYCREATE"),
            Code::UidNext(n) => write!(f, "UIDNEXT {n}"),
            Code::UidValidity(n) => write!(f, "UIDVALIDITY {n}"),
            Code::Unseen(n) => write!(f, "UNSEEN {n}"),
            Code::Capability(caps) => write!(f, "CAPABILITY {caps}"),
            Code::BadCharset(charsets) => write!(f, "BADCHARSET ({charsets})"),
            Code::AppendUid { uidvalidity, uid } => write!(f, "APPENDUID {uidvalidity} {uid}"),
            Code::CopyUid {
                uidvalidity,
                source,
                dest,
            } => write!(f, "COPYUID {uidvalidity} {source} {dest}"),
            Code::Unavailable => f.write_str("UNAVAILABLE"),
            Code::AuthenticationFailed => f.write_str("AUTHENTICATIONFAILED"),
            Code::AuthorizationFailed => f.write_str("AUTHORIZATIONFAILED"),
            Code::PrivacyRequired => f.write_str("PRIVACYREQUIRED"),
            Code::InUse => f.write_str("INUSE"),
            Code::ExpungeIssued => f.write_str("EXPUNGEISSUED"),
            Code::Cannot => f.write_str("CANNOT"),
            Code::Limit => f.write_str("LIMIT"),
            Code::OverQuota => f.write_str("OVERQUOTA"),
            Code::AlreadyExists => f.write_str("ALREADYEXISTS"),
            Code::NonExistent => f.write_str("NONEXISTENT"),
            Code::ServerBug => f.write_str("SERVERBUG"),
            Code::Closed => f.write_str("CLOSED"),
            Code::TooBig => f.write_str("TOOBIG"),
        }
    }
}

/// A status response to be sent with a tag later (an APPEND refused before its message
/// arrives is answered after it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: Status,
    pub code: Option<Code>,
    pub text: String,
}

impl Reply {
    pub fn new(status: Status, code: Option<Code>, text: impl Into<String>) -> Reply {
        Reply {
            status,
            code,
            text: text.into(),
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>, tag: &str) {
        status(out, tag, self.status, self.code.as_ref(), &self.text);
    }
}

/// A status response (RFC 3501 7.1):
/// `(tag / "*") SP ("OK" / "NO" / "BAD" / "BYE" / "PREAUTH") SP ["[" resp-text-code "]" SP] text CRLF`.
/// `tag` is `*` for an untagged one.
pub fn status(out: &mut Vec<u8>, tag: &str, status: Status, code: Option<&Code>, text: &str) {
    let word = match status {
        Status::Ok => "OK",
        Status::No => "NO",
        Status::Bad => "BAD",
        Status::Bye => "BYE",
        Status::Preauth => "PREAUTH",
    };
    let line = match code {
        Some(code) => format!("{tag} {word} [{code}] {text}\r\n"),
        None => format!("{tag} {word} {text}\r\n"),
    };
    out.extend_from_slice(line.as_bytes());
}

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
    fn sequence_sets_join_runs() {
        assert_eq!(sequence_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(sequence_set(&[]), "");
    }

    #[test]
    fn status_responses_with_and_without_a_code() {
        let mut out = Vec::new();
        status(&mut out, "a1", Status::Ok, None, "NOOP completed");
        status(
            &mut out,
            "*",
            Status::Ok,
            Some(&Code::UidValidity(3857529045)),
            "UIDs valid",
        );
        let copy = Code::CopyUid {
            uidvalidity: 38505,
            source: "304,319:320".into(),
            dest: "3956:3958".into(),
        };
        status(&mut out, "A003", Status::Ok, Some(&copy), "Done");
        status(
            &mut out,
            "b",
            Status::No,
            Some(&Code::BadCharset("UTF-8 US-ASCII")),
            "No",
        );
        status(&mut out, "*", Status::Bye, None, "Logging out");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a1 OK NOOP completed\r\n\
             * OK [UIDVALIDITY 3857529045] UIDs valid\r\n\
             A003 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n\
             b NO [BADCHARSET (UTF-8 US-ASCII)] No\r\n\
             * BYE Logging out\r\n"
        );
    }

    #[test]
    fn store_failures_have_rfc_5530_codes() {
        let full = StoreError::io(
            "append",
            "INBOX",
            std::io::Error::from_raw_os_error(libc::ENOSPC),
        );
        assert_eq!(Code::of_store_error(&full).to_string(), "OVERQUOTA");
        assert_eq!(
            Code::of_store_error(&StoreError::NoSuchMailbox).to_string(),
            "NONEXISTENT"
        );
        assert_eq!(
            Code::of_store_error(&StoreError::Busy).to_string(),
            "UNAVAILABLE"
        );
    }

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
