//! COPY, UID COPY (RFC 3501 6.4.7) with COPYUID (RFC 4315), and MOVE (RFC 6851).
//! Messages go through the store interface (each message's content, then added to a
//! `CopyInto`), so a copy between any two store formats works the same way, all or
//! nothing; between Maildir folders the files are linked, not read.

use super::super::parser::SeqSet;
use super::super::response::{Code, Status, sequence_set};
use super::super::state::Job;
use super::super::state::Session;
use crate::store::names::MailboxName;
use crate::store::{CopyInto, Flags, NewMessage, StoreError};

/// Messages (each maybe an open file), and octets read into memory, stored as one
/// batch at most.
const BATCH_MESSAGES: usize = 128;
const BATCH_BYTES: usize = 8 << 20;

/// A COPY or MOVE under way: one batch per step, so a 30,000-message COPY is many short
/// steps of a worker, not one long one.
pub struct CopyJob {
    tag: String,
    dest: MailboxName,
    is_move: bool,
    indexes: Vec<usize>,
    pos: usize,
    src: Vec<u32>,
    dst: Vec<u32>,
    moved: Vec<usize>,
    /// Opened at the first step; dropped uncommitted, it takes the copy back.
    into: Option<Box<dyn CopyInto>>,
    missing: bool,
    /// Committed, with its COPYUID: a MOVE's expunge is all that is left.
    committed: Option<Option<Code>>,
}

impl Session {
    pub(super) fn cmd_copy(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SeqSet,
        raw: &[u8],
        is_move: bool,
    ) {
        let indexes = match self.resolve_set(set, uid) {
            Ok(v) => v,
            Err(e) => return self.bad(tag, &e),
        };
        let Some(dest) = self.mailbox_name(tag, raw) else {
            return;
        };
        if is_move && self.selected_ref().readonly() {
            return self.no_code(tag, Code::ReadOnly, "Mailbox is read-only");
        }
        let store = self.store();
        if !store.exists(&dest) {
            return self.no_code(tag, Code::TryCreate, "Mailbox does not exist");
        }
        self.job = Some(Box::new(CopyJob {
            tag: tag.to_string(),
            dest,
            is_move,
            indexes,
            pos: 0,
            src: Vec::new(),
            dst: Vec::new(),
            moved: Vec::new(),
            into: None,
            missing: false,
            committed: None,
        }));
    }

    /// One batch (BATCH_MESSAGES or BATCH_BYTES), numbered in the destination at once;
    /// the answer after the last. A lock another program holds (on either mailbox)
    /// parks the job at the start of its batch: the store kept none of it.
    fn run_copy(&mut self, mut job: CopyJob) {
        if let Some(code) = job.committed.take() {
            return self.finish_move(job, code);
        }
        let store = self.store();
        if job.into.is_none() {
            match store.copy_into(&job.dest) {
                Ok(into) => job.into = Some(into),
                Err(e) if self.waits_for_lock(&e) => return self.park(Box::new(job)),
                Err(e) => return self.store_error(&job.tag, &e),
            }
        }
        let batch_start = job.pos;
        let m = self.selected();
        let mut batch = Vec::new();
        let mut batch_src = Vec::new();
        let mut bytes = 0;
        while job.pos < job.indexes.len() && bytes < BATCH_BYTES && batch.len() < BATCH_MESSAGES {
            let i = job.indexes[job.pos];
            job.pos += 1;
            let entry = m.view().entries[i].clone();
            let read = (|| -> Result<NewMessage, StoreError> {
                let content = m.copy_content(i)?;
                let date = m.internal_date(i)?;
                let keywords: Vec<String> = m
                    .keywords()
                    .iter()
                    .enumerate()
                    .filter(|(b, k)| entry.flags.keywords & (1 << b) != 0 && !k.is_empty())
                    .map(|(_, k)| k.clone())
                    .collect();
                let flags = Flags {
                    system: entry.flags.system,
                    keywords: 0,
                };
                Ok(NewMessage {
                    content,
                    flags,
                    keywords,
                    date: Some(date),
                })
            })();
            match read {
                Ok(msg) => {
                    bytes += msg.content.in_memory();
                    batch.push(msg);
                    batch_src.push((i, entry.uid));
                }
                Err(StoreError::Expunged) => job.missing = true,
                Err(e) => return self.copy_failed(job, batch_start, e),
            }
        }
        let into = job.into.as_mut().expect("opened above");
        if !batch.is_empty() {
            match into.add(batch) {
                Ok(uids) => {
                    for ((i, uid), new_uid) in batch_src.into_iter().zip(uids) {
                        job.src.push(uid);
                        job.dst.push(new_uid);
                        job.moved.push(i);
                    }
                }
                Err(e) => return self.copy_failed(job, batch_start, e),
            }
        }
        if job.pos < job.indexes.len() {
            self.job = Some(Box::new(job));
            return;
        }
        if job.missing && job.src.is_empty() {
            return self.no_code(
                &job.tag,
                Code::ExpungeIssued,
                "The messages no longer exist",
            );
        }
        let into = job.into.take().expect("opened above");
        // RFC 4315 4.3: no COPYUID when nothing was copied (all expunged meanwhile).
        let code = (!job.src.is_empty()).then(|| Code::CopyUid {
            uidvalidity: into.uidvalidity(),
            source: sequence_set(&job.src),
            dest: sequence_set(&job.dst),
        });
        if let Err(e) = into.commit() {
            return self.store_error(&job.tag, &e);
        }
        self.finish_move(job, code)
    }

    /// A batch met a lock another program holds: taken up again from its start later.
    /// Anything else fails the copy (the store takes back what it kept).
    fn copy_failed(&mut self, mut job: CopyJob, batch_start: usize, e: StoreError) {
        if self.waits_for_lock(&e) {
            job.pos = batch_start;
            return self.park(Box::new(job));
        }
        self.store_error(&job.tag, &e)
    }

    /// The copy is committed: a MOVE expunges the originals (parked, as committed, on a
    /// lock another program holds), then the answer.
    fn finish_move(&mut self, mut job: CopyJob, code: Option<Code>) {
        if job.is_move {
            let m = self.selected();
            if let Err(e) = m.expunge(&job.moved) {
                if self.waits_for_lock(&e) {
                    job.committed = Some(code);
                    return self.park(Box::new(job));
                }
                return self.store_error(&job.tag, &e);
            }
            // RFC 6851 4.3: COPYUID in an untagged OK before the expunges.
            self.untagged(Status::Ok, code, "Moved");
            self.complete(&job.tag, true, "MOVE completed");
        } else {
            self.complete_with(&job.tag, true, code.as_ref(), "COPY completed");
        }
    }
}

impl Job for CopyJob {
    fn run(self: Box<Self>, session: &mut Session) {
        session.run_copy(*self)
    }
}
