//! Undo records for COPY and MOVE: all or nothing (RFC 3501 6.4.7), also across kill -9.
//!
//! A copy of many messages is made in batches, a step each, and each batch is visible
//! in the destination as soon as it is stored. Before a batch becomes visible, the
//! lines that name its messages (a Maildir file's unique name, an mbox UID) are added
//! to an undo record beside the destination and synced. When the last batch is in,
//! the record is removed: that is the copy's commit. A copy that fails is undone at
//! once; one whose process died leaves its record, and the next session to open the
//! destination removes the messages it names.
//!
//! Telling a dead copier's record from a live one's: it is held with an OFD lock for as
//! long as the copy runs (the kernel drops it when the process dies), as our uidlist
//! dot-locks are. It is created under another name and renamed once locked, so a record
//! nobody holds is a dead copier's from the first instant.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::dotlock::sync_dir;
use super::filelock::ofd_lock;

/// Records are named PREFIX + a unique part, in the directory they guard.
pub const PREFIX: &str = "imapd-copy-undo.";
/// A record being created (not yet locked); it names nothing.
const NEW_PREFIX: &str = "imapd-copy-new.";
/// A record being created is locked within microseconds: one this old that nobody
/// holds was left by a copier that died in between. (Younger, it may be a live
/// creator's not locked yet: removing it then broke that copy.)
const NEW_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// The record of a copy under way, held (locked) until `commit` or drop.
pub struct UndoRecord {
    path: PathBuf,
    file: File,
}

impl UndoRecord {
    pub fn create(dir: &Path) -> io::Result<UndoRecord> {
        let unique = super::maildir::filename::unique("u");
        let new_path = dir.join(format!("{NEW_PREFIX}{unique}"));
        let file = OpenOptions::new()
            .append(true)
            .read(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&new_path)?;
        let path = dir.join(format!("{PREFIX}{unique}"));
        let locked = ofd_lock(&file, libc::F_WRLCK as libc::c_short)
            .and_then(|ok| match ok {
                true => Ok(()),
                false => Err(io::Error::other("a new undo record is locked by another")),
            })
            .and_then(|()| std::fs::rename(&new_path, &path));
        if let Err(e) = locked {
            let _ = std::fs::remove_file(&new_path);
            return Err(e);
        }
        // The record must exist after a crash before anything it names does.
        sync_dir(dir)?;
        Ok(UndoRecord { path, file })
    }

    /// Add lines naming what is about to become visible, durably.
    pub fn add(&mut self, lines: &[String]) -> io::Result<()> {
        let mut text = String::new();
        for l in lines {
            debug_assert!(!l.contains('\n'));
            text.push_str(l);
            text.push('\n');
        }
        self.file.write_all(text.as_bytes())?;
        self.file.sync_data()
    }

    /// The lines written so far (for undoing now).
    pub fn lines(&self) -> io::Result<Vec<String>> {
        read_lines(&self.path)
    }

    /// The copy is complete: the record goes, durably, before the client is told.
    pub fn commit(&self) -> io::Result<()> {
        remove_durably(&self.path)
    }

    /// The copy was undone: the record goes.
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn read_lines(path: &Path) -> io::Result<Vec<String>> {
    let mut text = String::new();
    File::open(path)?.read_to_string(&mut text)?;
    // A line cut short by the crash was never followed by the batch it names.
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    Ok(complete
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// A dead copier's record: its lines to undo; `done` once they are.
pub struct Abandoned {
    pub path: PathBuf,
    pub lines: Vec<String>,
    _held: File,
}

impl Abandoned {
    pub fn done(self) {
        let _ = remove_durably(&self.path);
    }
}

/// Remove a record so that it stays removed after a crash.
fn remove_durably(path: &Path) -> io::Result<()> {
    std::fs::remove_file(path)?;
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

/// The records in `dir` whose copier died, each now held by us (two sessions do not
/// undo the same one at once). Cheap when there are none: one directory listing.
pub fn abandoned(dir: &Path) -> Vec<Abandoned> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let leftover = name.starts_with(NEW_PREFIX);
        if !name.starts_with(PREFIX) && !leftover {
            continue;
        }
        let path = e.path();
        let Ok(f) = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
        else {
            continue;
        };
        let Ok(meta) = f.metadata() else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let age = meta
            .modified()
            .ok()
            .and_then(|t| std::time::SystemTime::now().duration_since(t).ok());
        if leftover && age.is_none_or(|a| a < NEW_GRACE) {
            continue;
        }
        if !ofd_lock(&f, libc::F_WRLCK as libc::c_short).unwrap_or(false) {
            continue; // its copy is still running (or its record being created)
        }
        if leftover {
            // Its copier died before it named anything.
            let _ = std::fs::remove_file(&path);
            continue;
        }
        match read_lines(&path) {
            Ok(lines) => out.push(Abandoned {
                path,
                lines,
                _held: f,
            }),
            Err(_) => continue,
        }
    }
    out
}

/// Are there any records in `dir` at all (live or not)? For a cheap check before work.
pub fn any(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut it| {
        it.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with(PREFIX)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_record_is_left_and_a_dropped_one_is_found_with_its_complete_lines() {
        let dir = std::env::temp_dir().join(format!("imapd-undo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut r = UndoRecord::create(&dir).unwrap();
        r.add(&["a".into(), "b".into()]).unwrap();
        assert_eq!(r.lines().unwrap(), ["a", "b"]);
        // Held: not abandoned.
        assert!(abandoned(&dir).is_empty());
        // A torn last line (the crash came mid-write) is not undone.
        let path = r.path.clone();
        drop(r);
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"c")
            .unwrap();
        // A record being created is left alone while young (its creator may not have
        // locked it yet); old, it was left by a copier that died, and is cleared away.
        let new = dir.join(format!("{NEW_PREFIX}x"));
        std::fs::write(&new, b"").unwrap();
        assert!(abandoned(&dir).iter().all(|a| a.path != new));
        assert!(new.exists());
        let old = std::time::SystemTime::now() - NEW_GRACE * 2;
        File::options()
            .write(true)
            .open(&new)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let found = abandoned(&dir);
        assert!(!new.exists());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].lines, ["a", "b"]);
        // Held by the finder meanwhile: a second look does not take it too.
        assert!(abandoned(&dir).is_empty());
        found.into_iter().for_each(Abandoned::done);
        assert!(!any(&dir));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
