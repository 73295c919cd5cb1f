//! What the sessions of one process that have the same folder open share instead of
//! each keeping a copy (a daemon serves all of a user's sessions from one process):
//! the parsed dovecot-uidlist, one per version of the file, and the message file names
//! their views point at. With 30,000 messages each costs about 3 MB a session when not
//! shared. Entries go when no session holds them any more.

use super::uidlist::Uidlist;
use crate::store::view::Locator;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};

/// A version of a dovecot-uidlist file: its mtime (ns), and its size with its inode.
type Version = (i64, u64);

struct Folder {
    uidlist: Option<(Version, Weak<Uidlist>)>,
    names: Weak<Names>,
}

static FOLDERS: LazyLock<Mutex<HashMap<PathBuf, Folder>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn folders() -> MutexGuard<'static, HashMap<PathBuf, Folder>> {
    FOLDERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The table's entry for `dir`, made if missing. Folders nobody holds any more go
/// first when the table has doubled since the last sweep (a sweep per as many
/// insertions as there are entries).
fn folder<'t>(table: &'t mut HashMap<PathBuf, Folder>, dir: &Path) -> &'t mut Folder {
    if table.len() >= 64 && table.len().is_power_of_two() {
        table.retain(|_, f| {
            f.names.strong_count() > 0
                || f.uidlist
                    .as_ref()
                    .is_some_and(|(_, l)| l.strong_count() > 0)
        });
    }
    table.entry(dir.to_path_buf()).or_insert_with(|| Folder {
        uidlist: None,
        names: Weak::new(),
    })
}

/// The uidlist of `dir` as another session parsed it from this version of the file.
pub fn uidlist(dir: &Path, version: Version) -> Option<Arc<Uidlist>> {
    match folders().get(dir)?.uidlist.as_ref() {
        Some((v, list)) if *v == version => list.upgrade(),
        _ => None,
    }
}

/// Offer a uidlist parsed from this version of the file to the folder's other sessions.
pub fn keep_uidlist(dir: &Path, version: Version, list: &Arc<Uidlist>) {
    folder(&mut folders(), dir).uidlist = Some((version, Arc::downgrade(list)));
}

/// The file names of the folder `dir`, as shared by its sessions in this process.
pub fn names(dir: &Path) -> Arc<Names> {
    let mut table = folders();
    let folder = folder(&mut table, dir);
    if let Some(names) = folder.names.upgrade() {
        return names;
    }
    let names = Arc::new(Names {
        set: Mutex::new(HashSet::new()),
    });
    folder.names = Arc::downgrade(&names);
    names
}

/// One folder's message file names (`cur/NAME:2,FLAGS`), each held once.
pub struct Names {
    set: Mutex<HashSet<Locator>>,
}

impl Names {
    /// The shared copy of `name`.
    pub fn intern(&self, name: &str) -> Locator {
        self.interning().intern(name)
    }

    /// The table held for many names in a row (a scan: one lock, not one per file).
    pub fn interning(&self) -> Interning<'_> {
        Interning(self.set.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

pub struct Interning<'a>(MutexGuard<'a, HashSet<Locator>>);

impl Interning<'_> {
    /// The shared copy of `name`.
    pub fn intern(&mut self, name: &str) -> Locator {
        let set = &mut self.0;
        if let Some(n) = set.get(name) {
            return n.clone();
        }
        // Names no view points at any more (renamed by a flag change, expunged) go
        // when the table has doubled since the last sweep.
        if set.len() >= 1024 && set.len().is_power_of_two() {
            set.retain(|n| Locator::holders(n) > 1);
        }
        let n = Locator::new(name);
        set.insert(n.clone());
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_of_a_folder_share_its_names_and_uidlist() {
        let dir = Path::new("/nonexistent/shared-test/.Folder");
        let a = names(dir);
        let b = names(dir);
        let x = a.intern("cur/1.M1P1.host:2,S");
        let y = b.intern("cur/1.M1P1.host:2,S");
        assert!(Locator::same(&x, &y));
        let list = Arc::new(Uidlist::new(7));
        keep_uidlist(dir, (1, 2), &list);
        assert!(Arc::ptr_eq(&uidlist(dir, (1, 2)).unwrap(), &list));
        assert!(
            uidlist(dir, (1, 3)).is_none(),
            "another version of the file"
        );
        drop(list);
        assert!(uidlist(dir, (1, 2)).is_none(), "nobody holds it");
    }

    #[test]
    fn names_nobody_holds_are_dropped() {
        let names = names(Path::new("/nonexistent/shared-test/.Sweep"));
        let kept: Vec<Locator> = (0..600)
            .map(|i| names.intern(&format!("cur/{i}")))
            .collect();
        for i in 0..5000 {
            names.intern(&format!("new/{i}"));
        }
        let set = names.set.lock().unwrap();
        assert!(set.len() < 5000, "{}", set.len());
        assert!(kept.iter().all(|k| set.contains(k)));
    }
}
