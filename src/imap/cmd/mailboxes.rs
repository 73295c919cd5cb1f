//! Mailbox commands: SELECT, EXAMINE (RFC 3501 6.3.1-2), CREATE, DELETE, RENAME
//! (6.3.3-5), SUBSCRIBE, UNSUBSCRIBE (6.3.6-7), LIST, LSUB (6.3.8-9), STATUS (6.3.10).
//! Every name passes through `MailboxName::parse`, the store's single gate.

use super::super::parser::{SelectArgs, StatusAtt};
use super::super::response::{self, Code, Status};
use super::super::state::Session;
use crate::store::names::list_match_with;
use crate::store::{Flags, Mailbox, MailboxName, StoreError};

impl Session {
    /// The hierarchy delimiter of the user's store.
    pub(super) fn delimiter(&self) -> char {
        self.store_ref()
            .map_or(crate::store::DELIMITER, |s| s.delimiter())
    }

    /// Validate a client's mailbox name, answering NO if it is not acceptable.
    pub(super) fn mailbox_name(&mut self, tag: &str, raw: &[u8]) -> Option<MailboxName> {
        match MailboxName::parse_with(raw, self.delimiter()) {
            Ok(n) => Some(n),
            Err(why) => {
                crate::log::notice(&format!(
                    "mailbox name refused user={} peer={} name={:?} reason={why}",
                    self.user_name(),
                    self.peer,
                    String::from_utf8_lossy(raw)
                ));
                self.no_code(tag, Code::Cannot, &format!("Invalid mailbox name: {why}"));
                None
            }
        }
    }

    pub(super) fn cmd_select(&mut self, tag: &str, args: SelectArgs, readonly: bool) {
        // Each parameter (RFC 4466 2.1) changes how the mailbox is opened and reported.
        if let Some(param) = args.params.first() {
            match *param {}
        }
        let raw = &args.mailbox[..];
        // Selecting, even a failed SELECT, leaves the previous mailbox (RFC 3501 6.3.1).
        if let Some(mut old) = self.unselect() {
            old.flush();
            self.untagged(Status::Ok, Some(Code::Closed), "Previous mailbox closed");
        }
        let Some(name) = self.mailbox_name(tag, raw) else {
            return;
        };
        let store = self.store();
        let mailbox = match store.open(&name, readonly) {
            Ok(m) => m,
            Err(e) => return self.store_error(tag, &e),
        };
        let view = mailbox.view();
        let mut text = flags_announcement(mailbox.as_ref(), readonly);
        self.announced_keywords = mailbox.keywords().len();
        text.extend_from_slice(
            format!(
                "* {} EXISTS\r\n* {} RECENT\r\n",
                view.len(),
                view.recent_count()
            )
            .as_bytes(),
        );
        if let Some(i) = view.entries.iter().position(|e| !e.flags.has(Flags::SEEN)) {
            let code = Code::Unseen(i as u32 + 1);
            response::status(&mut text, "*", Status::Ok, Some(&code), "First unseen");
        }
        let code = Code::UidValidity(mailbox.uidvalidity());
        response::status(&mut text, "*", Status::Ok, Some(&code), "UIDs valid");
        let code = Code::UidNext(mailbox.uidnext());
        response::status(
            &mut text,
            "*",
            Status::Ok,
            Some(&code),
            "Predicted next UID",
        );
        self.out_bytes(&text);
        self.select(mailbox);
        if readonly {
            self.ok_code(tag, Code::ReadOnly, "EXAMINE completed");
        } else {
            self.ok_code(tag, Code::ReadWrite, "SELECT completed");
        }
    }

    /// `* FLAGS` and PERMANENTFLAGS again if the selected mailbox has keywords the client
    /// was not told of (STORE made one, or another session did).
    pub(super) fn announce_new_keywords(&mut self) {
        let Some(m) = self.mailbox() else {
            return;
        };
        let known = m.keywords().len();
        if known != self.announced_keywords {
            let text = flags_announcement(m, m.readonly());
            self.announced_keywords = known;
            self.out_bytes(&text);
        }
    }

    pub(super) fn cmd_create(&mut self, tag: &str, raw: &[u8]) {
        // A trailing delimiter declares a future hierarchy (RFC 3501 6.3.3); Maildir++
        // needs no directory for it, so it is dropped.
        let delim = [self.delimiter() as u8];
        let raw = raw.strip_suffix(&delim[..]).unwrap_or(raw);
        let Some(name) = self.mailbox_name(tag, raw) else {
            return;
        };
        let r = self.store().create(&name);
        match r {
            Ok(()) => self.ok(tag, "CREATE completed"),
            Err(e) => self.store_error(tag, &e),
        }
    }

    pub(super) fn cmd_delete(&mut self, tag: &str, raw: &[u8]) {
        let Some(name) = self.mailbox_name(tag, raw) else {
            return;
        };
        if self.mailbox().is_some_and(|m| m.name() == name.as_str()) {
            return self.no_code(
                tag,
                Code::InUse,
                "The mailbox is selected; select another or CLOSE first",
            );
        }
        let r = self.store().delete(&name);
        match r {
            Ok(()) => self.ok(tag, "DELETE completed"),
            Err(e) => self.store_error(tag, &e),
        }
    }

    pub(super) fn cmd_rename(&mut self, tag: &str, from: &[u8], to: &[u8]) {
        let Some(from) = self.mailbox_name(tag, from) else {
            return;
        };
        let Some(to) = self.mailbox_name(tag, to) else {
            return;
        };
        if !from.is_inbox() && self.mailbox().is_some_and(|m| m.name() == from.as_str()) {
            return self.no_code(
                tag,
                Code::InUse,
                "The mailbox is selected; select another or CLOSE first",
            );
        }
        let r = self.store().rename(&from, &to);
        match r {
            Ok(()) => self.complete(tag, true, "RENAME completed"),
            Err(e) => self.store_error(tag, &e),
        }
    }

    pub(super) fn cmd_subscribe(&mut self, tag: &str, raw: &[u8], subscribe: bool) {
        let Some(name) = self.mailbox_name(tag, raw) else {
            return;
        };
        let store = self.store();
        if subscribe && !store.exists(&name) {
            return self.no_code(tag, Code::NonExistent, "Mailbox does not exist");
        }
        match store.set_subscribed(name.as_str(), subscribe) {
            Ok(()) => self.ok(
                tag,
                if subscribe {
                    "SUBSCRIBE completed"
                } else {
                    "UNSUBSCRIBE completed"
                },
            ),
            Err(e) => self.store_error(tag, &e),
        }
    }

    pub(super) fn cmd_list(&mut self, tag: &str, reference: &[u8], pattern: &[u8], lsub: bool) {
        let cmd = if lsub { "LSUB" } else { "LIST" };
        let delim = self.delimiter();
        if pattern.is_empty() {
            // RFC 3501 6.3.8: the hierarchy delimiter and root.
            if !lsub {
                self.out(&format!("* LIST (\\Noselect) \"{delim}\" \"\"\r\n"));
            }
            return self.ok(tag, &format!("{cmd} completed"));
        }
        let mut full = reference.to_vec();
        full.extend_from_slice(pattern);
        // INBOX is case-insensitive, in patterns too.
        if full.len() >= 5
            && full[..5].eq_ignore_ascii_case(b"INBOX")
            && full
                .get(5)
                .is_none_or(|&c| c == delim as u8 || c == b'*' || c == b'%')
        {
            full[..5].copy_from_slice(b"INBOX");
        }
        let store = self.store();
        let all = match store.list() {
            Ok(l) => l,
            Err(e) => return self.store_error(tag, &e),
        };
        let mut text = Vec::new();
        if lsub {
            let subs = match store.subscriptions() {
                Ok(s) => s,
                Err(e) => return self.store_error(tag, &e),
            };
            for (name, noselect) in lsub_answers(&subs, &all, &full, delim) {
                let attrs = if noselect { "\\Noselect" } else { "" };
                text.extend_from_slice(format!("* LSUB ({attrs}) \"{delim}\" ").as_bytes());
                response::mailbox(&mut text, &name);
                text.extend_from_slice(b"\r\n");
            }
        } else {
            for e in all
                .iter()
                .filter(|e| list_match_with(&full, e.name.as_bytes(), delim))
            {
                let mut attrs = Vec::new();
                if e.noselect {
                    attrs.push("\\Noselect");
                }
                attrs.push(if e.has_children {
                    "\\HasChildren"
                } else {
                    "\\HasNoChildren"
                });
                text.extend_from_slice(
                    format!("* LIST ({}) \"{delim}\" ", attrs.join(" ")).as_bytes(),
                );
                response::mailbox(&mut text, &e.name);
                text.extend_from_slice(b"\r\n");
            }
        }
        self.out_bytes(&text);
        self.ok(tag, &format!("{cmd} completed"));
    }

    pub(super) fn cmd_status(&mut self, tag: &str, raw: &[u8], atts: &[StatusAtt]) {
        let Some(name) = self.mailbox_name(tag, raw) else {
            return;
        };
        let with_size = atts.iter().any(|a| matches!(a, StatusAtt::Size));
        let st = match self.store().status(&name, with_size) {
            Ok(s) => s,
            Err(StoreError::NoSuchMailbox) => {
                return self.no_code(tag, Code::NonExistent, "Mailbox does not exist");
            }
            Err(e) => return self.store_error(tag, &e),
        };
        let items: Vec<String> = atts
            .iter()
            .map(|a| match a {
                StatusAtt::Messages => format!("MESSAGES {}", st.messages),
                StatusAtt::Recent => format!("RECENT {}", st.recent),
                StatusAtt::UidNext => format!("UIDNEXT {}", st.uidnext),
                StatusAtt::UidValidity => format!("UIDVALIDITY {}", st.uidvalidity),
                StatusAtt::Unseen => format!("UNSEEN {}", st.unseen),
                StatusAtt::Size => format!("SIZE {}", st.size),
            })
            .collect();
        let mut text = b"* STATUS ".to_vec();
        response::mailbox(&mut text, name.as_str());
        text.extend_from_slice(format!(" ({})\r\n", items.join(" ")).as_bytes());
        self.out_bytes(&text);
        self.complete(tag, true, "STATUS completed");
    }
}

/// `* FLAGS (...)` and `* OK [PERMANENTFLAGS (...)]` of a mailbox (RFC 3501 7.2.6, 7.1).
fn flags_announcement(mailbox: &dyn Mailbox, readonly: bool) -> Vec<u8> {
    let mut text = Vec::new();
    let mut flags = b"\\Answered \\Flagged \\Deleted \\Seen \\Draft".to_vec();
    for k in mailbox.keywords().iter().filter(|k| !k.is_empty()) {
        flags.push(b' ');
        flags.extend_from_slice(k.as_bytes());
    }
    text.extend_from_slice(b"* FLAGS (");
    text.extend_from_slice(&flags);
    text.extend_from_slice(b")\r\n");
    if readonly {
        let code = Code::PermanentFlags(String::new());
        response::status(&mut text, "*", Status::Ok, Some(&code), "Read-only mailbox");
    } else {
        let room = mailbox.keywords().iter().filter(|k| !k.is_empty()).count() < 26;
        let mut permanent = String::from_utf8_lossy(&flags).into_owned();
        if room {
            permanent.push_str(" \\*");
        }
        let code = Code::PermanentFlags(permanent);
        response::status(&mut text, "*", Status::Ok, Some(&code), "Flags permitted");
    }
    text
}

/// LSUB's answers for `pattern` (RFC 3501 6.3.9): each subscribed name that matches
/// (\Noselect if it cannot be selected now), and, where a `%` stops short of a
/// subscribed name, its matching parent, flagged \Noselect when not subscribed itself
/// (`foo/bar` subscribed, `foo` not: `LSUB "" %` answers `foo` with \Noselect).
fn lsub_answers(
    subs: &[String],
    all: &[crate::store::ListEntry],
    pattern: &[u8],
    delim: char,
) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = Vec::new();
    let add = |name: &str, noselect: bool, out: &mut Vec<(String, bool)>| {
        if !out.iter().any(|(n, _)| n == name) {
            out.push((name.to_string(), noselect));
        }
    };
    for name in subs {
        if list_match_with(pattern, name.as_bytes(), delim) {
            let selectable = all.iter().any(|e| &e.name == name && !e.noselect);
            add(name, !selectable, &mut out);
            continue;
        }
        for (i, _) in name.match_indices(delim) {
            let parent = &name[..i];
            if list_match_with(pattern, parent.as_bytes(), delim) {
                let subscribed = subs.iter().any(|s| s == parent);
                let selectable = all.iter().any(|e| e.name == parent && !e.noselect);
                add(parent, !(subscribed && selectable), &mut out);
            }
        }
    }
    out
}
