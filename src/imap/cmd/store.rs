//! STORE and UID STORE (RFC 3501 6.4.6): FLAGS, +FLAGS, -FLAGS, with .SILENT.

use super::super::parser::{Flag, SeqSet, StoreMode};
use super::super::response;
use super::super::session::Session;
use super::append::split_flags;
use crate::store::{Flags, StoreError};

impl Session {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn cmd_store(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SeqSet,
        mode: StoreMode,
        silent: bool,
        flags: &[Flag],
        report_expunges: bool,
    ) {
        let indexes = match self.resolve_set(set, uid) {
            Ok(v) => v,
            Err(e) => return self.bad(tag, &e),
        };
        let m = self.mailbox.as_mut().expect("selected");
        if m.readonly() {
            return self.no(tag, "[READ-ONLY] Mailbox is read-only");
        }
        let (mut change, keywords) = split_flags(flags);
        for k in &keywords {
            match m.keyword_index(k) {
                Ok(i) => change.keywords |= 1 << i,
                Err(e) => return self.store_error(tag, &e),
            }
        }
        let mut text = Vec::new();
        let mut missing = false;
        for i in indexes {
            let e = &m.view().entries[i];
            if e.expunged {
                missing = true;
                continue;
            }
            let old = e.flags;
            let new = match mode {
                StoreMode::Replace => Flags {
                    system: change.system | (old.system & Flags::PASSED),
                    keywords: change.keywords,
                },
                StoreMode::Add => Flags {
                    system: old.system | change.system,
                    keywords: old.keywords | change.keywords,
                },
                StoreMode::Remove => Flags {
                    system: old.system & !change.system,
                    keywords: old.keywords & !change.keywords,
                },
            };
            if new != old {
                match m.set_flags(i, new) {
                    Ok(()) => {}
                    Err(StoreError::Expunged) => {
                        missing = true;
                        continue;
                    }
                    Err(e) => {
                        self.out_bytes(&text);
                        return self.store_error(tag, &e);
                    }
                }
            }
            if !silent {
                let e = &m.view().entries[i];
                text.extend_from_slice(format!("* {} FETCH (", i + 1).as_bytes());
                if uid {
                    text.extend_from_slice(format!("UID {} ", e.uid).as_bytes());
                }
                text.extend_from_slice(b"FLAGS ");
                response::flag_list(&mut text, e.flags, e.recent, m.keywords());
                text.extend_from_slice(b")\r\n");
            }
        }
        if let Err(e) = m.commit() {
            self.out_bytes(&text);
            return self.store_error(tag, &e);
        }
        self.out_bytes(&text);
        if missing {
            self.report_updates(report_expunges);
            self.no(tag, "[EXPUNGEISSUED] Some of the messages no longer exist");
        } else {
            self.complete(tag, report_expunges, "STORE completed");
        }
    }
}
