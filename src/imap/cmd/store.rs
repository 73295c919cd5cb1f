//! STORE and UID STORE (RFC 3501 6.4.6): FLAGS, +FLAGS, -FLAGS, with .SILENT.

use super::super::parser::{Flag, SeqSet, StoreMode, StoreModifier};
use super::super::response::{self, Code};
use super::super::state::Session;
use super::append::split_flags;
use crate::store::{FlagChange, Flags, StoreError};

impl Session {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn cmd_store(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SeqSet,
        modifiers: Vec<StoreModifier>,
        mode: StoreMode,
        silent: bool,
        flags: &[Flag],
        report_expunges: bool,
    ) {
        // Each modifier (RFC 4466 2.5) is a condition on the change.
        if let Some(modifier) = modifiers.first() {
            match *modifier {}
        }
        let indexes = match self.resolve_set(set, uid) {
            Ok(v) => v,
            Err(e) => return self.bad(tag, &e),
        };
        let m = self.selected();
        if m.readonly() {
            return self.no_code(tag, Code::ReadOnly, "Mailbox is read-only");
        }
        let (mut requested, keywords) = split_flags(flags);
        for k in &keywords {
            match m.keyword_index(k) {
                Ok(i) => requested.keywords |= 1 << i,
                Err(e) => return self.store_error(tag, &e),
            }
        }
        let change = match mode {
            StoreMode::Replace => FlagChange::replace(requested),
            StoreMode::Add => FlagChange::add(requested),
            StoreMode::Remove => FlagChange::remove(requested),
        };
        // Applied to the flags as they are in the store now (another session's change
        // since our last sync survives). A message another session expunged meanwhile
        // is skipped quietly, as Dovecot and Cyrus do: its EXPUNGE follows.
        let mut expected = Vec::with_capacity(indexes.len());
        for i in indexes {
            let before = m.view().entries[i].flags;
            match m.change_flags(i, change) {
                Ok(()) => expected.push((i, change.apply(before))),
                Err(StoreError::Expunged) => {}
                Err(e) => {
                    // What was changed already is written; the client hears of it later.
                    let _ = m.commit();
                    return self.store_error(tag, &e);
                }
            }
        }
        if let Err(e) = m.commit() {
            return self.store_error(tag, &e);
        }
        self.announce_new_keywords();
        let m = self.selected_ref();
        let mut text = Vec::new();
        for (i, expected) in expected {
            let e = &m.view().entries[i];
            if e.expunged {
                continue; // found gone when written: no FETCH about it
            }
            // .SILENT still reports flags that differ from what the client asked for
            // (another session's change was merged in): its model must stay true.
            let imap_flags = |f: Flags| (f.system & !Flags::PASSED, f.keywords);
            if silent && imap_flags(e.flags) == imap_flags(expected) {
                continue;
            }
            let shown_uid = (uid || silent).then_some(e.uid);
            response::fetch_flags(&mut text, i + 1, shown_uid, e.flags, e.recent, m.keywords());
        }
        self.out_bytes(&text);
        self.complete(tag, report_expunges, "STORE completed");
    }
}
