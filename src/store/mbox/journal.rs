//! Crash-safe in-place rewrites of an mbox tail.
//!
//! Every change to an mbox that is not a same-length overwrite (expunge, headers that
//! grow, an APPEND) replaces the region from some message's `From ` line to the end of
//! the file. The programs sharing the spool (Postfix, procmail, mutt) keep the file's
//! inode, so the store rewrites in place, as UW imapd and Dovecot do; to survive kill -9
//! at any instant it first writes the new tail to a journal beside its index:
//!
//! 1. journal = header + new tail; fsync. (Crash: the mbox is untouched.)
//! 2. growing: extend the file to its new length; journal phase 1.
//! 3. write the new tail over the old; fsync.
//! 4. shrinking: journal phase 2, then truncate.
//! 5. remove the journal.
//!
//! The next session to lock the mailbox finds a complete journal and does it again
//! (`recover`). If an MDA broke the stale dot-lock meanwhile and appended mail, that mail
//! sits at the end the file had at the crash: phase and a hash of the bytes the shrink
//! cuts off tell which end that was, and the mail is kept after the new tail.
//!
//! Journal header, all big-endian u64: magic, inode, offset, old length, new length,
//! hash of old bytes [new length, old length), payload hash, phase, header hash.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

const MAGIC: u64 = u64::from_be_bytes(*b"IMAPDJ01");
const HEADER: u64 = 72;
const PHASE_AT: u64 = 56;
const COPY: usize = 1 << 20;

/// A 64-bit hash of a byte stream, the same on every architecture (bytes are taken in
/// explicit little-endian words).
#[derive(Clone)]
pub struct Hasher {
    h: u64,
    tail: Vec<u8>,
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher {
            h: 0xcbf2_9ce4_8422_2325,
            tail: Vec::new(),
        }
    }
}

impl Hasher {
    pub fn update(&mut self, mut data: &[u8]) {
        if !self.tail.is_empty() {
            let need = 8 - self.tail.len();
            let take = need.min(data.len());
            self.tail.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.tail.len() == 8 {
                let w = u64::from_le_bytes(self.tail[..].try_into().expect("8"));
                self.word(w);
                self.tail.clear();
            }
        }
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().expect("8")));
        }
        self.tail.extend_from_slice(chunks.remainder());
    }

    fn word(&mut self, w: u64) {
        self.h = (self.h ^ w)
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(29);
    }

    pub fn finish(mut self) -> u64 {
        let n = self.tail.len() as u64;
        let mut last = [0u8; 8];
        last[..self.tail.len()].copy_from_slice(&self.tail);
        self.word(u64::from_le_bytes(last) ^ (n << 56));
        self.h ^ (self.h >> 31)
    }
}

fn hash_region(file: &File, from: u64, to: u64) -> io::Result<u64> {
    let mut h = Hasher::default();
    let mut buf = vec![0u8; COPY];
    let mut pos = from;
    while pos < to {
        let n = ((to - pos) as usize).min(COPY);
        file.read_exact_at(&mut buf[..n], pos)?;
        h.update(&buf[..n]);
        pos += n as u64;
    }
    Ok(h.finish())
}

/// A rewrite being prepared: the new tail goes into the journal first.
pub struct Rewrite {
    path: std::path::PathBuf,
    file: io::BufWriter<File>,
    offset: u64,
    old_len: u64,
    len: u64,
    hash: Hasher,
}

impl Rewrite {
    /// Replace the mbox from `offset` (up to its current length `old_len`).
    pub fn begin(journal: &Path, offset: u64, old_len: u64) -> io::Result<Rewrite> {
        let _ = std::fs::remove_file(journal);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(journal)?;
        let mut w = io::BufWriter::with_capacity(COPY, file);
        w.write_all(&[0u8; HEADER as usize])?;
        Ok(Rewrite {
            path: journal.to_path_buf(),
            file: w,
            offset,
            old_len,
            len: 0,
            hash: Hasher::default(),
        })
    }

    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        self.hash.update(data);
        self.len += data.len() as u64;
        Ok(())
    }

    pub fn written(&self) -> u64 {
        self.len
    }

    /// Carry the rewrite out on `mbox` (locked by the caller). Returns the new length.
    pub fn commit(self, mbox: &File) -> io::Result<u64> {
        let journal = self.file.into_inner().map_err(|e| e.into_error())?;
        let new_len = self.offset + self.len;
        let old_end_hash = if new_len < self.old_len {
            hash_region(mbox, new_len, self.old_len)?
        } else {
            0
        };
        let head = Header {
            ino: mbox.metadata()?.ino(),
            offset: self.offset,
            old_len: self.old_len,
            new_len,
            old_end_hash,
            payload_hash: self.hash.finish(),
            phase: 0,
        };
        journal.write_all_at(&head.encode(), 0)?;
        journal.sync_all()?;
        if let Some(dir) = self.path.parent() {
            crate::store::dotlock::sync_dir(dir)?;
        }
        apply(&journal, &head, mbox, None)?;
        std::fs::remove_file(&self.path)?;
        Ok(new_len)
    }

    /// Throw the prepared rewrite away (the mbox was not touched).
    pub fn abandon(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    ino: u64,
    offset: u64,
    old_len: u64,
    new_len: u64,
    old_end_hash: u64,
    payload_hash: u64,
    phase: u64,
}

impl Header {
    fn encode(&self) -> [u8; HEADER as usize] {
        let mut b = [0u8; HEADER as usize];
        let words = [
            MAGIC,
            self.ino,
            self.offset,
            self.old_len,
            self.new_len,
            self.old_end_hash,
            self.payload_hash,
            self.phase,
        ];
        for (i, w) in words.iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&w.to_be_bytes());
        }
        let mut h = Hasher::default();
        h.update(&b[..PHASE_AT as usize]);
        b[64..72].copy_from_slice(&h.finish().to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Header> {
        if b.len() < HEADER as usize {
            return None; // cut short: the session died while creating it
        }
        let w = |i: usize| u64::from_be_bytes(b[i * 8..i * 8 + 8].try_into().expect("8"));
        let mut h = Hasher::default();
        h.update(&b[..PHASE_AT as usize]);
        if w(0) != MAGIC || w(8) != h.finish() {
            return None;
        }
        Some(Header {
            ino: w(1),
            offset: w(2),
            old_len: w(3),
            new_len: w(4),
            old_end_hash: w(5),
            payload_hash: w(6),
            phase: w(7),
        })
    }
}

fn set_phase(journal: &File, phase: u64) -> io::Result<()> {
    journal.write_all_at(&phase.to_be_bytes(), PHASE_AT)?;
    journal.sync_data()
}

fn copy_payload(journal: &File, head: &Header, mbox: &File) -> io::Result<()> {
    let mut buf = vec![0u8; COPY];
    let len = head.new_len - head.offset;
    let mut done = 0u64;
    while done < len {
        let n = ((len - done) as usize).min(COPY);
        journal.read_exact_at(&mut buf[..n], HEADER + done)?;
        mbox.write_all_at(&buf[..n], head.offset + done)?;
        done += n as u64;
    }
    Ok(())
}

/// Steps 2-4, from the start (`appended`: mail found after a crash, kept at the end).
fn apply(journal: &File, head: &Header, mbox: &File, appended: Option<Vec<u8>>) -> io::Result<()> {
    let extra = appended.as_ref().map_or(0, |a| a.len() as u64);
    if head.new_len > head.old_len {
        mbox.set_len(head.new_len + extra)?;
        mbox.sync_data()?;
    }
    set_phase(journal, 1)?;
    copy_payload(journal, head, mbox)?;
    if let Some(a) = &appended {
        mbox.write_all_at(a, head.new_len)?;
    }
    mbox.sync_data()?;
    if head.new_len + extra < mbox.metadata()?.len() {
        set_phase(journal, 2)?;
        mbox.set_len(head.new_len + extra)?;
        mbox.sync_all()?;
    }
    Ok(())
}

/// Finish a rewrite a crashed session left (caller holds the mbox write locks).
/// Returns whether there was one to finish.
pub fn recover(journal_path: &Path, mbox: &File, mailbox: &str) -> io::Result<bool> {
    let journal = match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(journal_path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut raw = Vec::new();
    (&journal).take(HEADER).read_to_end(&mut raw)?;
    let head = Header::decode(&raw);
    let valid = match &head {
        Some(h) if h.ino == mbox.metadata()?.ino() && h.new_len >= h.offset => {
            let payload_len = journal.metadata()?.len().saturating_sub(HEADER);
            payload_len == h.new_len - h.offset
                && hash_region(&journal, HEADER, HEADER + payload_len)? == h.payload_hash
        }
        _ => false,
    };
    let Some(head) = head.filter(|_| valid) else {
        // Never committed: the mbox was not touched.
        std::fs::remove_file(journal_path)?;
        return Ok(false);
    };
    let size = mbox.metadata()?.len();
    let growing = head.new_len > head.old_len;
    // Where the file ended when the session died: mail appended since starts there.
    let end_at_crash = match head.phase {
        0 if growing => {
            let mut b = [1u8; 1];
            let extended = size > head.old_len
                && mbox.read_exact_at(&mut b, head.old_len).is_ok()
                && b[0] == 0;
            if extended { head.new_len } else { head.old_len }
        }
        0 | 1 => {
            if growing {
                head.new_len
            } else {
                head.old_len
            }
        }
        _ => {
            let untruncated = size >= head.old_len
                && hash_region(mbox, head.new_len, head.old_len)? == head.old_end_hash;
            if untruncated {
                head.old_len
            } else {
                head.new_len
            }
        }
    };
    let appended = if size > end_at_crash {
        let mut a = vec![0u8; (size - end_at_crash) as usize];
        mbox.read_exact_at(&mut a, end_at_crash)?;
        Some(a)
    } else {
        None
    };
    crate::log::warning(&format!(
        "mbox {mailbox}: finishing a rewrite an interrupted session left (journal {}); {} octets delivered since kept",
        journal_path.display(),
        appended.as_ref().map_or(0, Vec::len)
    ));
    apply(&journal, &head, mbox, appended)?;
    std::fs::remove_file(journal_path)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "mbox-journal-{tag}-{}-{}",
            std::process::id(),
            crate::store::maildir::filename::unique("t")
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn mbox_with(dir: &Path, data: &[u8]) -> File {
        let p = dir.join("mbox");
        std::fs::write(&p, data).unwrap();
        OpenOptions::new().read(true).write(true).open(p).unwrap()
    }

    /// A journal written on one architecture is recovered on another: the hash and the
    /// header are fixed by the format, not the host's byte order.
    #[test]
    fn hash_and_header_are_the_same_on_every_architecture() {
        let mut h = Hasher::default();
        h.update(b"From a Mon Nov 23 10:00:00 2026\n");
        h.update(b"x");
        let mut whole = Hasher::default();
        whole.update(b"From a Mon Nov 23 10:00:00 2026\nx");
        let v = h.finish();
        assert_eq!(v, whole.finish());
        assert_eq!(format!("{v:016x}"), "caf350121bfae8ec");
        let head = Header {
            ino: 1,
            offset: 2,
            old_len: 3,
            new_len: 4,
            old_end_hash: 5,
            payload_hash: 6,
            phase: 7,
        };
        let b = head.encode();
        assert_eq!(&b[..8], b"IMAPDJ01");
        assert_eq!(&b[8..16], &[0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(Header::decode(&b), Some(head));
        for cut in 0..b.len() {
            assert_eq!(Header::decode(&b[..cut]), None);
        }
    }

    #[test]
    fn commit_grows_and_shrinks() {
        let d = scratch("commit");
        let j = d.join("journal");
        for (old, off, new, want) in [
            (&b"AAAABBBB"[..], 4, &b"CCCCCC"[..], &b"AAAACCCCCC"[..]),
            (&b"AAAABBBBBB"[..], 4, &b"C"[..], &b"AAAAC"[..]),
        ] {
            let m = mbox_with(&d, old);
            let mut r = Rewrite::begin(&j, off, old.len() as u64).unwrap();
            r.write(new).unwrap();
            r.commit(&m).unwrap();
            assert_eq!(std::fs::read(d.join("mbox")).unwrap(), want);
            assert!(!j.exists());
        }
    }

    /// A crash at each step, with and without mail appended afterwards: recovery ends
    /// with the new tail followed by the appended mail, never losing or doubling it.
    #[test]
    fn recovery_after_crash_at_each_phase() {
        let d = scratch("recover");
        let j = d.join("journal");
        let delivered = b"From x Thu Nov 23 10:00:00 2026\n\nnew\n\n";
        for (old, off, new) in [
            (&b"AAAABBBB"[..], 4u64, &b"CCCCCCCCC"[..]),
            (&b"AAAABBBBBBBB"[..], 4, &b"CC"[..]),
        ] {
            let new_len = off + new.len() as u64;
            let growing = new_len > old.len() as u64;
            for crash in 0..4 {
                for append in [false, true] {
                    let m = mbox_with(&d, old);
                    let mut r = Rewrite::begin(&j, off, old.len() as u64).unwrap();
                    r.write(new).unwrap();
                    // Simulate commit() up to the crash point.
                    let journal = r.file.into_inner().unwrap();
                    let old_end_hash = if growing {
                        0
                    } else {
                        hash_region(&m, new_len, old.len() as u64).unwrap()
                    };
                    let head = Header {
                        ino: m.metadata().unwrap().ino(),
                        offset: off,
                        old_len: old.len() as u64,
                        new_len,
                        old_end_hash,
                        payload_hash: r.hash.clone().finish(),
                        phase: 0,
                    };
                    journal.write_all_at(&head.encode(), 0).unwrap();
                    if crash >= 1 && growing {
                        m.set_len(new_len).unwrap();
                    }
                    if crash >= 2 {
                        set_phase(&journal, 1).unwrap();
                        copy_payload(&journal, &head, &m).unwrap();
                    }
                    if crash >= 3 && !growing {
                        set_phase(&journal, 2).unwrap();
                        m.set_len(new_len).unwrap();
                    }
                    if append {
                        let end = m.metadata().unwrap().len();
                        m.write_all_at(delivered, end).unwrap();
                    }
                    assert!(recover(&j, &m, "test").unwrap());
                    let mut want = old[..off as usize].to_vec();
                    want.extend_from_slice(new);
                    if append {
                        want.extend_from_slice(delivered);
                    }
                    assert_eq!(
                        String::from_utf8_lossy(&std::fs::read(d.join("mbox")).unwrap()),
                        String::from_utf8_lossy(&want),
                        "crash {crash} append {append} growing {growing}"
                    );
                }
            }
        }
        // An uncommitted journal is thrown away and the mbox left alone.
        let m = mbox_with(&d, b"AAAA");
        let mut r = Rewrite::begin(&j, 0, 4).unwrap();
        r.write(b"ZZ").unwrap();
        drop(r.file.into_inner().unwrap());
        assert!(!recover(&j, &m, "test").unwrap());
        assert_eq!(std::fs::read(d.join("mbox")).unwrap(), b"AAAA");
        let _ = std::fs::remove_dir_all(d);
    }
}
