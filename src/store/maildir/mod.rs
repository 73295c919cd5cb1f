//! Maildir++ store (Courier/Dovecot layout): INBOX is the root Maildir, folder `A.B` is
//! the directory `.A.B` beside it with its own tmp/ new/ cur/ and a `maildirfolder`
//! file. UIDs live in `dovecot-uidlist`, keywords in `dovecot-keywords`, subscriptions
//! in `subscriptions`, so Dovecot and this server read each other's state. A Courier
//! folder's `courierimapuiddb` is imported on first open, keeping its UIDs.

pub mod cache;
mod copy;
pub mod filename;
pub mod folder;
pub mod keywords;
pub mod recent;
mod shared;
pub mod uidlist;

use super::names::{MailboxName, list_match};
use super::{AppendSink, Flags, ListEntry, Mailbox, Result, StatusInfo, Store, StoreError, Uid};
use crate::store::dotlock::DotLock;
use crate::store::filelock::Holders;
use crate::store::uidvalidity;
use folder::{MaildirFolder, folder_dir_ok};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use uidlist::Uidlist;

pub struct MaildirStore {
    root: PathBuf,
    hostname: String,
}

/// Create a Maildir at `dir`, private to the user. `cur/` is what marks a Maildir as
/// complete (here and in Dovecot), so it comes last: a process racing us never sees a
/// `cur/` without the `tmp/` and `new/` a delivery needs.
fn make_maildir(dir: &Path, folder: bool) -> io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.mode(0o700).recursive(true);
    for sub in ["tmp", "new"] {
        b.create(dir.join(sub))?;
    }
    if folder {
        File::create(dir.join("maildirfolder"))?;
    }
    b.create(dir.join("cur"))
}

/// Read `dovecot-uidlist`; None if there is none yet.
pub fn read_uidlist(dir: &Path, mailbox: &str) -> Result<Option<Uidlist>> {
    match fs::read_to_string(dir.join("dovecot-uidlist")) {
        Ok(t) => match Uidlist::parse(&t) {
            Ok(l) => Ok(Some(l)),
            Err(e) => {
                // A damaged list loses UID continuity, never mail: start a new UIDVALIDITY.
                crate::log::error(&format!(
                    "dovecot-uidlist of {mailbox} unreadable ({e}); renumbering"
                ));
                Ok(None)
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io("read dovecot-uidlist", mailbox, e)),
    }
}

/// A folder without dovecot-uidlist: take Courier's UIDs if Courier served it,
/// otherwise start a new UIDVALIDITY (the user's next, `store::uidvalidity`).
pub fn import_or_new_uidlist(dir: &Path) -> Uidlist {
    for courier in ["courierimapuiddb", "courierimapuidlist"] {
        if let Ok(t) = fs::read_to_string(dir.join(courier)) {
            if let Ok(mut l) = Uidlist::parse(&t) {
                l.extra_header = Uidlist::new(0).extra_header;
                return l;
            }
        }
    }
    Uidlist::new(uidvalidity::next(&maildir_root(dir)))
}

/// The Maildir++ root of a folder directory: INBOX is the root, `.Name` sits in it.
fn maildir_root(dir: &Path) -> PathBuf {
    match (dir.file_name().and_then(|n| n.to_str()), dir.parent()) {
        (Some(n), Some(parent)) if n.starts_with('.') => parent.to_path_buf(),
        _ => dir.to_path_buf(),
    }
}

/// Define `name` in the folder's dovecot-keywords (under its own dot-lock).
pub fn define_keyword(dir: &Path, mailbox: &str, name: &str) -> Result<(Vec<String>, usize)> {
    let path = dir.join("dovecot-keywords");
    let lock = DotLock::acquire(&path, Holders::Anyone)
        .map_err(|e| StoreError::io("lock dovecot-keywords", mailbox, e))?;
    let mut list = keywords::read(dir);
    if let Some(i) = list.iter().position(|k| k.eq_ignore_ascii_case(name)) {
        return Ok((list, i));
    }
    let slot = match list.iter().position(|k| k.is_empty()) {
        Some(i) => i,
        None if list.len() < keywords::MAX_KEYWORDS => {
            list.push(String::new());
            list.len() - 1
        }
        None => return Err(StoreError::TooManyKeywords),
    };
    list[slot] = name.to_string();
    lock.replace(keywords::serialize(&list).as_bytes())
        .map_err(|e| StoreError::io("write dovecot-keywords", mailbox, e))?;
    Ok((list, slot))
}

impl MaildirStore {
    /// A message on its way into `name`'s tmp/.
    fn start_append(&mut self, name: &MailboxName) -> Result<Box<MaildirAppend>> {
        let dir = self.existing_dir(name)?;
        MaildirAppend::start(dir, &self.hostname, name.as_str())
    }

    /// The store at `root`, creating the INBOX Maildir if it does not exist yet.
    pub fn open(root: PathBuf) -> io::Result<MaildirStore> {
        if !["cur", "new", "tmp"].iter().all(|d| root.join(d).is_dir()) {
            make_maildir(&root, false)?;
        }
        Ok(MaildirStore {
            root,
            hostname: crate::sys::hostname(),
        })
    }

    fn dir_of(&self, name: &MailboxName) -> PathBuf {
        if name.is_inbox() {
            self.root.clone()
        } else {
            // MailboxName guarantees one path component: no '/', no empty level.
            self.root.join(format!(".{}", name.as_str()))
        }
    }

    /// The folder's directory if it is a real directory (a planted symlink is refused).
    fn existing_dir(&self, name: &MailboxName) -> Result<PathBuf> {
        let dir = self.dir_of(name);
        if folder_dir_ok(&dir) && folder_dir_ok(&dir.join("cur")) {
            Ok(dir)
        } else {
            Err(StoreError::NoSuchMailbox)
        }
    }

    fn folder_names(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let rd = fs::read_dir(&self.root).map_err(|e| StoreError::io("list mailboxes", "", e))?;
        for ent in rd.flatten() {
            let fname = ent.file_name();
            let Some(n) = fname.to_str() else { continue };
            let Some(name) = n.strip_prefix('.') else {
                continue;
            };
            if !ent.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue; // symlinks and files are not folders
            }
            if let Ok(valid) = MailboxName::parse(name.as_bytes()) {
                if valid.as_str() == name && !valid.is_inbox() {
                    out.push(name.to_string());
                }
            }
        }
        Ok(out)
    }

    fn subscriptions_path(&self) -> PathBuf {
        self.root.join("subscriptions")
    }
}

impl Store for MaildirStore {
    fn list(&mut self) -> Result<Vec<ListEntry>> {
        let real: BTreeSet<String> = self
            .folder_names()?
            .into_iter()
            .chain(["INBOX".to_string()])
            .collect();
        let mut all: BTreeMap<String, ListEntry> = BTreeMap::new();
        for name in &real {
            all.insert(
                name.clone(),
                ListEntry {
                    name: name.clone(),
                    noselect: false,
                    has_children: false,
                },
            );
        }
        for name in &real {
            let parsed = MailboxName::parse(name.as_bytes()).expect("validated");
            for p in parsed.parents() {
                let e = all.entry(p.clone()).or_insert_with(|| ListEntry {
                    name: p.clone(),
                    noselect: true,
                    has_children: false,
                });
                e.has_children = true;
            }
        }
        Ok(all.into_values().collect())
    }

    fn exists(&mut self, name: &MailboxName) -> bool {
        self.existing_dir(name).is_ok()
    }

    fn create(&mut self, name: &MailboxName) -> Result<()> {
        let dir = self.dir_of(name);
        if name.is_inbox() || fs::symlink_metadata(&dir).is_ok() {
            return Err(StoreError::AlreadyExists);
        }
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => StoreError::AlreadyExists,
                _ => StoreError::io("create mailbox", name.as_str(), e),
            })?;
        make_maildir(&dir, true).map_err(|e| StoreError::io("create mailbox", name.as_str(), e))?;
        // Fix UIDVALIDITY at creation time: one this user never had. Everything that
        // arrives from now on is \Recent for the first session to select it.
        let list = Uidlist::new(uidvalidity::next(&self.root));
        // Nobody else knows the folder yet: a wait here is a moment's.
        let lock = DotLock::acquire(&dir.join("dovecot-uidlist"), Holders::OursBriefly)
            .map_err(|e| StoreError::io("create mailbox", name.as_str(), e))?;
        lock.replace(list.serialize().as_bytes())
            .map_err(|e| StoreError::io("create mailbox", name.as_str(), e))?;
        recent::claim(&dir, list.uidvalidity, 0)
            .map(|_| ())
            .map_err(|e| StoreError::io("create mailbox", name.as_str(), e))
    }

    fn delete(&mut self, name: &MailboxName) -> Result<()> {
        if name.is_inbox() {
            return Err(StoreError::NotAllowed("INBOX cannot be deleted"));
        }
        let dir = self.dir_of(name);
        if !folder_dir_ok(&dir) {
            return Err(StoreError::NoSuchMailbox);
        }
        // Rename first so the folder disappears atomically; `..` names are never listed.
        let trash = self
            .root
            .join(format!("..deleted.{}", filename::unique(&self.hostname)));
        fs::rename(&dir, &trash).map_err(|e| StoreError::io("delete mailbox", name.as_str(), e))?;
        fs::remove_dir_all(&trash).map_err(|e| StoreError::io("delete mailbox", name.as_str(), e))
    }

    fn rename(&mut self, from: &MailboxName, to: &MailboxName) -> Result<()> {
        let src = self.existing_dir(from)?;
        let dst = self.dir_of(to);
        if to.is_inbox() || fs::symlink_metadata(&dst).is_ok() {
            return Err(StoreError::AlreadyExists);
        }
        if from.is_inbox() {
            // RFC 3501 6.3.5: move INBOX's messages to the new mailbox; INBOX stays, empty.
            self.create(to)?;
            for sub in ["new", "cur"] {
                let rd = fs::read_dir(src.join(sub))
                    .map_err(|e| StoreError::io("rename INBOX", "INBOX", e))?;
                for ent in rd.flatten() {
                    let fname = ent.file_name();
                    let Some(n) = fname.to_str() else { continue };
                    if !filename::is_message_name(n) {
                        continue;
                    }
                    fs::rename(ent.path(), dst.join(sub).join(n))
                        .map_err(|e| StoreError::io("rename INBOX", "INBOX", e))?;
                }
            }
            return Ok(());
        }
        if to.as_str().starts_with(&format!("{}.", from.as_str())) {
            return Err(StoreError::NotAllowed(
                "A mailbox cannot be moved into itself",
            ));
        }
        let children: Vec<String> = self
            .folder_names()?
            .into_iter()
            .filter(|n| n.starts_with(&format!("{}.", from.as_str())))
            .collect();
        fs::rename(&src, &dst).map_err(|e| StoreError::io("rename mailbox", from.as_str(), e))?;
        for child in children {
            let new_name = format!("{}{}", to.as_str(), &child[from.as_str().len()..]);
            fs::rename(
                self.root.join(format!(".{child}")),
                self.root.join(format!(".{new_name}")),
            )
            .map_err(|e| StoreError::io("rename mailbox", &child, e))?;
        }
        Ok(())
    }

    fn subscriptions(&mut self) -> Result<Vec<String>> {
        let text = match fs::read_to_string(self.subscriptions_path()) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // A Courier-era Maildir: its list, with Courier's INBOX. prefix as it is.
                fs::read_to_string(self.root.join("courierimapsubscribed")).unwrap_or_default()
            }
            Err(e) => return Err(StoreError::io("read subscriptions", "", e)),
        };
        let mut lines = text.lines().peekable();
        // Dovecot 2.3 writes a `V\t2` header and separates levels with TAB.
        let v2 = lines.peek().is_some_and(|l| l.starts_with("V\t"));
        if v2 {
            lines.next();
        }
        Ok(lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                if v2 {
                    l.replace('\t', ".")
                } else {
                    l.to_string()
                }
            })
            .collect())
    }

    fn set_subscribed(&mut self, name: &str, subscribed: bool) -> Result<()> {
        let path = self.subscriptions_path();
        super::update_subscriptions(&path, || self.subscriptions(), name, subscribed)
    }

    fn open(&mut self, name: &MailboxName, readonly: bool) -> Result<Box<dyn Mailbox>> {
        let dir = self.existing_dir(name)?;
        Ok(Box::new(MaildirFolder::open(name.as_str(), dir, readonly)?))
    }

    fn status(&mut self, name: &MailboxName, with_size: bool) -> Result<StatusInfo> {
        let dir = self.existing_dir(name)?;
        let mut f = MaildirFolder::open(name.as_str(), dir.clone(), true)?;
        let view = f.view();
        let mut st = StatusInfo {
            messages: view.len() as u32,
            recent: view.recent_count(),
            unseen: view
                .entries
                .iter()
                .filter(|e| !e.flags.has(Flags::SEEN))
                .count() as u32,
            uidnext: f.uidnext(),
            uidvalidity: f.uidvalidity(),
            size: 0,
        };
        if with_size {
            for i in 0..st.messages as usize {
                st.size += f.size(i).unwrap_or(0);
            }
        }
        Ok(st)
    }

    fn state_dir(&mut self) -> Result<PathBuf> {
        Ok(self.root.clone())
    }

    fn append(&mut self, name: &MailboxName) -> Result<Box<dyn AppendSink>> {
        Ok(self.start_append(name)?)
    }

    fn copy_into(&mut self, name: &MailboxName) -> Result<Box<dyn super::CopyInto>> {
        let dir = self.existing_dir(name)?;
        Ok(Box::new(copy::MaildirCopy::start(
            dir,
            &self.hostname,
            name,
        )))
    }
}

/// A message on its way into tmp/, then new/ or cur/ (the maildir delivery protocol).
struct MaildirAppend {
    mailbox: String,
    dir: PathBuf,
    base: String,
    tmp_path: PathBuf,
    file: Option<io::BufWriter<File>>,
    size: u64,
    vsize: u64,
    last: u8,
}

impl AppendSink for MaildirAppend {
    fn write(&mut self, data: &[u8]) -> Result<()> {
        let f = self.file.as_mut().expect("open until commit");
        f.write_all(data)
            .map_err(|e| StoreError::io("store new message", &self.mailbox, e))?;
        self.size += data.len() as u64;
        self.vsize += data.len() as u64;
        for &b in data {
            if b == b'\n' && self.last != b'\r' {
                self.vsize += 1;
            }
            self.last = b;
        }
        Ok(())
    }

    fn commit(
        &mut self,
        flags: Flags,
        keywords: &[String],
        internal_date: Option<i64>,
    ) -> Result<(u32, Uid)> {
        let (dir, mailbox) = (self.dir.clone(), self.mailbox.clone());
        // The slow part (a 100 MB fsync) before the lock; the lock before staging: a
        // staged message is removed unless published, and a Locked commit must leave
        // it in tmp/ to be committed again.
        self.make_durable(internal_date)?;
        let lock = lock_uidlist(&dir, &mailbox)?;
        let placed = self.stage(flags, keywords, internal_date)?.publish()?;
        let (validity, uids) = number(lock, &dir, &mailbox, &[placed])?;
        Ok((validity, uids[0]))
    }

    fn abort(self: Box<Self>) {
        // Drop removes the file from tmp/.
    }
}

/// A stored message waiting for its UID: its unique name, size and where it is now.
struct Placed {
    base: String,
    vsize: u64,
    target: PathBuf,
}

impl MaildirAppend {
    fn start(dir: PathBuf, hostname: &str, mailbox: &str) -> Result<Box<MaildirAppend>> {
        let base = filename::unique(hostname);
        let tmp_path = dir.join("tmp").join(&base);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp_path)
            .map_err(|e| StoreError::io("store new message", mailbox, e))?;
        Ok(Box::new(MaildirAppend {
            mailbox: mailbox.to_string(),
            dir,
            base,
            tmp_path,
            file: Some(io::BufWriter::with_capacity(65536, file)),
            size: 0,
            vsize: 0,
            last: 0,
        }))
    }

    /// A message that is already a file elsewhere in this filesystem: linked into tmp/
    /// (the same inode; nothing copied). None if it cannot be (another filesystem, no
    /// /proc): then it is written as any other.
    fn link(
        dir: PathBuf,
        hostname: &str,
        mailbox: &str,
        file: &File,
        size: u64,
        vsize: u64,
    ) -> Option<Box<MaildirAppend>> {
        let base = filename::unique(hostname);
        let tmp_path = dir.join("tmp").join(&base);
        crate::sys::link_open_file(file, &tmp_path).ok()?;
        Some(Box::new(MaildirAppend {
            mailbox: mailbox.to_string(),
            dir,
            base,
            tmp_path,
            file: None,
            size,
            vsize,
            last: 0,
        }))
    }

    /// Make the message durable in tmp/, dated `internal_date`. A linked file (`link`)
    /// is durable and dated already (the source's), as is one made so before.
    fn make_durable(&mut self, internal_date: Option<i64>) -> Result<()> {
        let Some(writer) = self.file.take() else {
            return Ok(());
        };
        let err = |e: io::Error| StoreError::io("write new message", &self.mailbox, e);
        let file = writer.into_inner().map_err(|e| err(e.into_error()))?;
        file.sync_all().map_err(err)?;
        if let Some(t) = internal_date {
            let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64);
            let _ = file.set_modified(when);
        }
        Ok(())
    }

    /// Make the message durable in tmp/ and choose its name in new/ or cur/.
    fn stage(
        &mut self,
        flags: Flags,
        keywords: &[String],
        internal_date: Option<i64>,
    ) -> Result<Staged> {
        self.make_durable(internal_date)?;
        let mut flags = flags;
        for k in keywords {
            let (_, i) = define_keyword(&self.dir, &self.mailbox, k)?;
            flags.keywords |= 1 << i;
        }
        let base = format!("{},S={},W={}", self.base, self.size, self.vsize);
        let target = if flags == Flags::default() {
            self.dir.join("new").join(&base)
        } else {
            self.dir
                .join("cur")
                .join(filename::with_flags(&base, flags))
        };
        Ok(Staged {
            mailbox: self.mailbox.clone(),
            tmp_path: std::mem::take(&mut self.tmp_path),
            placed: Placed {
                base,
                vsize: self.vsize,
                target,
            },
        })
    }
}

/// A message durable in tmp/, its place in new/ or cur/ chosen.
struct Staged {
    mailbox: String,
    tmp_path: PathBuf,
    placed: Placed,
}

impl Staged {
    fn publish(mut self) -> Result<Placed> {
        fs::rename(&self.tmp_path, &self.placed.target)
            .map_err(|e| StoreError::io("move new message out of tmp/", &self.mailbox, e))?;
        self.tmp_path = PathBuf::new();
        Ok(Placed {
            base: std::mem::take(&mut self.placed.base),
            vsize: self.placed.vsize,
            target: std::mem::take(&mut self.placed.target),
        })
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        // Never published (an error in its batch): the file is not left in tmp/.
        if !self.tmp_path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp_path);
        }
    }
}

/// The uidlist lock APPEND and COPY take before they publish anything: a lock another
/// program holds (`StoreError::Locked`) then leaves nothing to take back.
fn lock_uidlist(dir: &Path, mailbox: &str) -> Result<DotLock> {
    DotLock::acquire(&dir.join("dovecot-uidlist"), Holders::Anyone)
        .map_err(|e| StoreError::io("lock dovecot-uidlist", mailbox, e))
}

/// Number placed messages (published under `lock`), for APPENDUID and COPYUID: one
/// uidlist update for all of them (a scan racing us sees the same records), then their
/// directories synced.
fn number(lock: DotLock, dir: &Path, mailbox: &str, placed: &[Placed]) -> Result<(u32, Vec<Uid>)> {
    let err = |op: &'static str| move |e: io::Error| StoreError::io(op, mailbox, e);
    let mut list = read_uidlist(dir, mailbox)?.unwrap_or_else(|| import_or_new_uidlist(dir));
    let known: std::collections::HashMap<String, Uid> = list
        .records
        .iter()
        .map(|r| (r.base.clone(), r.uid))
        .collect();
    let mut uids = Vec::with_capacity(placed.len());
    let mut added = false;
    for p in placed {
        let uid = match known.get(&p.base) {
            Some(&uid) => uid,
            None => {
                let uid = list.next_uid;
                list.records.push(uidlist::Record {
                    uid,
                    ext: format!("W{}", p.vsize),
                    base: p.base.clone(),
                });
                list.next_uid += 1;
                added = true;
                uid
            }
        };
        uids.push(uid);
    }
    if added {
        lock.replace(list.serialize().as_bytes())
            .map_err(err("write dovecot-uidlist"))?;
    } else {
        drop(lock);
    }
    // The messages are acknowledged with their UIDs: their directory entries must
    // survive a crash as surely as their bytes. Synced after the uidlist's own syncs,
    // which on a journalling file system have mostly committed them already.
    let dirs: std::collections::BTreeSet<&Path> =
        placed.iter().filter_map(|p| p.target.parent()).collect();
    for d in dirs {
        crate::store::dotlock::sync_dir(d).map_err(err("sync new message"))?;
    }
    Ok((list.uidvalidity, uids))
}

impl Drop for MaildirAppend {
    fn drop(&mut self) {
        // Not staged (aborted, or an error before): the file is not left in tmp/.
        if !self.tmp_path.as_os_str().is_empty() {
            self.file.take();
            let _ = fs::remove_file(&self.tmp_path);
        }
    }
}

/// LIST helper shared by LIST and LSUB: names matching `pattern`.
pub fn matching<'a>(
    entries: &'a [ListEntry],
    pattern: &[u8],
) -> impl Iterator<Item = &'a ListEntry> {
    entries
        .iter()
        .filter(move |e| list_match(pattern, e.name.as_bytes()))
}
