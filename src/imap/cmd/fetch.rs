//! FETCH and UID FETCH (RFC 3501 6.4.5, 6.4.8). Runs as a job: a slice of messages per
//! step, paused while the client has not read what was sent, so `FETCH 1:*` over a
//! huge mailbox neither grows memory nor holds up other clients.

use super::super::fetch::{bodystructure, envelope, mime, section};
use super::super::parser::{FetchAtt, SeqSet};
use super::super::response;
use super::super::session::Session;
use super::Job;
use crate::config;
use crate::store::{FlagChange, Flags, StoreError};

pub struct FetchJob {
    tag: String,
    uid: bool,
    indexes: Vec<usize>,
    pos: usize,
    atts: Vec<FetchAtt>,
    sets_seen: bool,
    missing: bool,
}

/// Does this item make the message \Seen (RFC 3501 6.4.5)?
fn marks_seen(a: &FetchAtt) -> bool {
    matches!(
        a,
        FetchAtt::Rfc822 | FetchAtt::Rfc822Text | FetchAtt::Section { peek: false, .. }
    )
}

fn needs_message(a: &FetchAtt) -> bool {
    !matches!(
        a,
        FetchAtt::Uid | FetchAtt::Flags | FetchAtt::InternalDate | FetchAtt::Rfc822Size
    )
}

impl Session {
    pub(super) fn cmd_fetch(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SeqSet,
        mut atts: Vec<FetchAtt>,
    ) {
        let indexes = match self.resolve_set(set, uid) {
            Ok(v) => v,
            Err(e) => return self.bad(tag, &e),
        };
        if uid && !atts.contains(&FetchAtt::Uid) {
            atts.insert(0, FetchAtt::Uid);
        }
        let readonly = self.mailbox.as_ref().expect("selected").readonly();
        let sets_seen = !readonly && atts.iter().any(marks_seen);
        self.job = Some(Job::Fetch(FetchJob {
            tag: tag.to_string(),
            uid,
            indexes,
            pos: 0,
            atts,
            sets_seen,
            missing: false,
        }));
    }

    pub(in crate::imap) fn run_fetch(&mut self, mut job: FetchJob) {
        let mut done_here = 0;
        while job.pos < job.indexes.len()
            && self.output_len() < config::OUTPUT_HIGH_WATER
            && done_here < 256
        {
            let index = job.indexes[job.pos];
            job.pos += 1;
            done_here += 1;
            match self.fetch_one(index, &job) {
                Ok(bytes) => self.out_bytes(&bytes),
                Err(StoreError::Expunged) => job.missing = true,
                Err(e) => {
                    self.log_failure("fetch", &e);
                    job.missing = true;
                }
            }
        }
        if job.pos < job.indexes.len() {
            self.job = Some(Job::Fetch(job));
            return;
        }
        self.report_updates(job.uid);
        if job.missing {
            self.no(
                &job.tag,
                "[EXPUNGEISSUED] Some of the requested messages no longer exist",
            );
        } else {
            self.ok(&job.tag, "FETCH completed");
        }
        if let Some(m) = self.mailbox.as_mut() {
            m.flush();
        }
    }

    /// One `* n FETCH (...)` response.
    fn fetch_one(&mut self, index: usize, job: &FetchJob) -> Result<Vec<u8>, StoreError> {
        let m = self.mailbox.as_mut().expect("selected");
        let entry = m.view().entries[index].clone();
        let loaded = if job.atts.iter().any(needs_message) {
            let raw = m.read(index)?;
            let crlf = mime::to_crlf(&raw).into_owned();
            let root = mime::parse(&crlf);
            Some((crlf, root))
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
        let mut out = format!("* {} FETCH (", index + 1).into_bytes();
        let mut first = true;
        let mut sep = |out: &mut Vec<u8>| {
            if !first {
                out.push(b' ');
            }
            first = false;
        };
        for att in &job.atts {
            sep(&mut out);
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
                FetchAtt::Rfc822 | FetchAtt::Rfc822Header | FetchAtt::Rfc822Text => {
                    let (msg, root) = loaded.as_ref().expect("loaded");
                    let (name, range) = match att {
                        FetchAtt::Rfc822 => ("RFC822", 0..msg.len()),
                        FetchAtt::Rfc822Header => ("RFC822.HEADER", root.header.clone()),
                        _ => ("RFC822.TEXT", root.body.clone()),
                    };
                    out.extend_from_slice(name.as_bytes());
                    out.push(b' ');
                    response::literal(&mut out, &msg[range]);
                }
                FetchAtt::Section {
                    section: sec,
                    partial,
                    ..
                } => {
                    let (msg, root) = loaded.as_ref().expect("loaded");
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
                    response::literal(&mut out, slice);
                }
            }
        }
        if seen_now && !job.atts.contains(&FetchAtt::Flags) {
            sep(&mut out);
            out.extend_from_slice(b"FLAGS ");
            response::flag_list(&mut out, flags, entry.recent, m.keywords());
        }
        out.extend_from_slice(b")\r\n");
        Ok(out)
    }
}
