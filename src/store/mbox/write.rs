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

/// `new_message` read from `message` and written to `out` in pieces: only the header is
/// held in memory, so a 100 MB APPEND costs its header and a buffer, not 100 MB.
pub fn new_message_streamed(
    message: &mut dyn std::io::Read,
    internal_date: i64,
    meta: &Meta<'_>,
    base: Option<&Base>,
    out: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 65536];
    let mut head = Vec::new();
    let header_len = loop {
        if let Some(end) = header_end(&head) {
            break end;
        }
        let n = read_some(message, &mut buf)?;
        if n == 0 {
            break head.len();
        }
        head.extend_from_slice(&buf[..n]);
    };
    // The header (and its empty line) through the whole-message writer, without a body.
    let mut first = Vec::new();
    new_message(&head[..header_len], internal_date, meta, base, &mut first);
    // It ended the message: "\n" after the metadata and the separator's "\n"; the body
    // goes between them.
    first.truncate(first.len() - 1);
    out(&first)?;
    let mut body = BodyQuoter::default();
    let mut piece = Vec::with_capacity(buf.len() + 64);
    body.feed(&head[header_len..], &mut piece);
    out(&piece)?;
    drop(head);
    loop {
        let n = read_some(message, &mut buf)?;
        if n == 0 {
            break;
        }
        piece.clear();
        body.feed(&buf[..n], &mut piece);
        out(&piece)?;
    }
    piece.clear();
    body.finish(&mut piece);
    out(&piece)
}

fn read_some(r: &mut dyn std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Where the header ends in `head`: after its first empty line (complete lines only).
fn header_end(head: &[u8]) -> Option<usize> {
    let mut at = 0;
    for line in head.split_inclusive(|&c| c == b'\n') {
        if !line.ends_with(b"\n") {
            return None;
        }
        at += line.len();
        if parse::trim_eol(line).is_empty() {
            return Some(at);
        }
    }
    None
}

/// The body as `new_message` writes it, a piece at a time: CRLF becomes LF, a line that
/// begins with `From ` gets a `>`, and the message ends with a line end and the
/// separator's empty line.
#[derive(Default)]
struct BodyQuoter {
    /// Inside a line (past the point where `From ` could still begin it).
    mid_line: bool,
    /// The first bytes of a line, until they show whether it begins with `From `.
    prefix: Vec<u8>,
    /// A CR whose next byte decides whether it ends the line.
    cr: bool,
    /// Something was written and it did not end with a line end.
    open_line: bool,
}

impl BodyQuoter {
    fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) {
        for &c in data {
            if self.cr {
                self.cr = false;
                if c == b'\n' {
                    self.content(b'\n', out);
                    continue;
                }
                self.content(b'\r', out);
            }
            if c == b'\r' {
                self.cr = true;
            } else {
                self.content(c, out);
            }
        }
    }

    fn content(&mut self, c: u8, out: &mut Vec<u8>) {
        if !self.mid_line {
            if c != b'\n' {
                self.prefix.push(c);
                if b"From ".starts_with(&self.prefix) {
                    if self.prefix.len() < 5 {
                        return;
                    }
                    out.push(b'>');
                }
                out.extend_from_slice(&self.prefix);
                self.prefix.clear();
                self.mid_line = true;
                self.open_line = true;
                return;
            }
            out.extend_from_slice(&self.prefix);
            self.prefix.clear();
        }
        out.push(c);
        self.open_line = c != b'\n';
        if c == b'\n' {
            self.mid_line = false;
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.cr) {
            self.content(b'\r', out);
        }
        if !self.prefix.is_empty() {
            out.extend_from_slice(&self.prefix);
            self.prefix.clear();
            self.open_line = true;
        }
        if self.open_line {
            out.push(b'\n');
        }
        out.push(b'\n');
    }
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
    fn streamed_message_is_the_whole_message_writer_byte_for_byte() {
        let meta = Meta {
            uid: 3,
            flags: Flags::SEEN,
            keywords: &[],
            recent: true,
        };
        let samples: [&[u8]; 9] = [
            b"Subject: a\r\n\r\nFrom x\r\n>From y\r\nFro\r\nFrom\r\nend",
            b"Subject: a\n\nbody\n",
            b"Subject: only a header",
            b"\r\nbody after an empty header\r\nFrom z",
            b"Subject: cr\r\n\r\nbare\rcr\r\rFrom \r",
            b"",
            b"X: y\r\n\r\n\r\n\r\nFrom ",
            b"A: b\nX-UID: 9\nStatus: RO\n\nFrom the start\n",
            b"A: b\r\n\r\nline\r",
        ];
        let mut seed = 7u32;
        for msg in samples {
            let mut whole = Vec::new();
            new_message(msg, 1_700_000_000, &meta, None, &mut whole);
            for _ in 0..20 {
                let mut streamed = Vec::new();
                // Pieces of random sizes, as reads return them.
                struct Pieces<'a>(&'a [u8], u32);
                impl std::io::Read for Pieces<'_> {
                    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                        self.1 = self.1.wrapping_mul(1103515245).wrapping_add(12345);
                        let n = ((self.1 >> 16) as usize % 4 + 1)
                            .min(self.0.len())
                            .min(buf.len());
                        buf[..n].copy_from_slice(&self.0[..n]);
                        self.0 = &self.0[n..];
                        Ok(n)
                    }
                }
                seed = seed.wrapping_add(1);
                new_message_streamed(
                    &mut Pieces(msg, seed),
                    1_700_000_000,
                    &meta,
                    None,
                    &mut |b| {
                        streamed.extend_from_slice(b);
                        Ok(())
                    },
                )
                .unwrap();
                assert_eq!(
                    String::from_utf8_lossy(&streamed),
                    String::from_utf8_lossy(&whole),
                    "{:?}",
                    String::from_utf8_lossy(msg)
                );
            }
        }
    }

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
