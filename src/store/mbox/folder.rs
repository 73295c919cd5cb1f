//! One mbox opened by a session. The file is the truth for UIDs and flags (UW imapd's
//! model, so that mutt, Dovecot and UW read what this store writes); `imapd.index` only
//! spares a parse. Every access takes the locks for its moment only:
//! - a change is noticed by stat (inode, size, mtime, ctime) and by the generation our
//!   writers bump before any write that is not an append (`imapd.generation`: a
//!   same-length overwrite within one clock tick changes no stat field): mail appended
//!   after a known end is parsed from there, anything else from the index or the file;
//! - new messages (no valid X-UID, no `O` in Status) get their UIDs and metadata headers
//!   at once, under the write locks, by a journaled rewrite of the tail they sit in;
//! - flag changes are collected during a command and written when it ends: in place where
//!   the padded headers have room, otherwise by one rewrite from the first that has not;
//! - EXPUNGE rewrites from the first expunged message.

use super::index::{self, Stamp, State};
use super::journal::{self, Rewrite};
use super::lock::{self, DotLock, Holders, RangeLock};
use super::parse::{self, Base, MsgRec, Scanner};
use super::shared;
use super::write::{self, Meta};
use crate::store::undo::{self, UndoRecord};
use crate::store::view::{Entry, View};
use crate::store::{
    Content, FlagChange, Flags, Mailbox, NewMessage, Result, StoreError, Uid, Update,
};
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Seek, Write as _};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Messages served larger than this are copied to a private temporary file for
/// streaming, so that the mbox need not stay locked while a slow client reads.
const IN_MEMORY: u64 = 1 << 20;

/// In the index directory: the UIDVALIDITY of an mbox without metadata (decimal).
const PROVISIONAL_FILE: &str = "imapd.uidvalidity";

/// Keywords a folder can hold (`Flags::keywords` is 32 bits).
const MAX_KEYWORDS: usize = 32;

pub struct MboxFolder {
    name: String,
    path: PathBuf,
    index_dir: PathBuf,
    readonly: bool,
    /// The file could be opened for writing (else UIDs of new mail are provisional).
    writable: bool,
    file: File,
    /// Shared with the process's other sessions at the same stamp (`shared`); changed
    /// through `state_mut`, which makes it this session's own first.
    state: Arc<State>,
    /// Hash of the last bytes of the file as parsed: appended mail is parsed alone only
    /// when the old end is still there.
    tail_hash: u64,
    /// UIDVALIDITY of an mbox with no metadata yet (no message, no pseudo-message): kept
    /// in the index directory, so that every session announces the same one, and used
    /// when the first message is labelled (0: not loaded yet).
    provisional_uidvalidity: u32,
    keywords: Vec<String>,
    view: View,
    /// Flag changes of the current command, applied to the file's flags when written.
    pending: BTreeMap<Uid, FlagChange>,
    /// `imapd.generation`: a u64 (big-endian) our writers bump (see the module comment).
    generation: File,
    /// Bumped already under the write lock held now.
    generation_bumped: bool,
    /// Inside `with_write_lock`: the dot-lock and the fcntl write lock are held.
    write_locked: bool,
    /// The state the view was last brought up to.
    view_stamp: Stamp,
    /// Messages this session labelled (it is the one to report them \Recent).
    recent: HashSet<Uid>,
    index_dirty: bool,
}

fn now() -> i64 {
    crate::util::date::now()
}

impl MboxFolder {
    pub fn open(name: &str, path: PathBuf, index_dir: PathBuf, readonly: bool) -> Result<Self> {
        let err = |op: &'static str| {
            let name = name.to_string();
            move |e: io::Error| StoreError::io(op, &name, e)
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&index_dir)
            .map_err(err("create the index directory"))?;
        let (file, writable) = match lock::open_mbox(&path) {
            Ok(f) => (f, true),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => (
                lock::open_mbox_readonly(&path).map_err(err("open mailbox"))?,
                false,
            ),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(StoreError::NoSuchMailbox);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::NoSuchMailbox),
            Err(e) => return Err(err("open mailbox")(e)),
        };
        if !file.metadata().map_err(err("open mailbox"))?.is_file() {
            return Err(StoreError::NoSuchMailbox);
        }
        let generation = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(index_dir.join(index::GENERATION_FILE))
            .map_err(err("open the index directory"))?;
        let mut f = MboxFolder {
            name: name.to_string(),
            path,
            index_dir,
            readonly,
            writable,
            file,
            state: Arc::new(State {
                stamp: Stamp::default(),
                junk_prefix: 0,
                pseudo: None,
                msgs: Vec::new(),
            }),
            tail_hash: 0,
            provisional_uidvalidity: 0,
            keywords: Vec::new(),
            view: View::default(),
            pending: BTreeMap::new(),
            generation,
            generation_bumped: false,
            write_locked: false,
            view_stamp: Stamp::default(),
            recent: HashSet::new(),
            index_dirty: false,
        };
        f.refresh()?;
        // A copy into this mailbox whose process died is undone at the next open.
        if f.writable && undo::any(&f.index_dir) {
            f.with_write_lock(|s| s.undo_abandoned_copies_locked())?;
        }
        if f.base().is_none() {
            f.provisional()?;
        }
        f.view.entries = f.entries();
        f.view_stamp = f.state.stamp;
        Ok(f)
    }

    fn err(&self, op: &'static str, e: io::Error) -> StoreError {
        StoreError::io(op, &self.name, e)
    }

    fn journal_path(&self) -> PathBuf {
        self.index_dir.join("imapd.journal")
    }

    fn base(&self) -> Option<&Base> {
        self.state
            .pseudo
            .as_ref()
            .and_then(|p| p.base.as_deref())
            .or_else(|| self.state.msgs.first().and_then(|m| m.base.as_deref()))
    }

    /// The metadata's holder (UW's pseudo-message, else the first message), to change.
    fn base_mut(&mut self) -> Option<&mut Base> {
        let st = self.state_mut();
        match st.pseudo.as_mut() {
            Some(p) => p.base.as_deref_mut(),
            None => st.msgs.first_mut().and_then(|m| m.base.as_deref_mut()),
        }
    }

    /// The state, to change: this session's own copy from now on (`shared`).
    fn state_mut(&mut self) -> &mut State {
        Arc::make_mut(&mut self.state)
    }

    /// Our writers' generation now (0 before the first).
    fn generation_now(&self) -> Result<u64> {
        let mut b = [0u8; 8];
        match self.generation.read_exact_at(&mut b, 0) {
            Ok(()) => Ok(u64::from_be_bytes(b)),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            Err(e) => Err(self.err("read the index directory", e)),
        }
    }

    /// Before a write that is not an append (caller holds the write locks): bump the
    /// generation once, so that every other session parses again what it knows.
    fn will_write(&mut self) -> Result<()> {
        if !self.generation_bumped {
            let next = self.generation_now()?.wrapping_add(1);
            self.generation
                .write_all_at(&next.to_be_bytes(), 0)
                .map_err(|e| self.err("write the index directory", e))?;
            self.generation_bumped = true;
        }
        Ok(())
    }

    /// The path's current stamp (None: the mbox is gone).
    fn path_stamp(&self) -> Result<Option<Stamp>> {
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) => Ok(Some(Stamp::of(&m, self.generation_now()?))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err("stat mailbox", e)),
        }
    }

    /// Bring `state` up to date with the file, labelling new mail. Cheap when unchanged.
    fn refresh(&mut self) -> Result<()> {
        let stamp = self.path_stamp()?;
        if stamp == Some(self.state.stamp) && !self.journal_path().exists() {
            return Ok(());
        }
        if stamp.is_none() {
            // Deleted under us (by mutt, or the admin): no messages.
            self.state_mut().msgs.clear();
            self.state_mut().pseudo = None;
            return Ok(());
        }
        // A read lock is enough to look; new mail escalates to the write locks.
        self.with_read_lock(|_| Ok(()))
    }

    /// If the path now names another file (replaced by a rename), use that one.
    fn reopen_if_replaced(&mut self) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let ino = self
            .file
            .metadata()
            .map_err(|e| self.err("stat mailbox", e))?
            .ino();
        if let Some(s) = self.path_stamp()? {
            if s.ino != ino {
                let f = if self.writable {
                    lock::open_mbox(&self.path)
                } else {
                    lock::open_mbox_readonly(&self.path)
                };
                self.file = f.map_err(|e| self.err("open mailbox", e))?;
                self.state_mut().stamp = Stamp::default();
            }
        }
        Ok(())
    }

    /// A second descriptor of the mbox the path names now, to hold a lock on (an OFD
    /// lock belongs to the open file, which both descriptors share).
    fn current_handle(&mut self) -> Result<File> {
        self.reopen_if_replaced()?;
        self.file
            .try_clone()
            .map_err(|e| self.err("lock mailbox", e))
    }

    /// Run `f` under the dot-lock and the fcntl write lock, with `state` current and
    /// new mail labelled.
    fn with_write_lock<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let _dot = DotLock::acquire(&self.path).map_err(|e| self.err("lock mailbox", e))?;
        let handle = self.current_handle()?;
        let _w =
            RangeLock::write(&handle, Holders::Anyone).map_err(|e| self.err("lock mailbox", e))?;
        self.generation_bumped = false;
        self.write_locked = true;
        let r = (|| {
            journal::recover(&self.journal_path(), &self.file, &self.name)
                .map_err(|e| self.err("finish an interrupted rewrite", e))?;
            self.reload()?;
            self.label()?;
            let r = f(self);
            self.after_write()?;
            r
        })();
        self.write_locked = false;
        r
    }

    /// Run `f` under the fcntl read lock with `state` current (no labelling).
    fn with_read_lock<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.writable && self.journal_path().exists() {
            return self.with_write_lock(f);
        }
        let handle = self.current_handle()?;
        let r =
            RangeLock::read(&handle, Holders::Anyone).map_err(|e| self.err("lock mailbox", e))?;
        self.reload()?;
        // A read-write session claims recent mail (writes its `O`); EXAMINE and STATUS
        // leave it recent for that session, but still write the UIDs it needs.
        let claims = !self.readonly && self.state.msgs.iter().any(|m| m.recent);
        if self.unlabelled() || (self.writable && claims) {
            if self.writable {
                // New mail arrived: it needs its UIDs (written) before anything else.
                drop(r);
                return self.with_write_lock(f);
            }
            self.label_in_memory();
        }
        f(self)
    }

    /// Is there a message without a valid UID (new mail, or UIDs out of order)?
    fn unlabelled(&self) -> bool {
        let last = self.base().map_or(0, |b| b.last_uid);
        let mut prev = 0;
        for m in &self.state.msgs {
            if m.uid <= prev || m.uid > last {
                return true;
            }
            prev = m.uid;
        }
        false
    }

    /// A mailbox this session may not write: UIDs for new mail in memory only, in the
    /// order a writer would give them.
    fn label_in_memory(&mut self) {
        let mut last = self.base().map_or(0, |b| b.last_uid);
        let mut prev = 0;
        for m in &mut self.state_mut().msgs {
            if m.uid <= prev || m.uid > last {
                last += 1;
                m.uid = last;
            }
            prev = m.uid;
        }
    }

    /// The open file's stamp now.
    fn file_stamp(&self) -> Result<Stamp> {
        let m = self
            .file
            .metadata()
            .map_err(|e| self.err("stat mailbox", e))?;
        Ok(Stamp::of(&m, self.generation_now()?))
    }

    /// After writing: remember the file as it now is (stamp, tail hash), index to save.
    fn after_write(&mut self) -> Result<()> {
        let stamp = self.file_stamp()?;
        if stamp != self.state.stamp {
            self.state_mut().stamp = stamp;
            self.tail_hash = self.tail_hash_now()?;
            self.index_dirty = true;
            // What the index will say of this version, as surely as the index does.
            shared::offer(&self.path, &self.state);
        }
        Ok(())
    }

    fn tail_hash_now(&self) -> Result<u64> {
        self.tail_hash_now_at(self.state.stamp.size)
    }

    /// Parse what changed since `state.stamp` (caller holds a lock).
    fn reload(&mut self) -> Result<()> {
        let now_stamp = self.file_stamp()?;
        if now_stamp == self.state.stamp {
            return Ok(());
        }
        // Another session of this process has parsed this version of the file already
        // (and decided its metadata: deciding again below changes nothing).
        let adopted = shared::state(&self.path, &now_stamp);
        let from_shared = adopted.is_some();
        if let Some(st) = adopted {
            self.state = st;
        } else {
            self.parse_changes(now_stamp)?;
        }
        let had_base = self.base().is_some();
        let decided = self.vet_metadata()?;
        // The stamp read before parsing: a change during the parse shows as newer. (Not
        // when a base was disbelieved without the write lock: the locked reload that
        // follows must parse again and decide.)
        let stamp = if decided { now_stamp } else { Stamp::default() };
        if self.state.stamp != stamp {
            self.state_mut().stamp = stamp;
        }
        self.tail_hash = self.tail_hash_now()?;
        self.index_dirty |= !from_shared;
        self.learn_keywords();
        // Offered as decided (not a base disbelieved now: that session's own matter).
        if decided && !from_shared && had_base == self.base().is_some() {
            shared::offer(&self.path, &self.state);
        }
        Ok(())
    }

    /// Bring `state` to the file at `now_stamp`: the appended messages parsed, or the
    /// index of that version loaded, or the whole file parsed.
    fn parse_changes(&mut self, now_stamp: Stamp) -> Result<()> {
        let old = self.state.stamp;
        let last_separated = self.state.msgs.last().is_none_or(|l| l.end < l.next)
            && (self.state.msgs.last().map(|l| l.next))
                .or(self.state.pseudo.as_ref().map(|p| p.next))
                .unwrap_or(self.state.junk_prefix)
                == old.size;
        let appended_only = old.ino == now_stamp.ino
            && old.generation == now_stamp.generation
            && old.size > 0
            && now_stamp.size > old.size
            && last_separated
            && self.tail_hash_now_at(old.size)? == self.tail_hash;
        if appended_only {
            let first = self.state.msgs.is_empty() && self.state.pseudo.is_none();
            let scan = Scanner::scan(&self.file, old.size, first)
                .map_err(|e| self.err("read mailbox", e))?;
            self.absorb(scan.msgs, first);
        } else if let Some(st) = self.load_index(&now_stamp) {
            self.state = Arc::new(st);
        } else {
            let scan =
                Scanner::scan(&self.file, 0, true).map_err(|e| self.err("read mailbox", e))?;
            self.state = Arc::new(State {
                stamp: old,
                junk_prefix: scan.junk_prefix,
                pseudo: None,
                msgs: Vec::new(),
            });
            self.absorb(scan.msgs, true);
            if self.state.junk_prefix > 0 {
                crate::log::warning(&format!(
                    "mbox {}: {} octets before the first From line are not a message; kept as they are",
                    self.name, self.state.junk_prefix
                ));
            }
        }
        Ok(())
    }

    /// Metadata headers in mail that arrived by an MDA are the sender's words, not a
    /// mail store's (qpopper's forged X-UIDL class): Postfix and procmail deliver
    /// `X-IMAPbase`, `X-UID`, `Status`, `X-Status` and `X-Keywords` as the sender wrote
    /// them. So:
    /// - the folder's base (UIDVALIDITY, LAST-UID) counts only if it is the UIDVALIDITY
    ///   recorded for this folder when it was first seen (imapd.uidvalidity); another one
    ///   (a forged header on the first mail into an emptied spool, or a program that
    ///   reset the folder) is not believed: the folder gets a new UIDVALIDITY, never a
    ///   UID reused under the old one;
    /// - a message whose X-UID is not in order below LAST-UID is new mail: it gets its
    ///   UID from us, and its flags and keywords are not taken from its headers (unless
    ///   the folder was never seen before: then they are what mutt or UW wrote).
    ///
    /// Ok(false): a base was disbelieved without the write lock. A new UIDVALIDITY is
    /// chosen and recorded only under it (two sessions deciding at once would each pick
    /// one, and then each disbelieve the other's); a writable session gets there next
    /// (new mail to label), a read-only one numbers in memory under a value of its own.
    fn vet_metadata(&mut self) -> Result<bool> {
        let path = self.index_dir.join(PROVISIONAL_FILE);
        let recorded = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
            .filter(|&v| v != 0);
        if let Some(claimed) = self.base().map(|b| b.uidvalidity) {
            match recorded {
                Some(r) if r == claimed => {}
                None => {
                    // First sight: the folder's own base, recorded for later checks.
                    let _ = super::mkdir_private(&self.index_dir)
                        .and_then(|_| write_replacing(&path, format!("{claimed}\n").as_bytes()));
                    self.provisional_uidvalidity = claimed;
                }
                Some(r) => {
                    crate::log::warning(&format!(
                        "mbox {}: X-IMAPbase names UIDVALIDITY {claimed}, not {r} as recorded; \
                         not believed (the folder gets a new UIDVALIDITY)",
                        self.name
                    ));
                    if let Some(mut p) = self.state_mut().pseudo.take() {
                        p.pseudo = false;
                        p.base = None;
                        self.state_mut().msgs.insert(0, p);
                    }
                    if let Some(m) = self.state_mut().msgs.first_mut() {
                        m.base = None;
                    }
                    if self.write_locked {
                        let v = crate::store::uidvalidity::next(&self.counter_dir());
                        write_replacing(&path, format!("{v}\n").as_bytes())
                            .map_err(|e| self.err("write the index directory", e))?;
                        self.provisional_uidvalidity = v;
                    } else if !self.writable {
                        self.provisional_uidvalidity =
                            crate::store::uidvalidity::next(&self.counter_dir());
                    } else {
                        self.clear_flags_of_unlabelled(true);
                        return Ok(false);
                    }
                }
            }
        }
        let seen_before = self.base().is_some() || recorded.is_some();
        self.clear_flags_of_unlabelled(seen_before);
        Ok(true)
    }

    /// Messages without an in-order X-UID are new mail: no flags or keywords from their
    /// headers, unless the folder was never seen before (then they are mutt's or UW's).
    fn clear_flags_of_unlabelled(&mut self, seen_before: bool) {
        if !seen_before {
            return;
        }
        let last = self.base().map_or(0, |b| b.last_uid);
        // Ours are the messages up to the first out of order or above LAST-UID.
        let mut prev = 0;
        let first_not_ours = if last == 0 {
            0
        } else {
            self.state
                .msgs
                .iter()
                .position(|m| {
                    let ours = m.uid > prev && m.uid <= last;
                    prev = m.uid;
                    !ours
                })
                .unwrap_or(self.state.msgs.len())
        };
        let cleared = |m: &MsgRec| m.flags == 0 && m.keywords.is_empty() && m.recent;
        if self.state.msgs[first_not_ours..].iter().all(cleared) {
            return; // nothing to change: a state shared with other sessions stays shared
        }
        for m in &mut self.state_mut().msgs[first_not_ours..] {
            m.flags = 0;
            m.keywords.clear();
            m.recent = true;
        }
    }

    /// Hash of the 4 KiB before `size`.
    fn tail_hash_now_at(&self, size: u64) -> Result<u64> {
        let from = size.saturating_sub(4096);
        let mut buf = vec![0u8; (size - from) as usize];
        self.file
            .read_exact_at(&mut buf, from)
            .map_err(|e| self.err("read mailbox", e))?;
        let mut h = journal::Hasher::default();
        h.update(&buf);
        Ok(h.finish())
    }

    fn load_index(&self, stamp: &Stamp) -> Option<State> {
        let bytes = std::fs::read(self.index_dir.join(index::FILE)).ok()?;
        let st = index::decode(&bytes)?;
        (st.stamp == *stamp).then_some(st)
    }

    /// Take scanned records in (the first of a file may be UW's pseudo-message).
    fn absorb(&mut self, mut msgs: Vec<MsgRec>, first: bool) {
        if first && msgs.first().is_some_and(|m| m.pseudo) {
            self.state_mut().pseudo = Some(msgs.remove(0));
        }
        self.state_mut().msgs.extend(msgs);
    }

    /// The keyword table: the folder's declared keywords, then any others messages use.
    fn learn_keywords(&mut self) {
        let mut table = self.keywords.clone();
        let declared = self.base().map(|b| b.keywords.clone()).unwrap_or_default();
        for k in declared
            .iter()
            .chain(self.state.msgs.iter().flat_map(|m| m.keywords.iter()))
        {
            if table.len() < MAX_KEYWORDS && !table.iter().any(|t| t.eq_ignore_ascii_case(k)) {
                table.push(k.clone());
            }
        }
        self.keywords = table;
    }

    fn keyword_bits(&self, names: &[String]) -> u32 {
        let mut bits = 0;
        for n in names {
            if let Some(i) = self.keywords.iter().position(|k| k.eq_ignore_ascii_case(n)) {
                bits |= 1 << i;
            }
        }
        bits
    }

    fn keyword_names(&self, bits: u32) -> Vec<String> {
        (0..self.keywords.len())
            .filter(|i| bits & (1 << i) != 0)
            .map(|i| self.keywords[i].clone())
            .collect()
    }

    /// The UIDVALIDITY this mbox has until its metadata is written (see the field).
    fn provisional(&mut self) -> Result<u32> {
        if self.provisional_uidvalidity != 0 {
            return Ok(self.provisional_uidvalidity);
        }
        let path = self.index_dir.join(PROVISIONAL_FILE);
        let read = |p: &Path| {
            std::fs::read_to_string(p)
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok())
                .filter(|&v| v != 0)
        };
        let v = match read(&path) {
            Some(v) => v,
            None => {
                // The first session to get here decides (O_EXCL); the others read it.
                let v = crate::store::uidvalidity::next(&self.counter_dir());
                let created = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .and_then(|mut f| f.write_all(format!("{v}\n").as_bytes()));
                match created {
                    Ok(()) => v,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        // Written by another session just now (it may still be writing).
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        read(&path).unwrap_or(v)
                    }
                    Err(e) => return Err(self.err("write the index directory", e)),
                }
            }
        };
        self.provisional_uidvalidity = v;
        Ok(v)
    }

    /// Where the user's UIDVALIDITY counter is: index directories are
    /// `<root>/<mailbox name>`, and the counter sits in `<root>`.
    fn counter_dir(&self) -> PathBuf {
        let levels = Path::new(&self.name).components().count();
        self.index_dir
            .ancestors()
            .nth(levels)
            .unwrap_or(&self.index_dir)
            .to_path_buf()
    }

    /// Bump LAST-UID in the file (10 digits in place) and in memory.
    fn bump_last_uid(&mut self, slot: parse::Slot, last: u32) -> Result<()> {
        self.will_write()?;
        self.file
            .write_all_at(format!("{last:010}").as_bytes(), slot.off)
            .map_err(|e| self.err("write mailbox metadata", e))?;
        let holder = self.base_mut();
        if let Some(b) = holder {
            b.last_uid = last;
        }
        Ok(())
    }

    /// Give new mail its UID and metadata headers (caller holds the write locks).
    fn label(&mut self) -> Result<()> {
        if !self.writable {
            self.label_in_memory();
            return Ok(());
        }
        let (uidvalidity, mut last) = match self.base() {
            Some(b) => (b.uidvalidity, b.last_uid),
            None => {
                let v = self.provisional()?;
                if self.state.msgs.is_empty() {
                    return Ok(());
                }
                (v, 0)
            }
        };
        let fresh = self.base().is_none();
        let mut prev = 0;
        let mut uids = Vec::with_capacity(self.state.msgs.len());
        let mut first_change = None;
        for (i, m) in self.state.msgs.iter().enumerate() {
            let uid = if !fresh && m.uid > prev && m.uid <= last {
                m.uid
            } else {
                last += 1;
                last
            };
            if (uid != m.uid || (m.recent && !self.readonly)) && first_change.is_none() {
                first_change = Some(i);
            }
            uids.push(uid);
            prev = uid;
        }
        let Some(from) = first_change else {
            return Ok(());
        };
        if last == u32::MAX {
            return Err(StoreError::Corrupt(format!(
                "mbox {}: UIDs exhausted; needs a new UIDVALIDITY",
                self.name
            )));
        }
        for (m, &uid) in self.state.msgs.iter().zip(&uids).skip(from) {
            if m.recent && !self.readonly {
                self.recent.insert(uid);
            }
        }
        let base = Base {
            uidvalidity,
            last_uid: last,
            keywords: self.keywords.clone(),
            ..Default::default()
        };
        let slot = self.base().and_then(|b| b.last_uid_slot);
        let with_base = fresh || slot.is_none() || (from == 0 && self.state.pseudo.is_none());
        if !with_base {
            // LAST-UID first: a crash before the rewrite wastes UIDs, never reuses one.
            self.bump_last_uid(slot.expect("checked"), last)?;
        }
        let mut new_uids = uids.into_iter();
        let metas: Vec<Option<(u32, u8, Vec<String>)>> = self
            .state
            .msgs
            .iter()
            .map(|m| {
                Some((
                    new_uids.next().expect("one per message"),
                    m.flags,
                    m.keywords.clone(),
                ))
            })
            .collect();
        self.rewrite(from, with_base.then_some(base), &metas)?;
        if self.unlabelled() {
            // What was written does not parse back as written: never loop relabelling.
            crate::log::error(&format!(
                "mbox {}: metadata written at labelling did not read back; check the file",
                self.name
            ));
            self.label_in_memory();
        }
        Ok(())
    }

    /// Every message's metadata as it stands, for a rewrite that expunges nothing.
    fn current_metas(&self) -> Vec<Option<(u32, u8, Vec<String>)>> {
        self.state
            .msgs
            .iter()
            .map(|m| Some((m.uid, m.flags, m.keywords.clone())))
            .collect()
    }

    /// Rewrite the file from message `from` (or from its metadata holder, with `base`),
    /// giving each message the metadata in `metas` (None: expunged).
    fn rewrite(
        &mut self,
        from: usize,
        base: Option<Base>,
        metas: &[Option<(u32, u8, Vec<String>)>],
    ) -> Result<()> {
        let mut base = base;
        let from = if base.is_some() { 0 } else { from };
        if from == 0 && base.is_none() && self.state.pseudo.is_none() {
            // The first message carries X-IMAPbase: it goes along.
            base = self.base().cloned();
        }
        let pseudo_off = self.state.pseudo.as_ref().map(|p| p.from_off);
        let rewrite_pseudo = base.is_some() && pseudo_off.is_some();
        let start = match (rewrite_pseudo, self.state.msgs.get(from)) {
            (true, _) => pseudo_off.expect("checked"),
            (false, Some(m)) => m.from_off,
            (false, None) => return Ok(()),
        };
        let old_len = self.state.stamp.size;
        self.will_write()?;
        let mut rw = Rewrite::begin(&self.journal_path(), start, old_len)
            .map_err(|e| self.err("start rewriting mailbox", e))?;
        let result = (|| -> io::Result<()> {
            let mut out = Vec::new();
            let mut base_here = base.clone();
            let keeps_any = metas.iter().skip(from).any(Option::is_some);
            if rewrite_pseudo || (!keeps_any && base_here.is_some()) {
                // UW's pseudo-message keeps UIDVALIDITY and LAST-UID in a folder that has
                // no message left to carry them (a POP3 user empties INBOX every day).
                let b = base_here.take().expect("checked");
                rw.write(&write::pseudo_message(&b, now()))?;
            }
            for (m, meta) in self.state.msgs.iter().zip(metas).skip(from) {
                let Some((uid, flags, keywords)) = meta else {
                    continue;
                };
                let mut raw = vec![0u8; (m.end - m.from_off) as usize];
                self.file.read_exact_at(&mut raw, m.from_off)?;
                out.clear();
                write::rewrite_message(
                    &raw,
                    m,
                    &Meta {
                        uid: *uid,
                        flags: *flags,
                        keywords,
                        // Only a read-write session claims \Recent (see with_read_lock).
                        recent: m.recent && self.readonly,
                    },
                    base_here.take().as_ref(),
                    &mut out,
                );
                rw.write(&out)?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            rw.abandon();
            return Err(self.err("rewrite mailbox", e));
        }
        rw.commit(&self.file)
            .map_err(|e| self.err("rewrite mailbox", e))?;
        // What is now on disk from `start` on: parse it again.
        let first = from == 0 && (base.is_some() || self.state.pseudo.is_none());
        if first {
            self.state_mut().pseudo = None;
        }
        self.state_mut().msgs.truncate(from);
        let scan =
            Scanner::scan(&self.file, start, first).map_err(|e| self.err("read mailbox", e))?;
        self.absorb(scan.msgs, first);
        self.index_dirty = true;
        self.after_write()
    }

    /// Remove these messages (only those \Deleted in the file now, if `only_deleted`),
    /// by one rewrite from the first; messages already gone are skipped.
    fn remove_messages(&mut self, indexes: &[usize], only_deleted: bool) -> Result<()> {
        if self.readonly {
            return Err(StoreError::ReadOnly);
        }
        self.apply_pending()?;
        let wanted: HashSet<Uid> = indexes
            .iter()
            .filter(|&&i| !self.view.entries[i].expunged)
            .map(|&i| self.view.entries[i].uid)
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let gone = self.with_write_lock(|s| s.remove_uids_locked(&wanted, only_deleted))?;
        for e in self.view.entries.iter_mut() {
            if gone.contains(&e.uid) {
                e.expunged = true;
            }
        }
        Ok(())
    }

    /// Under the write lock: remove the messages with these UIDs (only those \Deleted
    /// in the file now, if `only_deleted`) by one rewrite from the first; the UIDs gone.
    fn remove_uids_locked(
        &mut self,
        wanted: &HashSet<Uid>,
        only_deleted: bool,
    ) -> Result<HashSet<Uid>> {
        let gone: HashSet<Uid> = self
            .state
            .msgs
            .iter()
            .filter(|m| wanted.contains(&m.uid))
            .filter(|m| !only_deleted || m.flags & Flags::DELETED != 0)
            .map(|m| m.uid)
            .collect();
        let Some(from) = self.state.msgs.iter().position(|m| gone.contains(&m.uid)) else {
            return Ok(gone);
        };
        let metas: Vec<_> = self
            .state
            .msgs
            .iter()
            .map(|m| (!gone.contains(&m.uid)).then(|| (m.uid, m.flags, m.keywords.clone())))
            .collect();
        self.rewrite(from, None, &metas)?;
        Ok(gone)
    }

    /// Under the write lock: undo the copies into this mailbox whose process died (see
    /// `store::undo`); their records name UIDs under a UIDVALIDITY.
    fn undo_abandoned_copies_locked(&mut self) -> Result<()> {
        for a in undo::abandoned(&self.index_dir) {
            let (wanted, other_validity) = self.copied_uids(&a.lines);
            crate::log::warning(&format!(
                "{}: undoing an unfinished copy of {} messages{}",
                self.name,
                wanted.len(),
                if other_validity {
                    " (some under an older UIDVALIDITY: those are kept)"
                } else {
                    ""
                }
            ));
            self.remove_uids_locked(&wanted, false)?;
            a.done();
        }
        Ok(())
    }

    /// Take back a copy of ours that failed halfway: the messages `record` names.
    pub fn undo_copy(&mut self, record: &UndoRecord) -> Result<()> {
        let lines = record
            .lines()
            .map_err(|e| self.err("read the undo record", e))?;
        self.with_write_lock(|s| {
            let (wanted, _) = s.copied_uids(&lines);
            s.remove_uids_locked(&wanted, false).map(|_| ())
        })
    }

    /// An undo record's line for a message a copy is about to append.
    pub fn copy_record_line(uidvalidity: u32, uid: Uid) -> String {
        format!("{uidvalidity} {uid}")
    }

    /// The UIDs an undo record names under this mailbox's UIDVALIDITY now, and whether
    /// it named others (numbered again since: those UIDs mean other messages now).
    fn copied_uids(&self, lines: &[String]) -> (HashSet<Uid>, bool) {
        let validity = self.base().map(|b| b.uidvalidity);
        let mut wanted = HashSet::new();
        let mut other_validity = false;
        for line in lines {
            let mut it = line.split(' ').map(str::parse::<u32>);
            if let (Some(Ok(v)), Some(Ok(uid))) = (it.next(), it.next()) {
                if Some(v) == validity {
                    wanted.insert(uid);
                } else {
                    other_validity = true;
                }
            }
        }
        (wanted, other_validity)
    }

    /// The records as view entries (sorted by UID: file order is UID order).
    fn entries(&self) -> Vec<Entry> {
        self.state
            .msgs
            .iter()
            .map(|m| {
                let flags = Flags {
                    system: m.flags,
                    keywords: self.keyword_bits(&m.keywords),
                };
                let locator = crate::store::view::no_locator();
                let mut e = Entry::new(m.uid, flags, locator);
                e.recent = self.recent.contains(&m.uid) || (self.readonly && m.recent);
                e
            })
            .collect()
    }

    fn find(&self, uid: Uid) -> Option<usize> {
        self.state.msgs.binary_search_by_key(&uid, |m| m.uid).ok()
    }

    /// The parsed record of the view's message `index` (its size, date and line end
    /// are kept there once for every session, not in each view); Expunged once the
    /// file no longer holds it.
    fn parsed(&self, index: usize) -> Result<&MsgRec> {
        let e = &self.view.entries[index];
        if e.expunged {
            return Err(StoreError::Expunged);
        }
        let i = self.find(e.uid).ok_or(StoreError::Expunged)?;
        Ok(&self.state.msgs[i])
    }

    /// RFC822.SIZE of every message in the view (STATUS SIZE).
    pub fn total_size(&self) -> u64 {
        (0..self.view.len())
            .filter_map(|i| self.parsed(i).ok())
            .map(|m| m.vsize)
            .sum()
    }

    /// Write the flag changes collected so far.
    fn apply_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let applied = match self.apply_in_place(&pending) {
            Ok(Some(results)) => Ok(results),
            Ok(None) => self.apply_with_rewrite(&pending),
            Err(e) => Err(e),
        };
        let results = match applied {
            Ok(r) => r,
            Err(e) => {
                // Kept to be written at the next flush (a lock another program holds,
                // a full disk): a change applied twice is one change.
                self.pending = pending;
                return Err(e);
            }
        };
        // The view holds what was written (the next sync reports nothing twice), and
        // knows which are gone (its EXPUNGE comes at the next sync that may report it).
        for (uid, flags) in results {
            if let Some(i) = self.view.index_of_uid(uid) {
                match flags {
                    Some(f) => self.view.entries[i].flags = f,
                    None => self.view.entries[i].expunged = true,
                }
            }
        }
        Ok(())
    }

    /// Each change applied to the flags in the file now (the caller holds a write lock
    /// and has reloaded): the result per UID (None: expunged meanwhile), and the
    /// messages whose metadata must change.
    #[allow(clippy::type_complexity)]
    fn plan_flags(
        &self,
        pending: &BTreeMap<Uid, FlagChange>,
    ) -> (Vec<(Uid, Option<Flags>)>, Vec<(usize, u8, Vec<String>)>) {
        let mut changed = Vec::new();
        let mut results = Vec::new();
        for (&uid, change) in pending {
            let Some(i) = self.find(uid) else {
                results.push((uid, None)); // expunged by another session meanwhile
                continue;
            };
            let m = &self.state.msgs[i];
            let old = Flags {
                system: m.flags,
                keywords: self.keyword_bits(&m.keywords),
            };
            let mut new = change.apply(old);
            new.system &= !Flags::PASSED;
            results.push((uid, Some(new)));
            let names = self.keyword_names(new.keywords);
            if m.flags != new.system || m.keywords != names {
                changed.push((i, new.system, names));
            }
        }
        (results, changed)
    }

    /// The common case: flag changes that fit the padded headers, written in place under
    /// the fcntl write lock alone. The dot-lock is what an MDA (procmail, Postfix) waits
    /// for: taking it for every STORE kept procmail out of a busy INBOX (19 deliveries a
    /// minute beside ten sessions). Everyone who writes takes the fcntl lock too, so an
    /// in-place write excludes them all the same. None: the change needs more (new mail
    /// to label, a journal to finish, a keyword to declare without room, a header
    /// without room), and the caller takes the full path; what was written here by
    /// then is written again the same way (a flag change applied twice is one change).
    #[allow(clippy::type_complexity)]
    fn apply_in_place(
        &mut self,
        pending: &BTreeMap<Uid, FlagChange>,
    ) -> Result<Option<Vec<(Uid, Option<Flags>)>>> {
        if self.journal_path().exists() {
            return Ok(None);
        }
        let handle = self.current_handle()?;
        let _w =
            RangeLock::write(&handle, Holders::Anyone).map_err(|e| self.err("lock mailbox", e))?;
        self.generation_bumped = false;
        self.reload()?;
        if self.unlabelled() || self.state.msgs.is_empty() {
            return Ok(None);
        }
        let (results, changed) = self.plan_flags(pending);
        if changed.is_empty() {
            return Ok(Some(results));
        }
        let used: Vec<String> = changed.iter().flat_map(|c| c.2.iter().cloned()).collect();
        let declared = self.base().map(|b| b.keywords.clone()).unwrap_or_default();
        if used
            .iter()
            .any(|k| !declared.iter().any(|d| d.eq_ignore_ascii_case(k)))
        {
            return Ok(None); // X-IMAPbase must learn it: the full path
        }
        self.will_write()?;
        let mut done = 0;
        for (i, flags, names) in &changed {
            if !self.write_in_place(*i, *flags, names)? {
                break;
            }
            done += 1;
        }
        for (i, flags, names) in changed.iter().take(done) {
            let m = &mut self.state_mut().msgs[*i];
            m.flags = *flags;
            m.keywords = names.clone();
        }
        self.after_write()?;
        Ok((done == changed.len()).then_some(results))
    }

    /// Flag changes under both locks, rewriting the file from the first message whose
    /// header has no room (and declaring new keywords in X-IMAPbase).
    fn apply_with_rewrite(
        &mut self,
        pending: &BTreeMap<Uid, FlagChange>,
    ) -> Result<Vec<(Uid, Option<Flags>)>> {
        self.with_write_lock(|s| {
            let mut rewrite_from: Option<usize> = None;
            // Each change applies to the flags in the file now (just reloaded).
            let (results, changed) = s.plan_flags(pending);
            if !changed.is_empty() {
                s.will_write()?;
            }
            let used: Vec<String> = changed.iter().flat_map(|c| c.2.iter().cloned()).collect();
            let new_base = s.declare_keywords(&used)?;
            if new_base.is_some() {
                rewrite_from = Some(0);
            }
            for (i, flags, names) in &changed {
                if rewrite_from.is_some_and(|r| r <= *i) {
                    continue;
                }
                if !s.write_in_place(*i, *flags, names)? {
                    rewrite_from = Some(rewrite_from.map_or(*i, |r| r.min(*i)));
                }
            }
            for (i, flags, names) in changed {
                let m = &mut s.state_mut().msgs[i];
                m.flags = flags;
                m.keywords = names;
            }
            if let Some(from) = rewrite_from {
                let metas = s.current_metas();
                s.rewrite(from, new_base, &metas)?;
            }
            Ok(results)
        })
    }

    /// Dovecot knows a message's keyword only if the folder's X-IMAPbase lists it: add
    /// the missing ones, in place if the padded list has room. Ok(Some(base)): no room,
    /// the caller must rewrite from the start with that base.
    fn declare_keywords(&mut self, names: &[String]) -> Result<Option<Base>> {
        let Some(b) = self.base() else {
            return Ok(None); // no metadata yet: the labelling rewrite declares them all
        };
        let missing: Vec<String> = names
            .iter()
            .filter(|n| !b.keywords.iter().any(|k| k.eq_ignore_ascii_case(n)))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(None);
        }
        let mut updated = b.clone();
        updated.keywords.extend(missing);
        let text = write::keywords_text(&updated.keywords);
        if let Some(slot) = b.keywords_slot {
            if let Some(v) = write::padded(&text, slot.cap as usize) {
                self.will_write()?;
                self.file
                    .write_all_at(&v, slot.off)
                    .map_err(|e| self.err("write mailbox metadata", e))?;
                let holder = self.base_mut();
                if let Some(h) = holder {
                    h.keywords = updated.keywords;
                }
                return Ok(None);
            }
        }
        updated.last_uid_slot = None;
        updated.keywords_slot = None;
        Ok(Some(updated))
    }

    /// Overwrite Status, X-Status and X-Keywords of message `i` in place, if they are
    /// there and wide enough. Same-length pwrites: a crash leaves old or new values.
    fn write_in_place(&self, i: usize, flags: u8, keywords: &[String]) -> Result<bool> {
        let m = &self.state.msgs[i];
        let mut writes: Vec<(u64, Vec<u8>)> = Vec::new();
        let plan = |slot: Option<parse::Slot>,
                    value: Vec<u8>,
                    needed: bool|
         -> Option<Option<(u64, Vec<u8>)>> {
            match slot {
                Some(s) => write::padded(&value, s.cap as usize).map(|v| Some((s.off, v))),
                None if needed => None,
                None => Some(None),
            }
        };
        let letters = write::xstatus_letters(flags);
        let kw = write::keywords_text(keywords);
        let steps = [
            plan(m.status_slot, write::status_value(flags, false), true),
            plan(m.xstatus_slot, letters.clone(), letters.len() > 1),
            plan(m.keywords_slot, kw.clone(), !kw.is_empty()),
        ];
        for s in steps {
            match s {
                None => return Ok(false),
                Some(Some(w)) => writes.push(w),
                Some(None) => {}
            }
        }
        for (off, v) in writes {
            self.file
                .write_all_at(&v, off)
                .map_err(|e| self.err("store flags", e))?;
        }
        Ok(true)
    }

    /// The served bytes of message `i` (caller holds a lock) into `out`.
    fn copy_served(&self, i: usize, out: &mut dyn io::Write) -> io::Result<()> {
        let m = &self.state.msgs[i];
        let mut header = vec![0u8; (m.body_off - m.hdr_off) as usize];
        self.file.read_exact_at(&mut header, m.hdr_off)?;
        out.write_all(&parse::served_header(&header, m.cl_framed))?;
        // The body as stored (mboxo: `>From ` lines are the message's own bytes).
        let mut pos = m.body_off;
        let mut buf = vec![0u8; (m.end - m.body_off).min(1 << 16) as usize];
        while pos < m.end {
            let n = ((m.end - pos) as usize).min(buf.len());
            self.file.read_exact_at(&mut buf[..n], pos)?;
            pos += n as u64;
            out.write_all(&buf[..n])?;
        }
        Ok(())
    }

    fn with_message<T>(
        &mut self,
        index: usize,
        f: impl FnOnce(&Self, usize) -> io::Result<T>,
    ) -> Result<T> {
        let e = &self.view.entries[index];
        if e.expunged {
            return Err(StoreError::Expunged);
        }
        let uid = e.uid;
        self.with_read_lock(|s| {
            let i = s.find(uid).ok_or(StoreError::Expunged)?;
            f(s, i).map_err(|e| s.err("read message", e))
        })
    }

    pub fn write_index(&mut self) {
        if !self.index_dirty {
            return;
        }
        let tmp = self.index_dir.join(format!(
            "{}.{}.tmp",
            index::FILE,
            crate::store::maildir::filename::unique("w")
        ));
        let ok = std::fs::write(&tmp, index::encode(&self.state))
            .and_then(|_| std::fs::rename(&tmp, self.index_dir.join(index::FILE)));
        if ok.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        self.index_dirty = false;
    }

    /// Add a message at the end (APPEND, COPY): `message` as the client sent it.
    pub fn append(
        &mut self,
        message: &[u8],
        flags: Flags,
        keywords: &[String],
        date: i64,
    ) -> Result<(u32, Uid)> {
        self.append_from(&mut &message[..], flags, keywords, date)
    }

    /// `append` of a message read from `message` a piece at a time (APPEND's spooled
    /// copy): only its header is held in memory.
    pub fn append_from(
        &mut self,
        message: &mut dyn Read,
        flags: Flags,
        keywords: &[String],
        date: i64,
    ) -> Result<(u32, Uid)> {
        self.append_noting(message, flags, keywords, date, &mut |_, _| Ok(()))
    }

    /// `append_from`, telling `note` the (UIDVALIDITY, UID) the message will have before
    /// it is written (a copy's undo record names it first).
    pub fn append_noting(
        &mut self,
        message: &mut dyn Read,
        flags: Flags,
        keywords: &[String],
        date: i64,
        note: &mut dyn FnMut(u32, Uid) -> io::Result<()>,
    ) -> Result<(u32, Uid)> {
        if !self.writable {
            return Err(StoreError::ReadOnly);
        }
        self.with_write_lock(|s| s.append_locked(message, flags, keywords, date, note))
    }

    /// Several messages (a COPY's batch) under one holding of the locks: a lock another
    /// program holds is met before the first is written (`Locked`: none stored), never
    /// between two. Each one's (UIDVALIDITY, UID).
    pub fn append_batch(
        &mut self,
        messages: Vec<NewMessage>,
        note: &mut dyn FnMut(u32, Uid) -> io::Result<()>,
    ) -> Result<Vec<(u32, Uid)>> {
        if !self.writable {
            return Err(StoreError::ReadOnly);
        }
        self.with_write_lock(|s| {
            let mut stored = Vec::with_capacity(messages.len());
            for m in messages {
                let date = m.date.unwrap_or_else(crate::util::date::now);
                let mut reader: Box<dyn Read> = match m.content {
                    Content::Bytes(data) => Box::new(io::Cursor::new(data)),
                    Content::File { file, .. } => Box::new(file),
                };
                stored.push(s.append_locked(&mut reader, m.flags, &m.keywords, date, note)?);
            }
            Ok(stored)
        })
    }

    /// One message added at the end, under the write locks.
    fn append_locked(
        &mut self,
        message: &mut dyn Read,
        flags: Flags,
        keywords: &[String],
        date: i64,
        note: &mut dyn FnMut(u32, Uid) -> io::Result<()>,
    ) -> Result<(u32, Uid)> {
        let mut names = Vec::new();
        for k in keywords {
            if !self.keywords.iter().any(|t| t.eq_ignore_ascii_case(k)) {
                if self.keywords.len() >= MAX_KEYWORDS {
                    return Err(StoreError::TooManyKeywords);
                }
                self.keywords.push(k.clone());
            }
            names.push(k.clone());
        }
        if let Some(base) = self.declare_keywords(&names)? {
            let metas = self.current_metas();
            self.rewrite(0, Some(base), &metas)?;
        }
        let (uidvalidity, last, slot) = match self.base() {
            Some(b) => (b.uidvalidity, b.last_uid, b.last_uid_slot),
            None => (self.provisional()?, 0, None),
        };
        let uid = last
            .checked_add(1)
            .ok_or_else(|| StoreError::Corrupt(format!("mbox {}: UIDs exhausted", self.name)))?;
        note(uidvalidity, uid).map_err(|e| self.err("record a copy", e))?;
        let first = self.state.msgs.is_empty() && self.state.pseudo.is_none();
        if !first {
            let Some(slot) = slot else {
                // Metadata without a 10-wide LAST-UID (hand-edited): renumbering would
                // be needed; refuse rather than risk reusing a UID.
                return Err(StoreError::Corrupt(format!(
                    "mbox {}: X-IMAPbase LAST-UID not in the 10-digit form",
                    self.name
                )));
            };
            self.bump_last_uid(slot, uid)?;
        }
        let base = first.then(|| Base {
            uidvalidity,
            last_uid: uid,
            keywords: self.keywords.clone(),
            ..Default::default()
        });
        let mut payload = Vec::with_capacity(512);
        let size = self.state.stamp.size;
        // The file must end with an empty line before a new From line.
        let mut tail = [0u8; 2];
        let tail_len = size.min(2) as usize;
        self.file
            .read_exact_at(&mut tail[..tail_len], size - tail_len as u64)
            .map_err(|e| self.err("read mailbox", e))?;
        match &tail[..tail_len] {
            [] | [b'\n', b'\n'] => {}
            [b'\n'] | [_, b'\n'] => payload.push(b'\n'),
            _ => payload.extend_from_slice(b"\n\n"),
        }
        let meta = Meta {
            uid,
            flags: flags.system & !Flags::PASSED,
            keywords: &names,
            recent: true,
        };
        let mut rw = Rewrite::begin(&self.journal_path(), size, size)
            .map_err(|e| self.err("append message", e))?;
        let written = rw.write(&payload).and_then(|_| {
            write::new_message_streamed(message, date, &meta, base.as_ref(), &mut |piece| {
                rw.write(piece)
            })
        });
        if let Err(e) = written {
            rw.abandon();
            return Err(self.err("append message", e));
        }
        rw.commit(&self.file)
            .map_err(|e| self.err("append message", e))?;
        // Parse the new message in like delivered mail.
        self.reload()?;
        Ok((uidvalidity, uid))
    }
}

impl Mailbox for MboxFolder {
    fn name(&self) -> &str {
        &self.name
    }
    fn uidvalidity(&self) -> u32 {
        self.base()
            .map_or(self.provisional_uidvalidity, |b| b.uidvalidity)
    }
    fn uidnext(&self) -> u32 {
        self.base().map_or(1, |b| b.last_uid.saturating_add(1))
    }
    fn readonly(&self) -> bool {
        self.readonly
    }
    fn view(&self) -> &View {
        &self.view
    }
    fn keywords(&self) -> &[String] {
        &self.keywords
    }

    fn keyword_index(&mut self, name: &str) -> Result<usize> {
        if let Some(i) = self
            .keywords
            .iter()
            .position(|k| k.eq_ignore_ascii_case(name))
        {
            return Ok(i);
        }
        if self.keywords.len() >= MAX_KEYWORDS {
            return Err(StoreError::TooManyKeywords);
        }
        self.keywords.push(name.to_string());
        Ok(self.keywords.len() - 1)
    }

    fn sync(&mut self, report_expunges: bool) -> Result<Vec<Update>> {
        match self.apply_pending().and_then(|()| self.refresh()) {
            Ok(()) => {}
            Err(StoreError::Locked { .. }) => return Ok(self.view.nothing_new(report_expunges)),
            Err(e) => return Err(e),
        }
        if self.state.stamp == self.view_stamp {
            return Ok(self.view.nothing_new(report_expunges));
        }
        let scan = self.entries();
        self.view_stamp = self.state.stamp;
        let (updates, skipped) = self.view.apply(scan, report_expunges);
        if skipped > 0 {
            crate::log::warning(&format!(
                "{skipped} message(s) in {} got UIDs below ones already shown",
                self.name
            ));
        }
        Ok(updates)
    }

    fn read(&mut self, index: usize) -> Result<Vec<u8>> {
        let cap = self.parsed(index)?.vsize as usize;
        self.with_message(index, |s, i| {
            let mut out = Vec::with_capacity(cap);
            s.copy_served(i, &mut out)?;
            Ok(out)
        })
    }

    fn open_message(&mut self, index: usize) -> Result<Box<dyn crate::store::MessageReader>> {
        if self.parsed(index)?.vsize <= IN_MEMORY {
            return Ok(Box::new(io::Cursor::new(self.read(index)?)));
        }
        let dir = self.index_dir.clone();
        self.with_message(index, |s, i| {
            let mut tmp = private_temp(&dir)?;
            {
                let mut w = io::BufWriter::with_capacity(1 << 16, &mut tmp);
                s.copy_served(i, &mut w)?;
                w.flush()?;
            }
            tmp.rewind()?;
            Ok(Box::new(tmp) as Box<dyn crate::store::MessageReader>)
        })
    }

    fn size(&mut self, index: usize) -> Result<u64> {
        Ok(self.parsed(index)?.vsize)
    }

    fn ends_with_newline(&mut self, index: usize) -> Result<bool> {
        // The parse notes each message's last line end.
        Ok(self.parsed(index)?.terminated)
    }

    fn internal_date(&mut self, index: usize) -> Result<i64> {
        Ok(self.parsed(index)?.internal_date)
    }

    fn change_flags(&mut self, index: usize, change: FlagChange) -> Result<()> {
        if self.readonly {
            return Err(StoreError::ReadOnly);
        }
        let e = &mut self.view.entries[index];
        if e.expunged {
            return Err(StoreError::Expunged);
        }
        // Written at `commit`, onto the flags the file has then; until then the view
        // shows the change on what this session knew.
        e.flags = change.apply(e.flags);
        e.flags.system &= !Flags::PASSED;
        let uid = e.uid;
        let merged = match self.pending.get(&uid) {
            Some(earlier) => earlier.then(change),
            None => change,
        };
        self.pending.insert(uid, merged);
        Ok(())
    }

    fn expunge(&mut self, indexes: &[usize]) -> Result<()> {
        self.remove_messages(indexes, false)
    }

    fn expunge_deleted(&mut self, candidates: &[usize]) -> Result<()> {
        self.remove_messages(candidates, true)
    }

    fn commit(&mut self) -> Result<()> {
        self.apply_pending()
    }

    fn flush(&mut self) {
        match self.apply_pending() {
            Ok(()) => {}
            // Written at the next flush, at the latest when the session lets go of it.
            Err(StoreError::Locked { .. }) => {}
            Err(e) => crate::log::error(&format!("mbox {}: flags not written: {e}", self.name)),
        }
        self.write_index();
    }
}

impl Drop for MboxFolder {
    fn drop(&mut self) {
        // No later step to try again from: flag changes still pending wait for a lock
        // another program holds (rare: every command's end tried to write them).
        crate::store::filelock::patiently(|| self.flush());
    }
}

/// An unnamed file only this process can see (O_TMPFILE), or a created-and-unlinked one.
fn private_temp(dir: &Path) -> io::Result<File> {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
    {
        Ok(f) => Ok(f),
        Err(_) => {
            let p = dir.join(format!(
                "imapd.tmp.{}",
                crate::store::maildir::filename::unique("t")
            ));
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&p)?;
            std::fs::remove_file(&p)?;
            Ok(f)
        }
    }
}

use std::os::unix::fs::DirBuilderExt;

/// Write a small file whole, in place of the old one (a new file renamed over it).
fn write_replacing(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::fuzz::{Rng, mutate, rounds};

    const CORPUS: [&[u8]; 4] = [
        b"From a@b Mon Nov 23 10:00:00 2026\nSubject: one\n\nbody\n>From x\n\nFrom b@c Mon Nov 23 10:01:00 2026\nSubject: two\nStatus: RO\nX-UID: 9\n\ntwo\n\n",
        b"From MAILER-DAEMON Mon Nov 23 09:00:00 2026\nSubject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\nX-IMAP: 1111111111 0000000010 $Work\n\ntext\n\nFrom d@e Mon Nov 23 09:10:00 2026\nStatus: RO\nX-Status: AF\nX-Keywords: $Work\nX-UID: 3\n\nbody\n\n",
        b"From f Mon Nov 23 08:00:00 2026\r\nX-IMAPbase: 1222222222 0000000021\r\nContent-Length: 11\r\n\r\nbody\r\nFrom\r\n\r\nFrom g Mon Nov 23 08:05:00 2026\r\nX-UID: 21\r\n\r\nx",
        b"junk before\nFrom h Mon Nov 23 08:00:00 2026\nX-UID: 4294967295\nX-Keywords: a,b c\n\n\n\nFrom i Mon Nov 23 08:00:00 2026\n",
    ];

    /// Damaged and hostile mbox files: opening, reading, flagging and expunging never
    /// panic, and what is not expunged is still there afterwards, once.
    #[test]
    fn fuzzed_mboxes_keep_their_messages() {
        let dir = std::env::temp_dir().join(format!("mbox-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for round in 0..rounds(300) {
            let mut data = CORPUS[rng.below(CORPUS.len())].to_vec();
            for _ in 0..rng.below(4) {
                data.extend_from_slice(CORPUS[rng.below(CORPUS.len())]);
            }
            for _ in 0..1 + rng.below(6) {
                mutate(&mut data, &mut rng, b"From >\n\r:XU-IMAPbase0123456789 ");
            }
            let path = dir.join(format!("box{round}"));
            let index = dir.join(format!("idx{round}"));
            std::fs::write(&path, &data).unwrap();
            let Ok(mut f) = MboxFolder::open("INBOX", path.clone(), index.clone(), false) else {
                continue;
            };
            let n = f.view().len();
            for i in 0..n {
                let body = f.read(i).unwrap_or_else(|e| {
                    panic!(
                        "round {round} read {i}: {e} view {:?} state {:?} in {:?}",
                        f.view()
                            .entries
                            .iter()
                            .map(|e| (e.uid, e.expunged))
                            .collect::<Vec<_>>(),
                        f.state.msgs.iter().map(|m| m.uid).collect::<Vec<_>>(),
                        String::from_utf8_lossy(&std::fs::read(&path).unwrap())
                    )
                });
                assert_eq!(
                    body.len() as u64 + body.iter().filter(|&&c| c == b'\n').count() as u64
                        - body.windows(2).filter(|w| w == b"\r\n").count() as u64,
                    f.size(i).unwrap(),
                    "round {round} message {i}"
                );
                let mut flags = f.view().entries[i].flags;
                flags.system ^= 1 << rng.below(5);
                let _ = f.keyword_index("$Fuzz");
                flags.keywords |= 1 << f.keyword_index("$Fuzz").unwrap();
                f.change_flags(i, FlagChange::replace(flags)).unwrap();
            }
            f.flush();
            let gone: Vec<usize> = (0..n).filter(|_| rng.below(3) == 0).collect();
            f.expunge(&gone).unwrap();
            let uids: Vec<Uid> = (0..n)
                .filter(|i| !gone.contains(i))
                .map(|i| f.view().entries[i].uid)
                .collect();
            drop(f);
            let _ = std::fs::remove_dir_all(&index);
            let again = MboxFolder::open("INBOX", path, index, true).unwrap();
            let now: Vec<Uid> = again.view().entries.iter().map(|e| e.uid).collect();
            assert_eq!(
                now,
                uids,
                "round {round}: {:?}",
                String::from_utf8_lossy(&data)
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
