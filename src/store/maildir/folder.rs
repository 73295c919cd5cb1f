//! One Maildir folder opened by a session: scanning new/ and cur/, UID assignment
//! through dovecot-uidlist, flags by renaming, expunge by unlinking, and the cache.

use super::super::view::{Entry, View};
use super::super::{FlagChange, Flags, Mailbox, Result, StoreError, Uid, Update};
use super::cache::{self, CachedMessage, Snapshot, Stamps};
use super::filename::{flags_of, is_message_name, vsize_of, with_flags};
use super::shared::{self, Names};
use super::uidlist::{Uidlist, base_name};
use super::{keywords, read_uidlist, recent};
use crate::store::dotlock::DotLock;
use crate::store::filelock::Holders;
use crate::store::record::MessageRecord;
use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How long a directory's mtime may still be the stamp of a later change: file systems
/// stamp with a coarse clock (a kernel tick where they keep nanoseconds; a whole second,
/// or two, where they keep seconds), so a change within the same tick leaves it equal.
const TICK_MARGIN_NS: i64 = 100_000_000;
const SECONDS_MARGIN_NS: i64 = 2_000_000_000;

/// How often a flag change or expunge looks for a message again that another process
/// renamed under it before giving up with Busy (each retry means another's rename won).
const RENAME_ATTEMPTS: usize = 100;

/// How often a sync lists the folder again when renames raced with its listing.
const SCAN_ATTEMPTS: usize = 3;

pub struct MaildirFolder {
    name: String,
    dir: PathBuf,
    readonly: bool,
    view: View,
    uidvalidity: u32,
    next_uid: u32,
    keywords: Vec<String>,
    /// Stamps of the last full scan; equal settled stamps mean nothing changed.
    stamps: Option<Stamps>,
    /// The parsed uidlist, as of those stamps (shared: `shared::uidlist`).
    uidlist: Option<(Stamps, Arc<Uidlist>)>,
    /// The file names the view points at, shared with the folder's other sessions.
    names: Arc<Names>,
    cache_dirty: bool,
    /// `stamps` were settled when read (see `settled`): equal stamps mean no change.
    stamps_settled: bool,
    /// The highest UID known to be claimed as \Recent (recent.rs): a scan that finds
    /// nothing above it need not look at the file.
    recent_mark: Option<u32>,
}

fn mtime_ns(m: &std::fs::Metadata) -> i64 {
    m.mtime() * 1_000_000_000 + m.mtime_nsec()
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl MaildirFolder {
    pub fn open(name: &str, dir: PathBuf, readonly: bool) -> Result<MaildirFolder> {
        super::copy::undo_abandoned(&dir, name);
        let names = shared::names(&dir);
        let mut f = MaildirFolder {
            name: name.to_string(),
            keywords: keywords::read(&dir),
            dir,
            readonly,
            view: View::default(),
            uidvalidity: 0,
            next_uid: 1,
            stamps: None,
            uidlist: None,
            names,
            cache_dirty: false,
            stamps_settled: false,
            recent_mark: None,
        };
        let cached = std::fs::read(f.dir.join(cache::FILE))
            .ok()
            .and_then(|b| cache::decode(&b));
        let entries = match &cached {
            Some(snap) => match f.cached_snapshot(snap)? {
                Some(entries) => entries,
                None => {
                    // The folder changed since the cache was written, but a message's
                    // file name still names the same bytes: keep what was measured.
                    let entries = f.scan()?;
                    fill_from_cache(&entries, snap);
                    entries
                }
            },
            None => f.scan()?,
        };
        f.view.entries = entries;
        Ok(f)
    }

    fn err(&self, op: &'static str, e: io::Error) -> StoreError {
        StoreError::io(op, &self.name, e)
    }

    fn current_stamps(&self) -> Result<Stamps> {
        let new = std::fs::metadata(self.dir.join("new")).map_err(|e| self.err("stat new/", e))?;
        let cur = std::fs::metadata(self.dir.join("cur")).map_err(|e| self.err("stat cur/", e))?;
        let (uidlist_mtime, uidlist_size) =
            match std::fs::metadata(self.dir.join("dovecot-uidlist")) {
                Ok(m) => (mtime_ns(&m), m.size() ^ (m.ino() << 32)),
                Err(_) => (0, 0),
            };
        Ok(Stamps {
            new_mtime: mtime_ns(&new),
            cur_mtime: mtime_ns(&cur),
            uidlist_mtime,
            uidlist_size,
        })
    }

    /// Do these stamps, read before a listing that has ended now, mean what they say?
    /// Only if the directories' last change is older than a clock tick: then any change
    /// after the listing carries a later stamp. A change in the same tick as a recent
    /// one leaves the stamp equal, so a recent stamp proves nothing. (The uidlist needs
    /// no such wait: it is only ever replaced by rename, and its inode is in its stamp.)
    fn settled(s: &Stamps) -> bool {
        let whole_seconds = s.new_mtime % 1_000_000_000 == 0 && s.cur_mtime % 1_000_000_000 == 0;
        let margin = if whole_seconds {
            SECONDS_MARGIN_NS
        } else {
            TICK_MARGIN_NS
        };
        let now = now_ns();
        now - s.new_mtime > margin && now - s.cur_mtime > margin
    }

    /// The cache file, if it describes the folder as it is now.
    fn cached_snapshot(&mut self, snap: &Snapshot) -> Result<Option<Vec<Entry>>> {
        let now = self.current_stamps()?;
        if snap.stamps != now || !Self::settled(&now) {
            return Ok(None);
        }
        // Messages still in new/ are picked up (and moved) by a scan when writable.
        if !self.readonly && snap.messages.iter().any(|m| m.locator.starts_with("new/")) {
            return Ok(None);
        }
        self.uidvalidity = snap.uidvalidity;
        self.next_uid = snap.next_uid;
        self.stamps = Some(now);
        self.stamps_settled = true;
        let mut entries = Vec::with_capacity(snap.messages.len());
        for m in &snap.messages {
            let locator = self.names.intern(&m.locator);
            locator.learn(&m.record);
            entries.push(Entry::new(m.record.uid, flags_of(&m.locator), locator));
        }
        self.mark_recent(&mut entries, &HashSet::new())?;
        Ok(Some(entries))
    }

    fn list_dir(&self, sub: &str, out: &mut Vec<String>) -> Result<()> {
        let rd = match std::fs::read_dir(self.dir.join(sub)) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.err("list messages", e)),
        };
        for ent in rd {
            let ent = ent.map_err(|e| self.err("list messages", e))?;
            // A message is a regular file: a symlink planted in cur/ (to another user's
            // mail, /etc/shadow) is not one, nor a directory.
            if !ent.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            if let Some(n) = ent.file_name().to_str() {
                if is_message_name(n) {
                    out.push(format!("{sub}/{n}"));
                }
            }
        }
        Ok(())
    }

    /// The uidlist as it is on disk now: the one held since the last scan while the
    /// file is unchanged, or the one another session of this process parsed from the
    /// same version of the file, else parsed again. The scan puts it back. (A copy per
    /// scan would make hundreds of long-lived strings each time, scattered among the
    /// scan's short-lived ones: the daemon's heap fragments and grows.)
    fn take_uidlist(&mut self, stamps: &Stamps) -> Result<Arc<Uidlist>> {
        if let Some((s, l)) = self.uidlist.take() {
            if s.uidlist_mtime == stamps.uidlist_mtime && s.uidlist_size == stamps.uidlist_size {
                return Ok(l);
            }
        }
        let version = (stamps.uidlist_mtime, stamps.uidlist_size);
        if let Some(l) = shared::uidlist(&self.dir, version) {
            return Ok(l);
        }
        let Some(l) = read_uidlist(&self.dir, &self.name)? else {
            return Ok(Arc::new(Uidlist::new(0)));
        };
        // Read after the stamps were taken: if the file changed in between, this copy
        // is newer than its stamps say, and the next look reads it again.
        let l = Arc::new(l);
        shared::keep_uidlist(&self.dir, version, &l);
        Ok(l)
    }

    /// List new/ and cur/ (moving new/ into cur/ when writable), give UIDs to files that
    /// have none, and return the folder's messages in UID order.
    fn scan(&mut self) -> Result<Vec<Entry>> {
        let stamps = self.current_stamps()?;
        let mut recent: HashSet<String> = HashSet::new();
        let mut files = Vec::new();
        if !self.readonly {
            let mut fresh = Vec::new();
            self.list_dir("new", &mut fresh)?;
            fresh.sort();
            for loc in fresh {
                let name = &loc[4..];
                let target = if name.contains(":2,") {
                    name.to_string()
                } else {
                    format!("{}:2,", base_name(name))
                };
                match std::fs::rename(self.dir.join(&loc), self.dir.join("cur").join(&target)) {
                    // The session that moves a message out of new/ is the one that
                    // sees it as \Recent (RFC 3501 2.3.2), whichever process it is.
                    Ok(()) => {
                        recent.insert(base_name(name).to_string());
                    }
                    // Another session moved it: the listing of cur/ below has it.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        crate::log::warning(&format!(
                            "cannot move {loc} to cur/ in {}: {e}",
                            self.name
                        ));
                        files.push(loc);
                    }
                }
            }
        } else {
            self.list_dir("new", &mut files)?;
        }
        // (Mail that reaches new/ after the listing above changed new/ after the stamps
        // were taken: the next sync lists again.)
        self.list_dir("cur", &mut files)?;

        let mut list = self.take_uidlist(&stamps)?;
        let mut by_base = list.by_base();
        // Each listed file's record, looked up once (100,000 files: every further hash
        // of a name is milliseconds of a cold SELECT).
        let record_of =
            |by_base: &HashMap<&str, usize>, f: &String| by_base.get(base_name(&f[4..])).copied();
        let mut records: Vec<Option<usize>> =
            files.iter().map(|f| record_of(&by_base, f)).collect();
        if records.iter().any(Option::is_none) || list.uidvalidity == 0 {
            drop(by_base);
            list = Arc::new(self.assign_uids(&mut files, &stamps)?);
            by_base = list.by_base();
            records = files.iter().map(|f| record_of(&by_base, f)).collect();
        }
        // APPEND and COPY publish a file, then number it: one published after our
        // listing may be numbered below a file we listed and another process numbered
        // after it. Shown without it, the higher UID would come first and the lower one
        // could never be shown (RFC 3501 2.3.1.1: UIDs ascend). A record new to this
        // session, below the highest listed UID and not listed, is looked for in a
        // second listing, made after the records were read, so after their publishing.
        let known_top = self.view.entries.last().map_or(0, |e| e.uid);
        let mut listed = vec![false; list.records.len()];
        let mut listed_top = 0;
        for &i in records.iter().flatten() {
            listed[i] = true;
            listed_top = listed_top.max(list.records[i].uid);
        }
        let gap = list
            .records
            .iter()
            .zip(&listed)
            .any(|(r, &l)| r.uid > known_top && r.uid < listed_top && !l);
        if gap {
            let mut again = Vec::new();
            self.list_dir("new", &mut again)?;
            self.list_dir("cur", &mut again)?;
            for f in again {
                let i = record_of(&by_base, &f);
                if i.is_none_or(|i| !listed[i]) {
                    files.push(f);
                    records.push(i);
                }
            }
        }
        drop(listed);
        let mut entries: Vec<Entry> = Vec::with_capacity(files.len());
        // Where each record's entry is (UIDs are unique in a parsed uidlist).
        let mut entry_of = vec![usize::MAX; list.records.len()];
        let mut names = self.names.interning();
        // cur/ after new/ in `files`: a message caught mid-move is taken from cur/.
        for (loc, &i) in files.iter().zip(&records).rev() {
            let Some(i) = i else {
                continue;
            };
            let rec = &list.records[i];
            if entry_of[i] != usize::MAX {
                // Listed under two names: renamed (a flag change) while we listed, and
                // readdir may show both. The name that exists now has its flags.
                let e = &mut entries[entry_of[i]];
                if !self.dir.join(&*e.locator).exists() && self.dir.join(loc).exists() {
                    e.flags = flags_of(loc);
                    let renamed = names.intern(loc);
                    renamed.learn(&e.locator.record(e.uid));
                    e.locator = renamed;
                }
                continue;
            }
            entry_of[i] = entries.len();
            let record = MessageRecord {
                uid: rec.uid,
                vsize: rec.vsize().or_else(|| vsize_of(loc)),
                ..Default::default()
            };
            let locator = names.intern(loc);
            locator.learn(&record);
            entries.push(Entry::new(rec.uid, flags_of(loc), locator));
        }
        drop(names);
        entries.sort_unstable_by_key(|e| e.uid);
        self.uidvalidity = list.uidvalidity;
        self.next_uid = list.next_uid;
        self.mark_recent(&mut entries, &recent)?;
        let fresh_stamps = self.current_stamps()?;
        self.uidlist = Some((fresh_stamps.clone(), list));
        // Record the stamps read *before* listing: a change during the listing makes the
        // directories newer than recorded, so the next check scans again; and a change in
        // the same clock tick as the last one cannot, so then the next check scans too.
        self.stamps_settled = Self::settled(&stamps);
        self.stamps = Some(Stamps {
            uidlist_mtime: fresh_stamps.uidlist_mtime,
            uidlist_size: fresh_stamps.uidlist_size,
            ..stamps
        });
        self.cache_dirty = true;
        Ok(entries)
    }

    /// \Recent (recent.rs): a read-write session claims the UIDs no session was shown
    /// yet; a read-only one sees them without claiming. A folder that has no record yet
    /// falls back to what Maildir itself says: what this scan `moved` out of new/
    /// (read-only: what is still in new/).
    fn mark_recent(&mut self, entries: &mut [Entry], moved: &HashSet<String>) -> Result<()> {
        let highest = entries.last().map_or(0, |e| e.uid);
        let shown = match self.recent_mark {
            Some(w) if highest <= w => Some(w),
            _ if self.readonly => {
                let w = recent::read(&self.dir, self.uidvalidity);
                self.recent_mark = w;
                w
            }
            _ => {
                let w = recent::claim(&self.dir, self.uidvalidity, highest)
                    .map_err(|e| self.err("record recent messages", e))?;
                self.recent_mark = Some(w.unwrap_or(0).max(highest));
                w
            }
        };
        for e in entries.iter_mut() {
            e.recent = match shown {
                Some(w) => e.uid > w,
                None if self.readonly => e.locator.starts_with("new/"),
                None => moved.contains(base_name(&e.locator[4..])),
            };
        }
        Ok(())
    }

    /// A scan that does not mistake a rename for an expunge or report flags a message
    /// no longer has. readdir during another process's rename (a flag change) may show
    /// the old name, the new one, both or neither; so look again when a known message is
    /// missing, or when a name that differs from the view's is already gone.
    fn consistent_scan(&mut self) -> Result<Vec<Entry>> {
        let mut scan = self.scan()?;
        for _ in 0..SCAN_ATTEMPTS {
            let by_uid: HashMap<Uid, &Entry> = scan.iter().map(|e| (e.uid, e)).collect();
            let doubtful = self.view.entries.iter().filter(|e| !e.expunged).any(|e| {
                match by_uid.get(&e.uid) {
                    None => true,
                    Some(s) => s.locator != e.locator && !self.dir.join(&*s.locator).exists(),
                }
            });
            if !doubtful {
                return Ok(scan);
            }
            scan = self.scan()?;
        }
        // Still a known message missing. Absence is believed only from a listing no
        // rename ran through: the directories did not change while it ran. Otherwise
        // (a busy folder, where readdir can miss a file being renamed again and again)
        // the message stays as the view has it, and a later, quieter sync decides.
        let after = self.current_stamps()?;
        let quiet = self.stamps.as_ref().is_some_and(|s| s.same_dirs(&after));
        if !quiet {
            let listed: HashSet<Uid> = scan.iter().map(|e| e.uid).collect();
            let kept: Vec<Entry> = self
                .view
                .entries
                .iter()
                .filter(|e| !e.expunged && !listed.contains(&e.uid))
                .cloned()
                .collect();
            if !kept.is_empty() {
                scan.extend(kept);
                scan.sort_unstable_by_key(|e| e.uid);
                // This listing proves nothing about them: look again next time.
                self.stamps_settled = false;
            }
        }
        Ok(scan)
    }

    /// Under the uidlist dot-lock: read it again, list the folder again unless it has
    /// not changed since `files` was listed, number the files it lacks (oldest name
    /// first), drop records whose files are gone, and write it back. `files` becomes
    /// the listing as it is under the lock: a file expunged since
    /// the scan's listing (its record dropped, `forget_records`) must not be numbered
    /// anew, and a file published since is numbered in the same pass.
    fn assign_uids(&mut self, files: &mut Vec<String>, listed_at: &Stamps) -> Result<Uidlist> {
        let path = self.dir.join("dovecot-uidlist");
        let lock = DotLock::acquire(&path, Holders::Anyone)
            .map_err(|e| self.err("lock dovecot-uidlist", e))?;
        let mut list = match read_uidlist(&self.dir, &self.name)? {
            Some(l) => l,
            None => super::import_or_new_uidlist(&self.dir),
        };
        // What was listed before the lock still holds if neither directory changed
        // since (and long enough ago that a change in the same clock tick would show):
        // a cold SELECT of 100,000 messages lists them once, not twice.
        let now = self.current_stamps()?;
        if !(now.same_dirs(listed_at) && Self::settled(&now)) {
            files.clear();
            self.list_dir("new", files)?;
            self.list_dir("cur", files)?;
        }
        let files = &files[..];
        let present: HashSet<&str> = files.iter().map(|f| base_name(&f[4..])).collect();
        let mut missing: Vec<&str> = {
            let known = list.by_base();
            present
                .iter()
                .copied()
                .filter(|b| !known.contains_key(b))
                .collect()
        };
        missing.sort_unstable();
        let before = list.records.len();
        // A record whose file is absent from this listing and from a second look is an
        // expunged message: forget it, as Dovecot does. But only when no rename ran
        // meanwhile (the directories' stamps did not move, and are old enough to mean
        // it): a listing during a rename can miss a file, and forgetting a live file's
        // record would give it a new UID. A record kept too long costs a line.
        if list
            .records
            .iter()
            .any(|r| !present.contains(r.base.as_str()))
        {
            let mut again = Vec::new();
            self.list_dir("cur", &mut again)?;
            self.list_dir("new", &mut again)?;
            let after = self.current_stamps()?;
            let quiet = after.same_dirs(listed_at) && Self::settled(&after);
            if quiet {
                let again: HashSet<&str> = again.iter().map(|f| base_name(&f[4..])).collect();
                list.records.retain(|r| {
                    present.contains(r.base.as_str()) || again.contains(r.base.as_str())
                });
            }
        }
        let changed = !missing.is_empty() || list.records.len() != before || !path.exists();
        for base in missing {
            list.records.push(super::uidlist::Record {
                uid: list.next_uid,
                ext: String::new(),
                base: base.to_string(),
            });
            list.next_uid += 1;
        }
        if changed {
            lock.replace(list.serialize().as_bytes())
                .map_err(|e| self.err("write dovecot-uidlist", e))?;
        }
        Ok(list)
    }

    /// Find where a message's file is now (another process may have renamed it). A
    /// listing can miss a file renamed while it runs, so only several misses in a row
    /// mean the message is gone.
    fn relocate(&mut self, index: usize) -> Result<String> {
        let base = base_name(&self.view.entries[index].locator[4..]).to_string();
        for _ in 0..SCAN_ATTEMPTS {
            let mut files = Vec::new();
            self.list_dir("cur", &mut files)?;
            self.list_dir("new", &mut files)?;
            if let Some(found) = files.into_iter().find(|f| base_name(&f[4..]) == base) {
                self.view.entries[index].locator = self.names.intern(&found);
                return Ok(found);
            }
        }
        Err(StoreError::Expunged)
    }

    fn write_cache(&mut self) {
        let Some(stamps) = self.stamps.clone() else {
            return;
        };
        if !self.stamps_settled {
            return; // a cache that may miss a change must not be trusted later
        }
        let snap = Snapshot {
            uidvalidity: self.uidvalidity,
            next_uid: self.next_uid,
            stamps,
            messages: self
                .view
                .entries
                .iter()
                .filter(|e| !e.expunged)
                .map(|e| CachedMessage {
                    record: e.locator.record(e.uid),
                    locator: e.locator.to_string(),
                })
                .collect(),
        };
        let tmp = self.dir.join(format!(
            "{}.{}.tmp",
            cache::FILE,
            super::filename::unique("w")
        ));
        let ok = std::fs::write(&tmp, cache::encode(&snap))
            .and_then(|_| std::fs::rename(&tmp, self.dir.join(cache::FILE)));
        if ok.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        self.cache_dirty = false;
    }

    /// The message's file, found again if another process renamed it.
    fn open_file(&mut self, index: usize) -> Result<std::fs::File> {
        if self.view.entries[index].expunged {
            return Err(StoreError::Expunged);
        }
        match open_message_file(&self.path_of(index)) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let loc = self.relocate(index)?;
                open_message_file(&self.dir.join(loc)).map_err(|_| StoreError::Expunged)
            }
            Err(e) => Err(self.err("read message", e)),
        }
    }

    /// Unlink the messages' files (only those whose name now carries T, if
    /// `only_deleted`): unlinking a name is atomic against another process's rename, so a
    /// message whose \Deleted was cleared meanwhile is looked at again, not removed.
    fn remove_files(&mut self, indexes: &[usize], only_deleted: bool) -> Result<()> {
        if self.readonly {
            return Err(StoreError::ReadOnly);
        }
        // The names the files carry now, from one listing for all candidates (not one
        // per message: an EXPUNGE looks at every message, since any may carry T now).
        let mut now_named: HashMap<String, String> = HashMap::new();
        if only_deleted {
            let mut files = Vec::new();
            self.list_dir("cur", &mut files)?;
            self.list_dir("new", &mut files)?;
            for f in files {
                now_named.insert(base_name(&f[4..]).to_string(), f);
            }
        }
        let mut removed: Vec<String> = Vec::new();
        'messages: for &i in indexes {
            for attempt in 0..RENAME_ATTEMPTS {
                if self.view.entries[i].expunged {
                    continue 'messages;
                }
                if attempt == 0 {
                    let base = base_name(&self.view.entries[i].locator[4..]);
                    if let Some(now) = now_named.get(base) {
                        self.view.entries[i].locator = self.names.intern(now);
                    }
                }
                let current = self.view.entries[i].locator.to_string();
                let flags = flags_of(&current);
                if only_deleted && !flags.has(Flags::DELETED) {
                    if attempt == 0 && !now_named.is_empty() {
                        // Not \Deleted under the name it has now (a name renamed since the
                        // listing was renamed by a flag change: the unlink below of a
                        // stale name fails and looks again).
                        continue 'messages;
                    }
                    // Our name may be stale: the file may carry T now.
                    match self.relocate(i) {
                        Ok(now) if now != current => continue,
                        Ok(_) => {
                            self.view.entries[i].flags = flags;
                            continue 'messages;
                        }
                        Err(StoreError::Expunged) => continue 'messages,
                        Err(e) => return Err(e),
                    }
                }
                match std::fs::remove_file(self.dir.join(&current)) {
                    Ok(()) => {
                        self.view.entries[i].expunged = true;
                        removed.push(base_name(&current[4..]).to_string());
                        continue 'messages;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => match self.relocate(i) {
                        Ok(_) => continue,
                        // Another session expunged it: the next sync reports it.
                        Err(StoreError::Expunged) => continue 'messages,
                        Err(e) => return Err(e),
                    },
                    Err(e) => return Err(self.err("expunge", e)),
                }
            }
            return Err(StoreError::Busy);
        }
        self.stamps = None;
        self.forget_records(&removed);
        Ok(())
    }

    /// Drop the uidlist records of files we unlinked, in one rewrite: nothing else
    /// does for a folder whose mail is only copied in and expunged (a COPY numbers its
    /// files itself), and a soak's Scratch folders kept 1,000 records of no file after
    /// five minutes, parsed and held by every session. UIDs are not reused: N stays.
    /// The mail is gone already: a failure here costs stale lines, logged, not a NO;
    /// a lock another program holds, only the lines (a later numbering under the lock
    /// drops records of files that are gone).
    fn forget_records(&mut self, removed: &[String]) {
        if removed.is_empty() {
            return;
        }
        let path = self.dir.join("dovecot-uidlist");
        let result = DotLock::acquire(&path, Holders::Anyone).and_then(|lock| {
            let Ok(Some(mut list)) = read_uidlist(&self.dir, &self.name) else {
                return Ok(());
            };
            let gone: HashSet<&str> = removed.iter().map(String::as_str).collect();
            let before = list.records.len();
            list.records.retain(|r| !gone.contains(r.base.as_str()));
            if list.records.len() == before {
                return Ok(());
            }
            lock.replace(list.serialize().as_bytes())
        });
        if let Err(e) = result.or_else(|e| match e.kind() {
            io::ErrorKind::WouldBlock => Ok(()),
            _ => Err(e),
        }) {
            crate::log::warning(&format!(
                "cannot drop expunged messages from dovecot-uidlist of {}: {e}",
                self.name
            ));
        }
    }

    fn path_of(&self, index: usize) -> PathBuf {
        self.dir.join(&*self.view.entries[index].locator)
    }
}

/// A message file, never through a symlink (one swapped in after the listing).
fn open_message_file(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Sizes, dates and line-end facts of a cache that no longer describes the folder,
/// for the messages still there (matched by the unique part of their file names).
fn fill_from_cache(entries: &[Entry], snap: &Snapshot) {
    let known: std::collections::HashMap<&str, &CachedMessage> = snap
        .messages
        .iter()
        .map(|m| (base_name(&m.locator[4..]), m))
        .collect();
    for e in entries {
        if let Some(m) = known.get(base_name(&e.locator[4..])) {
            e.locator.learn(&m.record);
        }
    }
}

/// Octets of `data` with every bare LF counted as CRLF.
pub fn crlf_size(data: &[u8]) -> u64 {
    crlf_size_from(data, &mut 0)
}

/// `crlf_size` of one piece of a message; `prev` carries the last octet across pieces.
pub fn crlf_size_from(data: &[u8], prev: &mut u8) -> u64 {
    let mut n = data.len() as u64;
    for &b in data {
        if b == b'\n' && *prev != b'\r' {
            n += 1;
        }
        *prev = b;
    }
    n
}

impl Mailbox for MaildirFolder {
    fn name(&self) -> &str {
        &self.name
    }
    fn uidvalidity(&self) -> u32 {
        self.uidvalidity
    }
    fn uidnext(&self) -> u32 {
        self.next_uid
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
        let (list, i) = super::define_keyword(&self.dir, &self.name, name)?;
        self.keywords = list;
        Ok(i)
    }

    fn sync(&mut self, report_expunges: bool) -> Result<Vec<Update>> {
        // The fast path (every IDLE poll) stats only the two directories: the uidlist
        // changes only when a file appears or goes, and that changes a directory.
        let new = std::fs::metadata(self.dir.join("new")).map_err(|e| self.err("stat new/", e))?;
        let cur = std::fs::metadata(self.dir.join("cur")).map_err(|e| self.err("stat cur/", e))?;
        let unchanged = self.stamps_settled
            && self
                .stamps
                .as_ref()
                .is_some_and(|s| s.new_mtime == mtime_ns(&new) && s.cur_mtime == mtime_ns(&cur));
        if unchanged {
            return Ok(self.view.nothing_new(report_expunges));
        }
        self.keywords = keywords::read(&self.dir);
        let scan = match self.consistent_scan() {
            Ok(scan) => scan,
            Err(StoreError::Locked { .. }) => return Ok(self.view.nothing_new(report_expunges)),
            Err(e) => return Err(e),
        };
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
        let mut file = self.open_file(index)?;
        let mut data = Vec::with_capacity(file.metadata().map_or(0, |m| m.len() as usize));
        file.read_to_end(&mut data)
            .map_err(|e| self.err("read message", e))?;
        Ok(data)
    }

    fn open_message(&mut self, index: usize) -> Result<Box<dyn crate::store::MessageReader>> {
        Ok(Box::new(self.open_file(index)?))
    }

    fn copy_content(&mut self, index: usize) -> Result<crate::store::Content> {
        let vsize = self.size(index)?;
        let file = self.open_file(index)?;
        let size = file
            .metadata()
            .map_err(|e| self.err("read message", e))?
            .len();
        Ok(crate::store::Content::File { file, size, vsize })
    }

    fn size(&mut self, index: usize) -> Result<u64> {
        if let Some(v) = self.view.entries[index].locator.vsize() {
            return Ok(v);
        }
        // Counted in pieces: a 50 MB message is not read into memory to be measured.
        let mut reader = self.open_message(index)?;
        let mut buf = vec![0u8; 65536];
        let (mut v, mut prev) = (0u64, 0u8);
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.err("read message", e)),
            };
            v += crlf_size_from(&buf[..n], &mut prev);
        }
        let terminated = (v > 0).then_some(prev == b'\n');
        self.view.entries[index].locator.learn(&MessageRecord {
            vsize: Some(v),
            terminated,
            ..Default::default()
        });
        self.cache_dirty = true;
        Ok(v)
    }

    fn ends_with_newline(&mut self, index: usize) -> Result<bool> {
        if self.size(index)? == 0 {
            return Ok(true);
        }
        Ok(match self.view.entries[index].locator.terminated() {
            Some(t) => t,
            None => {
                // The size came from the file name: look at the last octet only.
                use std::os::unix::fs::FileExt;
                let file = self.open_file(index)?;
                let len = file
                    .metadata()
                    .map_err(|e| self.err("read message", e))?
                    .len();
                let mut last = [0u8; 1];
                let t = len == 0
                    || (file.read_exact_at(&mut last, len - 1).is_ok() && last[0] == b'\n');
                self.view.entries[index].locator.learn(&MessageRecord {
                    terminated: Some(t),
                    ..Default::default()
                });
                self.cache_dirty = true;
                t
            }
        })
    }

    fn internal_date(&mut self, index: usize) -> Result<i64> {
        if let Some(d) = self.view.entries[index].locator.internal_date() {
            return Ok(d);
        }
        let md = match std::fs::metadata(self.path_of(index)) {
            Ok(m) => m,
            Err(_) => {
                let loc = self.relocate(index)?;
                std::fs::metadata(self.dir.join(loc)).map_err(|_| StoreError::Expunged)?
            }
        };
        let d = md.mtime();
        self.view.entries[index].locator.learn(&MessageRecord {
            internal_date: Some(d),
            ..Default::default()
        });
        self.cache_dirty = true;
        Ok(d)
    }

    fn change_flags(&mut self, index: usize, change: FlagChange) -> Result<()> {
        if self.readonly {
            return Err(StoreError::ReadOnly);
        }
        // The flags are the file's name: compute from the name the file has now and
        // rename exactly that name. If another process renamed it meanwhile, our rename
        // finds nothing and we look again; so a concurrent +FLAGS is never undone.
        for _ in 0..RENAME_ATTEMPTS {
            if self.view.entries[index].expunged {
                return Err(StoreError::Expunged);
            }
            let current = self.view.entries[index].locator.to_string();
            let old = flags_of(&current);
            let new = change.apply(old);
            let target = format!("cur/{}", with_flags(base_name(&current[4..]), new));
            let moved = current == target
                || match std::fs::rename(self.dir.join(&current), self.dir.join(&target)) {
                    Ok(()) => true,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                    Err(e) => return Err(self.err("store flags", e)),
                };
            if !moved {
                self.relocate(index)?;
                continue;
            }
            let locator = self.names.intern(&target);
            let e = &mut self.view.entries[index];
            e.locator = locator;
            e.flags = new;
            // Our own rename changed cur/: the stamps stay, so the next sync looks again,
            // but the view holds the new flags, so nothing is reported twice.
            return Ok(());
        }
        Err(StoreError::Busy)
    }

    fn expunge(&mut self, indexes: &[usize]) -> Result<()> {
        self.remove_files(indexes, false)
    }

    fn expunge_deleted(&mut self, candidates: &[usize]) -> Result<()> {
        self.remove_files(candidates, true)
    }

    // Nothing to persist at the end of a command: flags and expunges are written as they
    // happen. The cache (for the next SELECT) is written when the folder is closed.
}

impl Drop for MaildirFolder {
    fn drop(&mut self) {
        // Once per open, not once per command: each write is a new file, and creating
        // files by the thousand a second is what a busy server's CPU went to (ext4's
        // inode allocator), for a cache only the next SELECT reads.
        if self.cache_dirty && self.view.len() >= crate::config::MAILDIR_CACHE_MIN_MESSAGES {
            self.write_cache();
        }
    }
}

pub fn folder_dir_ok(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir)
        .map(|m| m.is_dir())
        .unwrap_or(false)
}
