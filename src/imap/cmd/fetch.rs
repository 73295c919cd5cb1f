//! FETCH and UID FETCH (RFC 3501 6.4.5, 6.4.8). Runs as a job: a slice of messages per
//! step, paused while the client has not read what was sent, so `FETCH 1:*` over a
//! huge mailbox neither grows memory nor holds up other clients.

use super::super::fetch::{bodystructure, envelope, mime, section};
use super::super::parser::{FetchAtt, FetchModifier, SeqSet};
use super::super::response::{self, Code};
use super::super::state::Job;
use super::super::state::Session;
use crate::config;
use crate::store::{FlagChange, Flags, MessageReader, StoreError};
use std::io::{Seek, SeekFrom};

pub struct FetchJob {
    tag: String,
    uid: bool,
    indexes: Vec<usize>,
    pos: usize,
    atts: Vec<FetchAtt>,
    sets_seen: bool,
    missing: bool,
    /// The message whose response is being written, item by item.
    current: Option<Current>,
}

/// One message's `* n FETCH (...)` under way: the bounded items are rendered before its
/// first byte goes out (a failing store call then drops the message whole); the
/// sections and RFC822 texts, each up to the message's size, go out one at a time, only
/// as fast as the client reads them (1,000 `BODY[]` of a 10 MB message must not become
/// 10 GB of memory). The whole message (BODY[], RFC822) is sent from the message file
/// in pieces, never loaded, unless another item needed it parsed.
struct Current {
    loaded: Option<(Vec<u8>, mime::Part)>,
    /// The message file, opened before the first byte went out, for whole-message
    /// items when the message is not loaded; and its size with CRLF line ends.
    file: Option<(Box<dyn MessageReader>, u64)>,
    /// A whole-message item on its way from the file.
    sending: Option<Sending>,
    /// Per item: its rendered text, or None for a literal item rendered when its turn comes.
    small: Vec<Option<Vec<u8>>>,
    next: usize,
    /// FLAGS after the items, when this FETCH set \Seen and FLAGS was not asked for.
    trailer: Option<Vec<u8>>,
}

/// Does this item make the message \Seen (RFC 3501 6.4.5)?
fn marks_seen(a: &FetchAtt) -> bool {
    matches!(
        a,
        FetchAtt::Rfc822 | FetchAtt::Rfc822Text | FetchAtt::Section { peek: false, .. }
    )
}

/// The whole message, or a partial of it (BODY[]<0.100>): sent as stored, no parse.
fn whole_message(a: &FetchAtt) -> bool {
    match a {
        FetchAtt::Rfc822 => true,
        FetchAtt::Section { section, .. } => section.part.is_empty() && section.text.is_none(),
        _ => false,
    }
}

/// Does this item need the message read and parsed?
fn needs_message(a: &FetchAtt) -> bool {
    !whole_message(a)
        && !matches!(
            a,
            FetchAtt::Uid | FetchAtt::Flags | FetchAtt::InternalDate | FetchAtt::Rfc822Size
        )
}

/// A literal being filled from the message file: the file's bytes with each bare LF
/// sent as CRLF (as RFC822.SIZE counts them), the first `skip` of those passed over
/// (a partial's start), `left` still to send.
struct Sending {
    skip: u64,
    left: u64,
    /// The byte read last (a LF after CR is not bare).
    prev: u8,
    /// The file failed us: the rest is spaces.
    failed: bool,
}

/// Octets of a whole-message literal added to the output per read.
const SEND_CHUNK: usize = 64 * 1024;

impl Sending {
    /// Take `seg` into `out` past what is to be skipped, up to what is left.
    fn take(&mut self, out: &mut Vec<u8>, seg: &[u8]) {
        let skip = self.skip.min(seg.len() as u64) as usize;
        self.skip -= skip as u64;
        let seg = &seg[skip..];
        let n = self.left.min(seg.len() as u64) as usize;
        out.extend_from_slice(&seg[..n]);
        self.left -= n as u64;
    }

    /// One read's worth into `out`; true when the literal is complete. A file shorter
    /// than its size (changed under us, a read error) is padded with spaces: the
    /// literal's length was promised, and the client stays in step.
    fn pump(&mut self, file: &mut dyn MessageReader, out: &mut Vec<u8>) -> Result<bool, String> {
        if self.failed {
            let n = self.left.min(SEND_CHUNK as u64);
            out.resize(out.len() + n as usize, b' ');
            self.left -= n;
            return Ok(self.left == 0);
        }
        let mut buf = [0u8; SEND_CHUNK];
        let n = loop {
            match file.read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e.to_string()),
                Ok(0) => break Err("the message is shorter than its size".to_string()),
                Ok(n) => break Ok(n),
            }
        };
        let n = match n {
            Ok(n) => n,
            Err(why) => {
                self.failed = true;
                return Err(why);
            }
        };
        let data = &buf[..n];
        let mut start = 0;
        for lf in memchr::memchr_iter(b'\n', data) {
            let before = if lf == 0 { self.prev } else { data[lf - 1] };
            if before != b'\r' {
                self.take(out, &data[start..lf]);
                self.take(out, b"\r");
                start = lf;
            }
        }
        self.take(out, &data[start..]);
        self.prev = data[n - 1];
        Ok(self.left == 0)
    }
}

impl Session {
    pub(super) fn cmd_fetch(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SeqSet,
        mut atts: Vec<FetchAtt>,
        modifiers: Vec<FetchModifier>,
    ) {
        // Each modifier (RFC 4466 2.4) narrows or extends what is fetched.
        if let Some(modifier) = modifiers.first() {
            match *modifier {}
        }
        let indexes = match self.resolve_set(set, uid) {
            Ok(v) => v,
            Err(e) => return self.bad(tag, &e),
        };
        if uid && !atts.contains(&FetchAtt::Uid) {
            atts.insert(0, FetchAtt::Uid);
        }
        let readonly = self.selected_ref().readonly();
        let sets_seen = !readonly && atts.iter().any(marks_seen);
        self.job = Some(Box::new(FetchJob {
            tag: tag.to_string(),
            uid,
            indexes,
            pos: 0,
            atts,
            sets_seen,
            missing: false,
            current: None,
        }));
    }

    fn run_fetch(&mut self, mut job: FetchJob) {
        let mut done_here = 0;
        while self.output_len() < config::OUTPUT_HIGH_WATER && done_here < 256 {
            if job.current.is_none() {
                if job.pos >= job.indexes.len() {
                    break;
                }
                let index = job.indexes[job.pos];
                match self.begin_one(index, &job) {
                    Ok(c) => job.current = Some(c),
                    Err(StoreError::Expunged) => job.missing = true,
                    // Nothing of this message is out yet: parked before it; after the
                    // wait, NO [INUSE] (not a message gone).
                    Err(e) if self.waits_for_lock(&e) => return self.park(Box::new(job)),
                    Err(e @ StoreError::Locked { .. }) => return self.store_error(&job.tag, &e),
                    Err(e) => {
                        self.log_failure("fetch", &e);
                        job.missing = true;
                    }
                }
                if job.current.is_none() {
                    job.pos += 1;
                    done_here += 1;
                }
                continue;
            }
            if !self.continue_one(&mut job) {
                break;
            }
            job.current = None;
            job.pos += 1;
            done_here += 1;
        }
        if job.pos < job.indexes.len() {
            self.job = Some(Box::new(job));
            return;
        }
        self.report_updates(job.uid);
        if job.missing {
            self.no_code(
                &job.tag,
                Code::ExpungeIssued,
                "Some of the requested messages no longer exist",
            );
        } else {
            self.ok(&job.tag, "FETCH completed");
        }
        if let Some(m) = self.mailbox_mut() {
            m.flush();
        }
    }

    /// Load message `index`, set \Seen if asked, render its bounded items and write
    /// `* n FETCH (`.
    fn begin_one(&mut self, index: usize, job: &FetchJob) -> Result<Current, StoreError> {
        let m = self.selected();
        let entry = m.view().entries[index].clone();
        let loaded = if job.atts.iter().any(needs_message) {
            let raw = m.read(index)?;
            let crlf = mime::to_crlf(&raw).into_owned();
            let root = mime::parse(&crlf);
            Some((crlf, root))
        } else {
            None
        };
        // Opened now, so that a message gone meanwhile is dropped before its first byte.
        let file = if loaded.is_none() && job.atts.iter().any(whole_message) {
            let size = m.size(index)?;
            Some((m.open_message(index)?, size))
        } else {
            None
        };
        let mut flags = entry.flags;
        let mut seen_now = false;
        if job.sets_seen && !flags.has(Flags::SEEN) {
            let seen = Flags {
                system: Flags::SEEN,
                keywords: 0,
            };
            m.change_flags(index, FlagChange::add(seen))?;
            flags = m.view().entries[index].flags;
            seen_now = true;
        }
        let mut small = Vec::with_capacity(job.atts.len());
        for att in &job.atts {
            let mut out = Vec::new();
            match att {
                FetchAtt::Uid => out.extend_from_slice(format!("UID {}", entry.uid).as_bytes()),
                FetchAtt::Flags => {
                    out.extend_from_slice(b"FLAGS ");
                    response::flag_list(&mut out, flags, entry.recent, m.keywords());
                }
                FetchAtt::InternalDate => {
                    let d = m.internal_date(index)?;
                    out.extend_from_slice(
                        format!("INTERNALDATE \"{}\"", crate::util::date::imap_datetime(d))
                            .as_bytes(),
                    );
                }
                FetchAtt::Rfc822Size => {
                    let s = m.size(index)?;
                    out.extend_from_slice(format!("RFC822.SIZE {s}").as_bytes());
                }
                FetchAtt::Envelope => {
                    let (msg, root) = loaded.as_ref().expect("loaded");
                    out.extend_from_slice(b"ENVELOPE ");
                    envelope::write(&mut out, &msg[root.header.clone()]);
                }
                FetchAtt::Body | FetchAtt::BodyStructure => {
                    let (msg, root) = loaded.as_ref().expect("loaded");
                    let ext = *att == FetchAtt::BodyStructure;
                    out.extend_from_slice(if ext { b"BODYSTRUCTURE " } else { b"BODY " });
                    bodystructure::write(&mut out, msg, root, ext);
                }
                FetchAtt::Rfc822
                | FetchAtt::Rfc822Header
                | FetchAtt::Rfc822Text
                | FetchAtt::Section { .. } => {
                    small.push(None);
                    continue;
                }
            }
            small.push(Some(out));
        }
        let trailer = (seen_now && !job.atts.contains(&FetchAtt::Flags)).then(|| {
            let mut out = b"FLAGS ".to_vec();
            response::flag_list(&mut out, flags, entry.recent, m.keywords());
            out
        });
        response::fetch_open(self.output_buf(), index + 1);
        Ok(Current {
            loaded,
            file,
            sending: None,
            small,
            next: 0,
            trailer,
        })
    }

    /// Write the current message's next items while the client keeps up; true when its
    /// response is complete.
    fn continue_one(&mut self, job: &mut FetchJob) -> bool {
        let c = job.current.as_mut().expect("a message under way");
        // Reads of the file per call: a partial far into a big message reads what it
        // skips, and a step stays short.
        let mut reads = 0;
        while c.next < job.atts.len() || c.sending.is_some() {
            if self.output_len() >= config::OUTPUT_HIGH_WATER {
                return false;
            }
            if let Some(s) = c.sending.as_mut() {
                if reads == 16 {
                    return false;
                }
                reads += 1;
                let (file, _) = c.file.as_mut().expect("opened for sending");
                match s.pump(file.as_mut(), self.output_buf()) {
                    Ok(false) => {}
                    Ok(true) => c.sending = None,
                    // Logged once; the rest of the literal is padding.
                    Err(why) => {
                        let e = StoreError::io("read message", "", std::io::Error::other(why));
                        self.log_failure("fetch", &e);
                    }
                }
                continue;
            }
            let i = c.next;
            c.next += 1;
            if i > 0 {
                self.output_buf().push(b' ');
            }
            if let Some(text) = c.small[i].take() {
                self.output_buf().extend_from_slice(&text);
                continue;
            }
            if let Some((file, size)) = c.file.as_mut() {
                if whole_message(&job.atts[i]) {
                    let out = self.output_buf();
                    let (skip, len) = match &job.atts[i] {
                        FetchAtt::Section { partial, .. } => {
                            out.extend_from_slice(b"BODY[]");
                            match partial {
                                Some((start, len)) => {
                                    out.extend_from_slice(format!("<{start}>").as_bytes());
                                    let start = u64::from(*start).min(*size);
                                    (start, u64::from(*len).min(*size - start))
                                }
                                None => (0, *size),
                            }
                        }
                        _ => {
                            out.extend_from_slice(b"RFC822");
                            (0, *size)
                        }
                    };
                    out.extend_from_slice(format!(" {{{len}}}\r\n").as_bytes());
                    // From the start again for a second whole-message item.
                    let rewound = file.seek(SeekFrom::Start(0)).is_ok();
                    if len > 0 {
                        c.sending = Some(Sending {
                            skip,
                            left: len,
                            prev: 0,
                            failed: !rewound,
                        });
                    }
                    continue;
                }
            }
            let (msg, root) = c.loaded.as_ref().expect("loaded");
            let out = self.output_buf();
            match &job.atts[i] {
                FetchAtt::Section {
                    section: sec,
                    partial,
                    ..
                } => {
                    let data = section::extract(msg, root, sec);
                    out.extend_from_slice(format!("BODY[{}]", sec.spec()).as_bytes());
                    let slice: &[u8] = match partial {
                        Some((start, len)) => {
                            out.extend_from_slice(format!("<{start}>").as_bytes());
                            let s = (*start as usize).min(data.len());
                            let e = s.saturating_add(*len as usize).min(data.len());
                            &data[s..e]
                        }
                        None => &data,
                    };
                    out.push(b' ');
                    response::literal(out, slice);
                }
                att => {
                    let (name, range) = match att {
                        FetchAtt::Rfc822 => ("RFC822", 0..msg.len()),
                        FetchAtt::Rfc822Header => ("RFC822.HEADER", root.header.clone()),
                        _ => ("RFC822.TEXT", root.body.clone()),
                    };
                    out.extend_from_slice(name.as_bytes());
                    out.push(b' ');
                    response::literal(out, &msg[range]);
                }
            }
        }
        if let Some(t) = c.trailer.take() {
            if !job.atts.is_empty() {
                self.output_buf().push(b' ');
            }
            self.output_buf().extend_from_slice(&t);
        }
        self.output_buf().extend_from_slice(b")\r\n");
        true
    }
}

impl Job for FetchJob {
    fn run(self: Box<Self>, session: &mut Session) {
        session.run_fetch(*self)
    }
}
