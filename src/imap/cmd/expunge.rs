//! EXPUNGE (RFC 3501 6.4.3), UID EXPUNGE (RFC 4315), CLOSE (6.4.2), UNSELECT (RFC 3691).

use super::super::parser::SeqSet;
use super::super::response::Code;
use super::super::state::Session;

impl Session {
    /// The messages an EXPUNGE looks at (within `only`, if given): all of them, since
    /// the store decides by the \Deleted flags it has now, not those the view saw.
    fn expunge_candidates(&self, only: Option<&[usize]>) -> Vec<usize> {
        let view = self.selected_ref().view();
        let all: Vec<usize> = match only {
            Some(v) => v.to_vec(),
            None => (0..view.len()).collect(),
        };
        all.into_iter()
            .filter(|&i| !view.entries[i].expunged)
            .collect()
    }

    pub(super) fn cmd_expunge(&mut self, tag: &str, set: Option<SeqSet>) {
        if self.selected_ref().readonly() {
            return self.no_code(tag, Code::ReadOnly, "Mailbox is read-only");
        }
        let only = match &set {
            Some(s) => match self.resolve_set(s, true) {
                Ok(v) => Some(v),
                Err(e) => return self.bad(tag, &e),
            },
            None => None,
        };
        let candidates = self.expunge_candidates(only.as_deref());
        if let Err(e) = self.selected().expunge_deleted(&candidates) {
            return self.store_error(tag, &e);
        }
        self.complete(tag, true, "EXPUNGE completed");
    }

    pub(super) fn cmd_close(&mut self, tag: &str, expunge: bool) {
        let candidates = if expunge {
            self.expunge_candidates(None)
        } else {
            Vec::new()
        };
        if expunge && !self.selected_ref().readonly() {
            // CLOSE expunges silently (RFC 3501 6.4.2). Still selected if it is parked
            // on a lock another program holds, to be run again.
            if let Err(e) = self.selected().expunge_deleted(&candidates) {
                if !self.waits_for_lock(&e) {
                    if let Some(mut mailbox) = self.unselect() {
                        mailbox.flush();
                    }
                }
                return self.store_error(tag, &e);
            }
        }
        let mut mailbox = self.unselect().expect("dispatch checks the state");
        mailbox.flush();
        self.ok(
            tag,
            if expunge {
                "CLOSE completed"
            } else {
                "UNSELECT completed"
            },
        );
    }
}
