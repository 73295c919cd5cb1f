//! What the sessions of one process share of an mbox: its parsed state (every message's
//! offsets, UID, flags and sizes: 176 bytes a message, 17.6 MB for 100,000), one copy
//! per version of the file instead of one per session.
//!
//! A state is offered here when it describes the file at its stamp as surely as the
//! index written from it would (`imapd.index`: what another session would load at that
//! stamp anyway): after a parse that decided the mailbox's metadata, and after a write
//! of ours. The table holds it weakly, so it lives as long as a session uses it; a
//! session that changes its copy (labels new mail in memory, writes) gets its own
//! (`Arc::make_mut`), and the table's entry dies with the last user of the old one.

use super::index::{Stamp, State};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Weak};

static STATES: LazyLock<Mutex<HashMap<PathBuf, Weak<State>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The state of the mbox at `path` as of `stamp`, if a session of this process has it.
pub fn state(path: &Path, stamp: &Stamp) -> Option<Arc<State>> {
    let table = STATES.lock().unwrap_or_else(|e| e.into_inner());
    let st = table.get(path)?.upgrade()?;
    (st.stamp == *stamp).then_some(st)
}

/// Offer `state` (see the module's comment for when it may be) to the other sessions.
pub fn offer(path: &Path, state: &Arc<State>) {
    let mut table = STATES.lock().unwrap_or_else(|e| e.into_inner());
    // Entries of mailboxes nobody has open any more go (bounded by the open ones).
    table.retain(|_, w| w.strong_count() > 0);
    table.insert(path.to_path_buf(), Arc::downgrade(state));
}
