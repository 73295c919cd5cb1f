//! COPY and MOVE into a Maildir folder (see `store::undo`): each batch is made durable
//! in tmp/ (a message of another Maildir folder on this filesystem by a hard link: the
//! same inode, nothing copied), named in the undo record, then moved into new/ or cur/
//! and numbered with one dovecot-uidlist update. Undoing removes the named files from
//! new/ and cur/.

use std::fs;
use std::path::{Path, PathBuf};

use super::{MaildirAppend, lock_uidlist, number};
use crate::store::undo::{self, UndoRecord};
use crate::store::{
    AppendSink, Content, CopyInto, MailboxName, NewMessage, Result, StoreError, Uid,
};

pub(super) struct MaildirCopy {
    name: MailboxName,
    dir: PathBuf,
    hostname: String,
    record: Option<UndoRecord>,
    uidvalidity: u32,
}

impl MaildirCopy {
    pub(super) fn start(dir: PathBuf, hostname: &str, name: &MailboxName) -> MaildirCopy {
        MaildirCopy {
            name: name.clone(),
            dir,
            hostname: hostname.to_string(),
            record: None,
            uidvalidity: 0,
        }
    }

    fn io(&self, op: &'static str, e: std::io::Error) -> StoreError {
        StoreError::io(op, self.name.as_str(), e)
    }
}

impl CopyInto for MaildirCopy {
    fn add(&mut self, messages: Vec<NewMessage>) -> Result<Vec<Uid>> {
        let mailbox = self.name.as_str();
        let mut staged = Vec::with_capacity(messages.len());
        for m in messages {
            let mut sink = match m.content {
                Content::Bytes(data) => {
                    let mut sink = MaildirAppend::start(self.dir.clone(), &self.hostname, mailbox)?;
                    sink.write(&data)?;
                    sink
                }
                Content::File { file, size, vsize } => {
                    match MaildirAppend::link(
                        self.dir.clone(),
                        &self.hostname,
                        mailbox,
                        &file,
                        size,
                        vsize,
                    ) {
                        Some(linked) => linked,
                        None => {
                            let mut sink =
                                MaildirAppend::start(self.dir.clone(), &self.hostname, mailbox)?;
                            copy_file(&file, sink.as_mut(), mailbox)?;
                            sink
                        }
                    }
                }
            };
            staged.push(sink.stage(m.flags, &m.keywords, m.date)?);
        }
        // Before anything is published: a lock another program holds drops the staged
        // files (Locked: the caller gives the batch again later).
        let lock = lock_uidlist(&self.dir, mailbox)?;
        if self.record.is_none() {
            let r = UndoRecord::create(&self.dir).map_err(|e| self.io("start a copy", e))?;
            self.record = Some(r);
        }
        let bases: Vec<String> = staged.iter().map(|s| s.placed.base.clone()).collect();
        let record = self.record.as_mut().expect("created above");
        if let Err(e) = record.add(&bases) {
            return Err(self.io("record a copy", e));
        }
        let mut placed = Vec::with_capacity(staged.len());
        for s in staged {
            placed.push(s.publish()?);
        }
        let (validity, uids) = number(lock, &self.dir, mailbox, &placed)?;
        self.uidvalidity = validity;
        Ok(uids)
    }

    fn uidvalidity(&self) -> u32 {
        self.uidvalidity
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        if let Some(r) = &self.record {
            // On failure self is dropped with its record: the copy is taken back.
            r.commit().map_err(|e| self.io("finish a copy", e))?;
        }
        self.record = None;
        Ok(())
    }
}

impl Drop for MaildirCopy {
    fn drop(&mut self) {
        let Some(record) = self.record.take() else {
            return;
        };
        match record.lines() {
            Ok(bases) => {
                remove_named(&self.dir, &bases);
                record.discard();
            }
            // Left for the next open to undo (the lock goes with the record's descriptor).
            Err(e) => crate::log::warning(&format!(
                "copy into {}: undo record unreadable, left for the next open: {e}",
                self.name.as_str()
            )),
        }
    }
}

/// Write a message file that could not be linked into `sink`, in pieces.
fn copy_file(mut file: &fs::File, sink: &mut dyn AppendSink, mailbox: &str) -> Result<()> {
    use std::io::Read;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => sink.write(&buf[..n])?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(StoreError::io("read message", mailbox, e)),
        }
    }
}

/// Remove the messages with these unique names from new/ and cur/, whatever flags
/// their names carry now.
fn remove_named(dir: &Path, bases: &[String]) {
    let wanted: std::collections::HashSet<&str> = bases.iter().map(String::as_str).collect();
    for sub in ["new", "cur"] {
        let Ok(entries) = fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let base = name.split(':').next().unwrap_or("");
            if wanted.contains(base) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    let _ = crate::store::dotlock::sync_dir(&dir.join("cur"));
    let _ = crate::store::dotlock::sync_dir(&dir.join("new"));
}

/// Undo the copies into this folder whose process died (at open: "a partial copy is
/// undone at the next open").
pub(super) fn undo_abandoned(dir: &Path, mailbox: &str) {
    for a in undo::abandoned(dir) {
        crate::log::warning(&format!(
            "{mailbox}: undoing an unfinished copy of {} messages",
            a.lines.len()
        ));
        remove_named(dir, &a.lines);
        a.done();
    }
}
