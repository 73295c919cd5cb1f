//! Writing mbox messages: the metadata headers (padded so that flag changes fit in place
//! later), a stored message rewritten with new metadata, and a new message (APPEND,
//! COPY) with its From line and mboxo quoting (as Postfix and procmail deliver).

use super::parse::{self, Base, MsgRec};
use crate::store::Flags;

/// Room left after keywords, so that adding one rarely needs a rewrite.
const KEYWORD_PAD: usize = 32;
const BASE_KEYWORD_PAD: usize = 64;

/// What one message's metadata headers say.
pub struct Meta<'a> {
    pub uid: u32,
    pub flags: u8,
    pub keywords: &'a [String],
    /// No `O` in Status: the next session to open the mbox read-write sees it \Recent
    /// (APPEND and COPY; what an MDA delivers has no Status at all).
    pub recent: bool,
}

/// ` RO` / ` O ` (` R ` / 3 spaces while recent): the Status value, 3 octets.
pub fn status_value(flags: u8, recent: bool) -> Vec<u8> {
    match (flags & Flags::SEEN != 0, recent) {
        (true, false) => b" RO".to_vec(),
        (false, false) => b" O ".to_vec(),
        (true, true) => b" R ".to_vec(),
        (false, true) => b"   ".to_vec(),
    }
}

/// X-Status letters (A answered, F flagged, T draft, D deleted) after a space.
pub fn xstatus_letters(flags: u8) -> Vec<u8> {
    let mut v = vec![b' '];
    for (bit, c) in [
        (Flags::ANSWERED, b'A'),
        (Flags::DELETED, b'D'),
        (Flags::FLAGGED, b'F'),
        (Flags::DRAFT, b'T'),
    ] {
        if flags & bit != 0 {
            v.push(c);
        }
    }
    v
}

pub fn keywords_text(keywords: &[String]) -> Vec<u8> {
    let mut v = Vec::new();
    for k in keywords {
        v.push(b' ');
        v.extend_from_slice(k.as_bytes());
    }
    v
}

/// A value padded with spaces to `cap` (None if it does not fit).
pub fn padded(value: &[u8], cap: usize) -> Option<Vec<u8>> {
    (value.len() <= cap).then(|| {
        let mut v = value.to_vec();
        v.resize(cap, b' ');
        v
    })
}

fn pad_to(value: Vec<u8>, extra: usize) -> Vec<u8> {
    let cap = value.len() + extra;
    padded(&value, cap).expect("fits")
}

/// `X-IMAPbase: UIDVALIDITY LAST-UID keywords...` (LAST-UID 10 wide, as UW writes it,
/// so that it can be bumped in place).
pub fn base_line(name: &str, base: &Base) -> Vec<u8> {
    let mut v = format!("{name}: {} {:010}", base.uidvalidity, base.last_uid).into_bytes();
    v.extend_from_slice(&pad_to(keywords_text(&base.keywords), BASE_KEYWORD_PAD));
    v.push(b'\n');
    v
}

/// The metadata headers of one message.
pub fn meta_headers(meta: &Meta<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"Status:");
    out.extend_from_slice(&status_value(meta.flags, meta.recent));
    out.extend_from_slice(b"\nX-Status:");
    out.extend_from_slice(&padded(&xstatus_letters(meta.flags), 5).expect("fits"));
    out.extend_from_slice(b"\nX-Keywords:");
    out.extend_from_slice(&pad_to(keywords_text(meta.keywords), KEYWORD_PAD));
    out.extend_from_slice(format!("\nX-UID: {}\n", meta.uid).as_bytes());
}

/// A stored message (`raw` = its bytes from the From line to `end`) with new metadata;
/// with `base`, it carries the folder's X-IMAPbase. Ends with the separator line.
pub fn rewrite_message(
    raw: &[u8],
    rec: &MsgRec,
    meta: &Meta<'_>,
    base: Option<&Base>,
    out: &mut Vec<u8>,
) {
    let at = |o: u64| (o - rec.from_off) as usize;
    out.extend_from_slice(&raw[..at(rec.hdr_off)]);
    let header = &raw[at(rec.hdr_off)..at(rec.body_off)];
    let fields = parse::fields(header);
    let mut consumed = 0;
    for f in &fields {
        if !parse::INTERNAL.contains(&f.name.as_str()) {
            out.extend_from_slice(f.text);
            // A header cut short by the end of the file: its last line needs an end
            // before our fields follow.
            if !f.text.ends_with(b"\n") {
                out.push(b'\n');
            }
        }
        consumed = f.at + f.text.len();
    }
    if let Some(b) = base {
        out.extend_from_slice(&base_line("X-IMAPbase", b));
    }
    meta_headers(meta, out);
    let terminator = &header[consumed..];
    if terminator.is_empty() {
        out.push(b'\n');
    } else {
        out.extend_from_slice(terminator);
    }
    let body = &raw[at(rec.body_off)..];
    out.extend_from_slice(body);
    if !body.is_empty() && !body.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.push(b'\n');
}

/// UW imapd's pseudo-message, which keeps the folder's metadata when it has no messages.
pub fn pseudo_message(base: &Base, now: i64) -> Vec<u8> {
    let host = crate::sys::hostname();
    let mut v = format!(
        "From MAILER-DAEMON {}\nDate: {}\nFrom: Mail System Internal Data <MAILER-DAEMON@{host}>\nSubject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\nMessage-ID: <{now}@{host}>\n",
        crate::util::date::ctime(now),
        crate::util::date::rfc5322_datetime(now),
    )
    .into_bytes();
    v.extend_from_slice(&base_line("X-IMAP", base));
    v.extend_from_slice(b"Status: RO\n\nThis text is part of the internal format of your mail folder, and is not\na real message.  It is created automatically by the mail system software.\nIf deleted, important folder data will be lost, and it will be re-created\nwith the data reset to initial values.\n\n");
    v
}

/// A new message for the end of an mbox: From line, the client's header (without
/// metadata fields it may have carried), our metadata, and the body quoted as mboxo;
/// CRLF line ends become LF, as UW and Dovecot store them. Ends with the separator.
pub fn new_message(
    message: &[u8],
    internal_date: i64,
    meta: &Meta<'_>,
    base: Option<&Base>,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(b"From MAILER-DAEMON ");
    out.extend_from_slice(crate::util::date::ctime(internal_date).as_bytes());
    out.push(b'\n');
    let mut lines: Vec<&[u8]> = message.split_inclusive(|&c| c == b'\n').collect();
    // The header: up to the first empty line.
    let header_end = lines
        .iter()
        .position(|l| parse::trim_eol(l).is_empty())
        .unwrap_or(lines.len());
    let header: Vec<u8> = lines[..header_end]
        .iter()
        .flat_map(|l| lf_line(l))
        .collect();
    for f in parse::fields(&header) {
        if !parse::INTERNAL.contains(&f.name.as_str()) {
            out.extend_from_slice(f.text);
            if !f.text.ends_with(b"\n") {
                out.push(b'\n');
            }
        }
    }
    if let Some(b) = base {
        out.extend_from_slice(&base_line("X-IMAPbase", b));
    }
    meta_headers(meta, out);
    out.push(b'\n');
    let body = if header_end < lines.len() {
        lines.split_off(header_end + 1)
    } else {
        Vec::new()
    };
    let mut last_ended = true;
    for l in body {
        let l = lf_line(l);
        parse::quote_line_into(&l, out);
        last_ended = l.ends_with(b"\n");
    }
    if !last_ended {
        out.push(b'\n');
    }
    out.push(b'\n');
}

fn lf_line(l: &[u8]) -> Vec<u8> {
    match l.strip_suffix(b"\r\n") {
        Some(s) => {
            let mut v = s.to_vec();
            v.push(b'\n');
            v
        }
        None => l.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_message_round_trips_through_the_parser() {
        let msg =
            b"Subject: hi\r\nX-UID: 99\r\nStatus: RO\r\n\r\nFrom the start\r\n>From quoted\r\nend";
        let base = Base {
            uidvalidity: 1234,
            last_uid: 7,
            ..Default::default()
        };
        let kw = vec!["$Forwarded".to_string()];
        let mut out = Vec::new();
        new_message(
            msg,
            1_700_000_000,
            &Meta {
                uid: 7,
                flags: Flags::SEEN | Flags::FLAGGED,
                keywords: &kw,
                recent: false,
            },
            Some(&base),
            &mut out,
        );
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains("\n>From the start\n>From quoted\nend\n\n"),
            "{text}"
        );
        assert!(!text.contains("X-UID: 99"));
        let path = std::env::temp_dir().join(format!("mbox-write-{}", std::process::id()));
        std::fs::write(&path, &out).unwrap();
        let f = std::fs::File::open(&path).unwrap();
        let m = parse::Scanner::scan(&f, 0, true).unwrap().msgs;
        std::fs::remove_file(&path).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].uid, 7);
        assert_eq!(m[0].flags, Flags::SEEN | Flags::FLAGGED);
        assert_eq!(m[0].keywords, kw);
        assert_eq!(m[0].base.as_ref().unwrap().last_uid, 7);
        // Served size: the message as stored (mboxo: its `From ` line got a `>`), with
        // the metadata fields gone, CRLF.
        let served = b"Subject: hi\r\n\r\n>From the start\r\n>From quoted\r\nend\r\n";
        assert_eq!(m[0].vsize, served.len() as u64);
        assert!(m[0].status_slot.unwrap().cap >= 3);
    }
}
