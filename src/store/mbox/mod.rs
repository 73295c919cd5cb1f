//! Berkeley mbox store, the layout of UW imapd and of Dovecot's `mbox:` location:
//! INBOX is the spool file the MTA delivers to (`SPOOL_DIR/USER`, Debian's /var/mail),
//! other folders are mbox files under a directory in the home (`~/mail`), and a folder's
//! children live in a directory of the same name, so the hierarchy delimiter is `/`.
//! Per-folder index and journal files live under `<folders>/.imap/<name>/`, beside
//! Dovecot's own (it keeps `dovecot.index*` there); subscriptions in
//! `<folders>/.subscriptions`, as Dovecot keeps them.

pub mod folder;
pub mod index;
pub mod journal;
pub mod lock;
pub mod parse;
mod shared;
pub mod write;

use super::names::MailboxName;
use super::undo::UndoRecord;
use super::{
    AppendSink, CopyInto, Flags, ListEntry, Mailbox, NewMessage, Result, StatusInfo, Store,
    StoreError, Uid,
};
use folder::MboxFolder;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const DELIMITER: char = '/';

/// Deepest folder hierarchy listed (a directory loop cannot make LIST run forever).
const MAX_DEPTH: usize = 32;

pub struct MboxStore {
    inbox: PathBuf,
    folders: PathBuf,
}

pub(super) fn mkdir_private(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Is `p` a real directory (not a symlink)?
fn is_dir(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
}

fn is_file(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.is_file())
}

impl MboxStore {
    /// The store with INBOX at `inbox` and folders under `folders`. A missing INBOX is
    /// created as the spool expects it.
    pub fn open(inbox: PathBuf, folders: PathBuf) -> io::Result<MboxStore> {
        if fs::symlink_metadata(&inbox).is_err() {
            lock::create_mbox(&inbox)?;
        }
        Ok(MboxStore { inbox, folders })
    }

    /// Where a mailbox's file is. `MailboxName` has already confined every level (no
    /// empty, `.`-led or `/`-containing level), so joining stays under `folders`.
    fn path_of(&self, name: &MailboxName) -> PathBuf {
        if name.is_inbox() {
            self.inbox.clone()
        } else {
            self.folders.join(name.as_str())
        }
    }

    fn index_dir(&self, name: &MailboxName) -> PathBuf {
        self.folders.join(".imap").join(name.as_str())
    }

    /// The parent directories of a folder must be real directories, not symlinks.
    fn parents_ok(&self, name: &MailboxName) -> bool {
        let mut p = self.folders.clone();
        if !is_dir(&p) {
            return false;
        }
        for part in name.as_str().split(DELIMITER).take(name.levels() - 1) {
            p.push(part);
            if !is_dir(&p) {
                return false;
            }
        }
        true
    }

    fn existing_file(&self, name: &MailboxName) -> Result<PathBuf> {
        if name.is_inbox() {
            return Ok(self.inbox.clone());
        }
        let p = self.path_of(name);
        if self.parents_ok(name) && is_file(&p) {
            Ok(p)
        } else {
            Err(StoreError::NoSuchMailbox)
        }
    }

    fn check_not_under_inbox(name: &MailboxName) -> Result<()> {
        if name.as_str().starts_with("INBOX/") {
            return Err(StoreError::NotAllowed(
                "INBOX is a mail file here and cannot have children",
            ));
        }
        Ok(())
    }

    fn walk(&self, dir: &Path, prefix: &str, depth: usize, out: &mut BTreeMap<String, ListEntry>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for ent in rd.flatten() {
            let fname = ent.file_name();
            let Some(n) = fname.to_str() else { continue };
            let full = format!("{prefix}{n}");
            let Ok(parsed) = MailboxName::parse_with(full.as_bytes(), DELIMITER) else {
                continue; // dot files (.imap, .subscriptions), names no client could send
            };
            if parsed.as_str() != full || parsed.is_inbox() {
                continue;
            }
            let Ok(ft) = ent.file_type() else { continue };
            if ft.is_file() {
                out.insert(
                    full.clone(),
                    ListEntry {
                        name: full,
                        noselect: false,
                        has_children: false,
                    },
                );
            } else if ft.is_dir() && depth < MAX_DEPTH {
                let mut children = BTreeMap::new();
                self.walk(&ent.path(), &format!("{full}/"), depth + 1, &mut children);
                out.insert(
                    full.clone(),
                    ListEntry {
                        name: full,
                        noselect: true,
                        has_children: !children.is_empty(),
                    },
                );
                out.extend(children);
            }
        }
    }

    /// Make the directories above a folder; none may be a file or a symlink.
    fn make_parents(&self, name: &MailboxName) -> Result<()> {
        let mut p = self.folders.clone();
        mkdir_private(&p).map_err(|e| StoreError::io("create mailbox", name.as_str(), e))?;
        for part in name.as_str().split(DELIMITER).take(name.levels() - 1) {
            p.push(part);
            match fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(StoreError::NotAllowed(
                        "A parent of that name is a mailbox that cannot have children",
                    ));
                }
                Err(_) => fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&p)
                    .map_err(|e| StoreError::io("create mailbox", name.as_str(), e))?,
            }
        }
        Ok(())
    }

    fn subscriptions_path(&self) -> PathBuf {
        self.folders.join(".subscriptions")
    }

    fn open_folder(&self, name: &MailboxName, readonly: bool) -> Result<MboxFolder> {
        let path = self.existing_file(name)?;
        MboxFolder::open(name.as_str(), path, self.index_dir(name), readonly)
    }
}

impl Store for MboxStore {
    fn delimiter(&self) -> char {
        DELIMITER
    }

    fn list(&mut self) -> Result<Vec<ListEntry>> {
        let mut all = BTreeMap::new();
        self.walk(&self.folders.clone(), "", 0, &mut all);
        all.insert(
            "INBOX".into(),
            ListEntry {
                name: "INBOX".into(),
                noselect: false,
                has_children: false,
            },
        );
        Ok(all.into_values().collect())
    }

    fn exists(&mut self, name: &MailboxName) -> bool {
        self.existing_file(name).is_ok()
    }

    fn create(&mut self, name: &MailboxName) -> Result<()> {
        Self::check_not_under_inbox(name)?;
        if name.is_inbox() || fs::symlink_metadata(self.path_of(name)).is_ok() {
            return Err(StoreError::AlreadyExists);
        }
        let path = self.path_of(name);
        self.make_parents(name)?;
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => StoreError::AlreadyExists,
                _ => StoreError::io("create mailbox", name.as_str(), e),
            })?;
        Ok(())
    }

    fn delete(&mut self, name: &MailboxName) -> Result<()> {
        if name.is_inbox() {
            return Err(StoreError::NotAllowed("INBOX cannot be deleted"));
        }
        let path = self.path_of(name);
        if !self.parents_ok(name) {
            return Err(StoreError::NoSuchMailbox);
        }
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => {
                fs::remove_file(&path)
                    .map_err(|e| StoreError::io("delete mailbox", name.as_str(), e))?;
                let _ = fs::remove_dir_all(self.index_dir(name));
                Ok(())
            }
            Ok(m) if m.is_dir() => fs::remove_dir(&path).map_err(|e| {
                if e.raw_os_error() == Some(libc::ENOTEMPTY) {
                    StoreError::NotAllowed("The mailbox has children; delete them first")
                } else {
                    StoreError::io("delete mailbox", name.as_str(), e)
                }
            }),
            _ => Err(StoreError::NoSuchMailbox),
        }
    }

    fn rename(&mut self, from: &MailboxName, to: &MailboxName) -> Result<()> {
        Self::check_not_under_inbox(to)?;
        if to.is_inbox() || fs::symlink_metadata(self.path_of(to)).is_ok() {
            return Err(StoreError::AlreadyExists);
        }
        if from.is_inbox() {
            // RFC 3501 6.3.5: INBOX's messages move to the new mailbox; INBOX stays, empty.
            self.create(to)?;
            let mut src = self.open_folder(from, false)?;
            let mut dst = self.open_folder(to, false)?;
            let n = src.view().len();
            for i in 0..n {
                let data = src.read(i)?;
                let date = src.internal_date(i)?;
                let flags = src.view().entries[i].flags;
                let names: Vec<String> = (0..32)
                    .filter(|b| flags.keywords & (1 << b) != 0)
                    .filter_map(|b| src.keywords().get(b).cloned())
                    .collect();
                dst.append(&data, flags, &names, date)?;
            }
            let all: Vec<usize> = (0..n).collect();
            src.expunge(&all)?;
            return Ok(());
        }
        let src = self.path_of(from);
        // A folder is a file or a directory of folders, never a symlink (one planted in
        // the folders to /etc or another user's mail is not a mailbox to move).
        let real = fs::symlink_metadata(&src).is_ok_and(|m| m.is_file() || m.is_dir());
        if !self.parents_ok(from) || !real {
            return Err(StoreError::NoSuchMailbox);
        }
        if to.as_str().starts_with(&format!("{}/", from.as_str())) {
            return Err(StoreError::NotAllowed(
                "A mailbox cannot be moved into itself",
            ));
        }
        self.make_parents(to)?;
        let dst = self.path_of(to);
        fs::rename(&src, &dst).map_err(|e| StoreError::io("rename mailbox", from.as_str(), e))?;
        let (old_index, new_index) = (self.index_dir(from), self.index_dir(to));
        if is_dir(&old_index) {
            let _ = mkdir_private(new_index.parent().expect("has a parent"));
            let _ = fs::remove_dir_all(&new_index);
            let _ = fs::rename(&old_index, &new_index);
        }
        Ok(())
    }

    fn subscriptions(&mut self) -> Result<Vec<String>> {
        match fs::read_to_string(self.subscriptions_path()) {
            Ok(t) => Ok(t
                .lines()
                .filter(|l| !l.is_empty() && !l.starts_with("V\t"))
                .map(|l| l.replace('\t', "/"))
                .collect()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(StoreError::io("read subscriptions", "", e)),
        }
    }

    fn set_subscribed(&mut self, name: &str, subscribed: bool) -> Result<()> {
        mkdir_private(&self.folders).map_err(|e| StoreError::io("write subscriptions", "", e))?;
        let path = self.subscriptions_path();
        super::update_subscriptions(&path, || self.subscriptions(), name, subscribed)
    }

    fn open(&mut self, name: &MailboxName, readonly: bool) -> Result<Box<dyn Mailbox>> {
        Ok(Box::new(self.open_folder(name, readonly)?))
    }

    fn status(&mut self, name: &MailboxName, _with_size: bool) -> Result<StatusInfo> {
        let f = self.open_folder(name, true)?;
        let v = f.view();
        Ok(StatusInfo {
            messages: v.len() as u32,
            recent: v.recent_count(),
            uidnext: f.uidnext(),
            uidvalidity: f.uidvalidity(),
            unseen: v
                .entries
                .iter()
                .filter(|e| !e.flags.has(Flags::SEEN))
                .count() as u32,
            size: f.total_size(),
        })
    }

    fn state_dir(&mut self) -> Result<PathBuf> {
        // INBOX's index directory: beside /var/mail's spool, the user's own.
        let dir = self.index_dir(&MailboxName::inbox());
        mkdir_private(&dir).map_err(|e| StoreError::io("make a private directory", "INBOX", e))?;
        Ok(dir)
    }

    fn copy_into(&mut self, name: &MailboxName) -> Result<Box<dyn CopyInto>> {
        let path = self.existing_file(name)?;
        let index_dir = self.index_dir(name);
        mkdir_private(&index_dir).map_err(|e| StoreError::io("start a copy", name.as_str(), e))?;
        // Opened as EXAMINE would, as for APPEND.
        let folder = MboxFolder::open(name.as_str(), path, index_dir.clone(), true)?;
        Ok(Box::new(MboxCopy {
            folder,
            index_dir,
            record: None,
            uidvalidity: 0,
        }))
    }

    fn append(&mut self, name: &MailboxName) -> Result<Box<dyn AppendSink>> {
        let path = self.existing_file(name)?;
        let index_dir = self.index_dir(name);
        mkdir_private(&index_dir)
            .map_err(|e| StoreError::io("store new message", name.as_str(), e))?;
        // The message is spooled privately first: the mbox is locked only to add it.
        let spool = folder_temp(&index_dir)
            .map_err(|e| StoreError::io("store new message", name.as_str(), e))?;
        Ok(Box::new(MboxAppend {
            name: name.as_str().to_string(),
            path,
            index_dir,
            spool: io::BufWriter::with_capacity(1 << 16, spool),
        }))
    }
}

/// COPY and MOVE into an mbox (see `store::undo`): each message appended as APPEND
/// does, its UID named in the undo record (in the mailbox's index directory) before it
/// is written; undoing removes those UIDs by one rewrite.
struct MboxCopy {
    folder: MboxFolder,
    index_dir: PathBuf,
    record: Option<UndoRecord>,
    uidvalidity: u32,
}

impl CopyInto for MboxCopy {
    fn add(&mut self, messages: Vec<NewMessage>) -> Result<Vec<Uid>> {
        let name = self.folder.name().to_string();
        if self.record.is_none() {
            let r = UndoRecord::create(&self.index_dir)
                .map_err(|e| StoreError::io("start a copy", &name, e))?;
            self.record = Some(r);
        }
        let record = self.record.as_mut().expect("created above");
        let stored = self.folder.append_batch(messages, &mut |v, uid| {
            record.add(&[MboxFolder::copy_record_line(v, uid)])
        })?;
        if let Some(&(v, _)) = stored.first() {
            self.uidvalidity = v;
        }
        Ok(stored.into_iter().map(|(_, uid)| uid).collect())
    }

    fn uidvalidity(&self) -> u32 {
        self.uidvalidity
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        if let Some(r) = &self.record {
            // On failure self is dropped with its record: the copy is taken back.
            r.commit()
                .map_err(|e| StoreError::io("finish a copy", self.folder.name(), e))?;
        }
        self.record = None;
        Ok(())
    }
}

impl Drop for MboxCopy {
    fn drop(&mut self) {
        let Some(record) = self.record.take() else {
            return;
        };
        match self.folder.undo_copy(&record) {
            Ok(()) => record.discard(),
            // Left for the next open to undo (the lock goes with the record's descriptor).
            Err(e) => crate::log::warning(&format!(
                "copy into {}: not undone now, left for the next open: {e}",
                self.folder.name()
            )),
        }
    }
}

fn folder_temp(dir: &Path) -> io::Result<File> {
    let p = dir.join(format!(
        "imapd.append.{}",
        crate::store::maildir::filename::unique("a")
    ));
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&p)?;
    fs::remove_file(&p)?;
    Ok(f)
}

struct MboxAppend {
    name: String,
    path: PathBuf,
    index_dir: PathBuf,
    spool: io::BufWriter<File>,
}

impl AppendSink for MboxAppend {
    fn write(&mut self, data: &[u8]) -> Result<()> {
        self.spool
            .write_all(data)
            .map_err(|e| StoreError::io("store new message", &self.name, e))
    }

    fn commit(
        &mut self,
        flags: Flags,
        keywords: &[String],
        internal_date: Option<i64>,
    ) -> Result<(u32, Uid)> {
        let err = |e: io::Error| StoreError::io("store new message", &self.name, e);
        self.spool.flush().map_err(err)?;
        use std::io::Seek;
        self.spool.get_mut().rewind().map_err(err)?;
        // Opened as EXAMINE would: appending needs only the file's write access, and a
        // read-write open would claim the \Recent of the messages appended before.
        let mut folder =
            MboxFolder::open(&self.name, self.path.clone(), self.index_dir.clone(), true)?;
        let date = internal_date.unwrap_or_else(crate::util::date::now);
        // Streamed from the private spool: a 100 MB message is not held in memory.
        let mut reader = io::BufReader::with_capacity(1 << 16, self.spool.get_ref());
        folder.append_from(&mut reader, flags, keywords, date)
    }

    fn abort(self: Box<Self>) {}
}
