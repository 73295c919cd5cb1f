//! A session's view of a mailbox: the sequence of messages it has been told about, and
//! the diff of a fresh scan against it, turned into untagged EXISTS/EXPUNGE/FETCH
//! updates at the points RFC 3501 7.4.1 allows. Shared by every store driver.

use super::Uid;
use super::record::MessageRecord;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64};
use std::sync::{Arc, LazyLock};

/// A driver's shared handle of a message: its name (a Maildir file name) and what
/// reading the message taught (RFC822.SIZE, INTERNALDATE, the line end), held once for
/// every session of the folder in this process, not once per session's view (30,000
/// messages, 20 sessions: 16 bytes a message a session). A message file's bytes and
/// mtime never change under one name, so what one session learns holds for all. One
/// pointer in each view entry. mbox keeps these facts in its shared parsed state and
/// uses no locator.
#[derive(Clone)]
pub struct Locator(Arc<Located>);

struct Located {
    name: Box<str>,
    /// u64::MAX until known.
    vsize: AtomicU64,
    /// i64::MIN until known.
    internal_date: AtomicI64,
    /// 0 unknown, 1 no, 2 yes.
    terminated: AtomicU8,
}

impl Locator {
    pub fn new(name: &str) -> Locator {
        Locator(Arc::new(Located {
            name: name.into(),
            vsize: AtomicU64::new(u64::MAX),
            internal_date: AtomicI64::new(i64::MIN),
            terminated: AtomicU8::new(0),
        }))
    }

    /// How many hold it (the folder's table of names counts as one).
    pub fn holders(this: &Locator) -> usize {
        Arc::strong_count(&this.0)
    }

    pub fn same(a: &Locator, b: &Locator) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    /// RFC822.SIZE, if learnt.
    pub fn vsize(&self) -> Option<u64> {
        let v = self.0.vsize.load(Relaxed);
        (v != u64::MAX).then_some(v)
    }

    /// INTERNALDATE, if learnt.
    pub fn internal_date(&self) -> Option<i64> {
        let d = self.0.internal_date.load(Relaxed);
        (d != i64::MIN).then_some(d)
    }

    /// Does the message end with a line end (POP3 adds a CRLF when it does not)?
    pub fn terminated(&self) -> Option<bool> {
        match self.0.terminated.load(Relaxed) {
            0 => None,
            t => Some(t == 2),
        }
    }

    /// Keep what is not known yet of what `found` knows (what is known already stays;
    /// its uid is not looked at). Sessions learning at once agree: the facts are the
    /// file's.
    pub fn learn(&self, found: &MessageRecord) {
        let f = &self.0;
        if let Some(v) = found.vsize {
            let _ = f
                .vsize
                .compare_exchange(u64::MAX, v.min(u64::MAX - 1), Relaxed, Relaxed);
        }
        if let Some(d) = found.internal_date {
            let _ =
                f.internal_date
                    .compare_exchange(i64::MIN, d.max(i64::MIN + 1), Relaxed, Relaxed);
        }
        if let Some(t) = found.terminated {
            let _ = f
                .terminated
                .compare_exchange(0, 1 + t as u8, Relaxed, Relaxed);
        }
    }

    /// What the stores' caches keep of the message `uid` it locates (`store::record`).
    pub fn record(&self, uid: Uid) -> MessageRecord {
        MessageRecord {
            uid,
            vsize: self.vsize(),
            internal_date: self.internal_date(),
            terminated: self.terminated(),
        }
    }
}

// Found by name in the folder's table of names.
impl PartialEq for Locator {
    fn eq(&self, other: &Locator) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for Locator {}

impl std::hash::Hash for Locator {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.0.name.hash(h)
    }
}

impl std::ops::Deref for Locator {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0.name
    }
}

impl std::borrow::Borrow<str> for Locator {
    fn borrow(&self) -> &str {
        &self.0.name
    }
}

impl std::fmt::Debug for Locator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0.name, f)
    }
}

impl std::fmt::Display for Locator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.name)
    }
}

/// The locator of a driver that needs none (mbox finds a message by its offsets and
/// keeps its facts in its parsed state): nothing is learnt into it.
pub fn no_locator() -> Locator {
    static EMPTY: LazyLock<Locator> = LazyLock::new(|| Locator::new(""));
    EMPTY.clone()
}

/// System flags as bits, keywords as bits indexing the mailbox's keyword table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags {
    pub system: u8,
    pub keywords: u32,
}

impl Flags {
    pub const SEEN: u8 = 1;
    pub const ANSWERED: u8 = 2;
    pub const FLAGGED: u8 = 4;
    pub const DELETED: u8 = 8;
    pub const DRAFT: u8 = 16;
    /// Maildir's P (passed/forwarded): kept, not an IMAP flag.
    pub const PASSED: u8 = 32;

    pub fn has(&self, bit: u8) -> bool {
        self.system & bit != 0
    }
}

/// A change to a message's flags, applied to the flags as they are in the store at that
/// moment, not as a session last saw them (RFC 3501 6.4.6: `+FLAGS` adds to what is
/// there; another session's change in between survives). new = (old & keep) | add.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlagChange {
    keep: Flags,
    add: Flags,
}

impl FlagChange {
    /// `FLAGS (...)`: these and no others (Maildir's P, not an IMAP flag, stays).
    pub fn replace(flags: Flags) -> Self {
        FlagChange {
            keep: Flags {
                system: Flags::PASSED,
                keywords: 0,
            },
            add: flags,
        }
    }

    /// `+FLAGS (...)`.
    pub fn add(flags: Flags) -> Self {
        FlagChange {
            keep: Flags {
                system: u8::MAX,
                keywords: u32::MAX,
            },
            add: flags,
        }
    }

    /// `-FLAGS (...)`.
    pub fn remove(flags: Flags) -> Self {
        FlagChange {
            keep: Flags {
                system: !flags.system,
                keywords: !flags.keywords,
            },
            add: Flags::default(),
        }
    }

    pub fn apply(&self, old: Flags) -> Flags {
        Flags {
            system: (old.system & self.keep.system) | self.add.system,
            keywords: (old.keywords & self.keep.keywords) | self.add.keywords,
        }
    }

    /// This change, then `next`, as one.
    pub fn then(self, next: FlagChange) -> FlagChange {
        FlagChange {
            keep: Flags {
                system: self.keep.system & next.keep.system,
                keywords: self.keep.keywords & next.keep.keywords,
            },
            add: Flags {
                system: (self.add.system & next.keep.system) | next.add.system,
                keywords: (self.add.keywords & next.keep.keywords) | next.add.keywords,
            },
        }
    }
}

/// One message in the view. A session holds one per message of its folder (30,000
/// messages: 30,000 of these), so it holds what is the session's own (its flags as last
/// told, \Recent, told of an expunge or not) and points at the rest: 24 bytes.
#[derive(Clone, Debug)]
pub struct Entry {
    pub uid: Uid,
    pub flags: Flags,
    pub recent: bool,
    /// Gone from the store, but the session has not been told yet.
    pub expunged: bool,
    /// Driver's handle (a Maildir file name and its facts, shared by the folder's
    /// sessions).
    pub locator: Locator,
}

impl Entry {
    pub fn new(uid: Uid, flags: Flags, locator: Locator) -> Entry {
        Entry {
            uid,
            flags,
            recent: false,
            expunged: false,
            locator,
        }
    }
}

/// What the session must tell the client after a sync.
#[derive(Debug, PartialEq, Eq)]
pub enum Update {
    /// `* n EXPUNGE`, in order; each one renumbers the ones after it.
    Expunge(u32),
    /// `* n EXISTS` with the new total.
    Exists(u32),
    /// `* n RECENT`.
    Recent(u32),
    /// `* n FETCH (UID u FLAGS ...)` for a changed message, numbered as it is before
    /// the expunges reported with it, so it carries what it reports.
    Flags {
        seq: u32,
        uid: Uid,
        flags: Flags,
        recent: bool,
    },
}

#[derive(Default, Debug)]
pub struct View {
    pub entries: Vec<Entry>,
}

impl View {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Index of a UID, by binary search (UIDs ascend with sequence numbers).
    pub fn index_of_uid(&self, uid: Uid) -> Option<usize> {
        self.entries.binary_search_by_key(&uid, |e| e.uid).ok()
    }

    pub fn recent_count(&self) -> u32 {
        self.entries.iter().filter(|e| e.recent).count() as u32
    }

    /// Merge a fresh scan (sorted by UID) into the view and say what changed:
    /// flag changes first (numbered before any expunge), then expunges if they may be
    /// reported now, then EXISTS/RECENT for new messages. A scanned UID below the
    /// highest one the session knows, that it never saw, cannot be shown without
    /// breaking UID order; it is returned in `skipped` for the caller to log.
    pub fn apply(&mut self, scan: Vec<Entry>, report_expunges: bool) -> (Vec<Update>, usize) {
        let max_known = self.entries.last().map(|e| e.uid).unwrap_or(0);
        let mut changed = Vec::new();
        let mut skipped = 0;
        let mut it = scan.into_iter().peekable();
        for (i, e) in self.entries.iter_mut().enumerate() {
            while it.peek().is_some_and(|s| s.uid < e.uid) {
                it.next();
                skipped += 1;
            }
            if it.peek().is_some_and(|s| s.uid == e.uid) {
                let s = it.next().expect("peeked");
                // A file renamed (flags) or moved out of new/: the name it has now, and
                // what was learnt under the old one.
                if !Locator::same(&e.locator, &s.locator) {
                    s.locator.learn(&e.locator.record(e.uid));
                    e.locator = s.locator;
                }
                e.recent |= s.recent;
                if !e.expunged && s.flags != e.flags {
                    e.flags = s.flags;
                    changed.push(i);
                }
            } else {
                e.expunged = true;
            }
        }
        let mut updates: Vec<Update> = changed
            .iter()
            .map(|&i| {
                let e = &self.entries[i];
                Update::Flags {
                    seq: i as u32 + 1,
                    uid: e.uid,
                    flags: e.flags,
                    recent: e.recent,
                }
            })
            .collect();
        if report_expunges {
            updates.extend(self.take_expunged());
        }
        let before = self.entries.len();
        let mut new_recent = false;
        for s in it {
            if s.uid > max_known {
                new_recent |= s.recent;
                self.entries.push(s);
            } else {
                skipped += 1;
            }
        }
        if self.entries.len() != before {
            updates.push(Update::Exists(self.entries.len() as u32));
            if new_recent {
                updates.push(Update::Recent(self.recent_count()));
            }
        }
        (updates, skipped)
    }

    /// Drop the entries marked expunged, returning their EXPUNGE responses in order
    /// (each number as it is after the previous ones were removed).
    /// A sync with nothing new to apply (the folder unchanged, or a lock another
    /// program holds: new mail waits): what the view knows already, this session's own
    /// expunges, if they may be reported.
    pub fn nothing_new(&mut self, report_expunges: bool) -> Vec<Update> {
        if report_expunges {
            self.take_expunged()
        } else {
            Vec::new()
        }
    }

    pub fn take_expunged(&mut self) -> Vec<Update> {
        let mut out = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            if e.expunged {
                out.push(Update::Expunge((i - out.len()) as u32 + 1));
            }
        }
        if !out.is_empty() {
            self.entries.retain(|e| !e.expunged);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(uid: Uid, system: u8) -> Entry {
        let flags = Flags {
            system,
            keywords: 0,
        };
        Entry::new(uid, flags, no_locator())
    }

    #[test]
    fn an_entry_is_24_bytes_and_its_locator_keeps_what_was_learnt() {
        assert_eq!(std::mem::size_of::<Entry>(), 24);
        let a = Locator::new("cur/1.M1P1.host:2,S");
        let b = a.clone(); // another session's view of the same file
        assert_eq!(
            (a.vsize(), a.internal_date(), a.terminated()),
            (None, None, None)
        );
        let first = MessageRecord {
            uid: 0,
            vsize: Some(0),
            internal_date: Some(-5),
            terminated: Some(false),
        };
        a.learn(&first);
        b.learn(&MessageRecord {
            uid: 0,
            vsize: Some(9),
            internal_date: Some(7),
            terminated: Some(true),
        });
        assert_eq!(b.record(1), MessageRecord { uid: 1, ..first });
    }

    #[test]
    fn a_renamed_file_keeps_what_was_learnt_under_its_old_name() {
        let old = Locator::new("cur/1.M1P1.host:2,");
        old.learn(&MessageRecord {
            uid: 0,
            vsize: Some(42),
            internal_date: None,
            terminated: Some(true),
        });
        let mut v = View {
            entries: vec![Entry::new(1, Flags::default(), old)],
        };
        let seen = Flags {
            system: Flags::SEEN,
            keywords: 0,
        };
        let renamed = Locator::new("cur/1.M1P1.host:2,S");
        v.apply(vec![Entry::new(1, seen, renamed.clone())], true);
        assert!(Locator::same(&v.entries[0].locator, &renamed));
        assert_eq!(
            (renamed.vsize(), renamed.terminated()),
            (Some(42), Some(true))
        );
    }

    #[test]
    fn diff_reports_flags_expunges_and_new_messages() {
        let mut v = View {
            entries: vec![e(1, 0), e(2, 0), e(3, 0), e(5, 0)],
        };
        // 2 and 3 gone, 5 flagged, 7 new.
        let (u, skipped) = v.apply(vec![e(1, 0), e(5, Flags::FLAGGED), e(7, 0)], true);
        assert_eq!(skipped, 0);
        assert_eq!(
            u,
            vec![
                Update::Flags {
                    seq: 4,
                    uid: 5,
                    flags: Flags {
                        system: Flags::FLAGGED,
                        keywords: 0
                    },
                    recent: false
                },
                Update::Expunge(2),
                Update::Expunge(2),
                Update::Exists(3)
            ]
        );
        assert_eq!(
            v.entries.iter().map(|e| e.uid).collect::<Vec<_>>(),
            vec![1, 5, 7]
        );
    }

    #[test]
    fn flag_changes_compose_and_keep_what_others_set() {
        let f = |system| Flags {
            system,
            keywords: 0,
        };
        // Another session's \Answered survives our +\Seen and -\Deleted.
        let ours = FlagChange::add(f(Flags::SEEN)).then(FlagChange::remove(f(Flags::DELETED)));
        assert_eq!(
            ours.apply(f(Flags::ANSWERED | Flags::DELETED)),
            f(Flags::ANSWERED | Flags::SEEN)
        );
        let set = FlagChange::replace(f(Flags::FLAGGED));
        assert_eq!(
            set.apply(f(Flags::SEEN | Flags::PASSED)),
            f(Flags::FLAGGED | Flags::PASSED)
        );
        assert_eq!(
            set.then(FlagChange::add(f(Flags::DRAFT)))
                .apply(f(Flags::SEEN)),
            f(Flags::FLAGGED | Flags::DRAFT)
        );
    }

    #[test]
    fn expunges_held_back_until_allowed() {
        let mut v = View {
            entries: vec![e(1, 0), e(2, 0)],
        };
        let (u, _) = v.apply(vec![e(2, 0)], false);
        assert!(u.is_empty());
        assert_eq!(v.len(), 2);
        assert!(v.entries[0].expunged);
        assert_eq!(v.take_expunged(), vec![Update::Expunge(1)]);
    }
}
