//! IMAP commands, one file per family, as Dovecot's cmd-*.c. `execute` checks the
//! state each command is valid in (RFC 3501 6) and hands over; commands that may run
//! long (FETCH, SEARCH, COPY, MOVE) leave a `state::Job` that `Session::step` advances
//! in bounded slices.

mod append;
mod auth;
mod copy;
mod enable;
mod expunge;
mod fetch;
mod idle;
mod mailboxes;
mod search;
mod store;

use super::parser::{Command, SeqSet};
use super::registry::{self, Expunges, Needs};
use super::response::{self, Code, Status};
use super::state::{Job, RetryCommand, Session};
use crate::store::{StoreError, Update};
use std::time::Instant;

impl Session {
    pub(super) fn execute(&mut self, tag: &str, cmd: Command) {
        let spec = registry::spec(cmd.name());
        let ok_state = match spec.needs {
            Needs::Any => true,
            Needs::NotAuthenticated => self.user().is_none(),
            Needs::Authenticated => self.user().is_some(),
            Needs::Selected => self.mailbox().is_some(),
        };
        if !ok_state {
            let why = match spec.needs {
                Needs::NotAuthenticated => "Already logged in",
                Needs::Authenticated => "Log in first",
                _ if self.user().is_none() => "Log in first",
                _ => "Select a mailbox first",
            };
            return self.bad(tag, &format!("{} not allowed now: {why}", cmd.name()));
        }
        // Kept to run again if it meets a lock another program holds (`store_error`).
        self.again = self.user().is_some().then(|| cmd.clone());
        let report_expunges = match spec.expunges {
            Expunges::Reported => true,
            Expunges::OnlyUidForm => matches!(
                cmd,
                Command::Fetch { uid: true, .. }
                    | Command::Store { uid: true, .. }
                    | Command::Search { uid: true, .. }
            ),
        };
        match cmd {
            Command::Capability => {
                let caps = self.capabilities();
                self.out(&format!("* CAPABILITY {caps}\r\n"));
                self.ok(tag, "CAPABILITY completed");
            }
            Command::Noop | Command::Check => {
                self.report_updates(true);
                self.ok(tag, "Done");
            }
            Command::Id => {
                self.out("* ID (\"name\" \"imapd\")\r\n");
                self.ok(tag, "ID completed");
            }
            Command::Logout => {
                self.untagged(Status::Bye, None, "Logging out");
                self.ok(tag, "LOGOUT completed");
                self.logout_reason = Some("LOGOUT");
                self.close("LOGOUT");
            }
            Command::StartTls => self.cmd_starttls(tag),
            Command::Login(user, pass) => self.cmd_login(tag, &user, &pass),
            Command::Authenticate(mech, initial) => self.cmd_authenticate(tag, &mech, initial),
            Command::Namespace => {
                let delim = self.delimiter();
                self.out(&format!("* NAMESPACE ((\"\" \"{delim}\")) NIL NIL\r\n"));
                self.ok(tag, "NAMESPACE completed");
            }
            Command::Select(args) => self.cmd_select(tag, args, false),
            Command::Examine(args) => self.cmd_select(tag, args, true),
            Command::Create(m) => self.cmd_create(tag, &m),
            Command::Delete(m) => self.cmd_delete(tag, &m),
            Command::Rename(a, b) => self.cmd_rename(tag, &a, &b),
            Command::Subscribe(m) => self.cmd_subscribe(tag, &m, true),
            Command::Unsubscribe(m) => self.cmd_subscribe(tag, &m, false),
            Command::List(r, p) => self.cmd_list(tag, &r, &p, false),
            Command::Lsub(r, p) => self.cmd_list(tag, &r, &p, true),
            Command::Status(m, atts) => self.cmd_status(tag, &m, &atts),
            Command::Append(_) => self.bad(tag, "APPEND needs a message literal"),
            Command::Idle => self.cmd_idle(tag),
            Command::Enable(names) => self.cmd_enable(tag, &names),
            Command::Close => self.cmd_close(tag, true),
            Command::Unselect => self.cmd_close(tag, false),
            Command::Expunge => self.cmd_expunge(tag, None),
            Command::UidExpunge(set) => self.cmd_expunge(tag, Some(set)),
            Command::Search {
                uid,
                ret,
                charset,
                key,
            } => self.cmd_search(tag, uid, ret, charset.as_deref(), key),
            Command::Fetch {
                uid,
                set,
                atts,
                modifiers,
            } => self.cmd_fetch(tag, uid, &set, atts, modifiers),
            Command::Store {
                uid,
                set,
                modifiers,
                mode,
                silent,
                flags,
            } => self.cmd_store(
                tag,
                uid,
                &set,
                modifiers,
                mode,
                silent,
                &flags,
                report_expunges,
            ),
            Command::Copy { uid, set, mailbox } => self.cmd_copy(tag, uid, &set, &mailbox, false),
            Command::Move { uid, set, mailbox } => self.cmd_copy(tag, uid, &set, &mailbox, true),
        }
        self.again = None;
        if let Some(m) = self.mailbox_mut() {
            m.flush();
        }
    }

    /// Keep `job` to run again when the lock another program holds may be free
    /// (`session::lock_wait`); nothing is answered meanwhile.
    pub(super) fn park(&mut self, job: Box<dyn Job>) {
        self.lock_waits.park(Instant::now());
        self.job = Some(job);
    }

    /// Is `e` a lock another program holds, that the command may still wait for? (If
    /// so, the caller parks; after LOCK_WAIT_SECS the command is answered NO [INUSE].)
    pub(super) fn waits_for_lock(&self, e: &StoreError) -> bool {
        self.lock_waits.waits_for(e)
    }

    pub(super) fn ok(&mut self, tag: &str, text: &str) {
        self.status(tag, Status::Ok, None, text);
    }

    pub(super) fn ok_code(&mut self, tag: &str, code: Code, text: &str) {
        self.status(tag, Status::Ok, Some(&code), text);
    }

    pub(super) fn no_code(&mut self, tag: &str, code: Code, text: &str) {
        self.status(tag, Status::No, Some(&code), text);
    }

    /// A store failure as a tagged NO with its response code, logged if it is ours.
    pub(super) fn store_error(&mut self, tag: &str, e: &StoreError) {
        if self.waits_for_lock(e) {
            if let Some(command) = self.again.take() {
                let tag = tag.to_string();
                return self.park(Box::new(RetryCommand { tag, command }));
            }
        }
        if e.is_server_side() {
            self.log_failure("store operation", e);
        }
        self.no_code(tag, Code::of_store_error(e), &e.client_text());
    }

    /// Sync the selected mailbox and send what changed (EXISTS, RECENT, EXPUNGE, FETCH).
    pub(super) fn report_updates(&mut self, report_expunges: bool) {
        let Some(m) = self.mailbox_mut() else {
            return;
        };
        let updates = match m.sync(report_expunges) {
            Ok(u) => u,
            Err(e) => {
                // The folder was deleted or became unreadable under us: the session's
                // view can't be kept consistent, so it ends (as Dovecot does), logged once.
                self.log_failure("sync", &e);
                self.unselect();
                let text = "The selected mailbox was deleted or cannot be read";
                self.untagged(Status::Bye, None, text);
                self.close("mailbox gone");
                return;
            }
        };
        self.announce_new_keywords();
        let Some(m) = self.mailbox() else {
            return;
        };
        let mut text = Vec::new();
        for u in updates {
            match u {
                Update::Expunge(n) => {
                    text.extend_from_slice(format!("* {n} EXPUNGE\r\n").as_bytes())
                }
                Update::Exists(n) => text.extend_from_slice(format!("* {n} EXISTS\r\n").as_bytes()),
                Update::Recent(n) => text.extend_from_slice(format!("* {n} RECENT\r\n").as_bytes()),
                Update::Flags {
                    seq,
                    uid,
                    flags,
                    recent,
                } => response::fetch_flags(
                    &mut text,
                    seq as usize,
                    Some(uid),
                    flags,
                    recent,
                    m.keywords(),
                ),
            }
        }
        self.out_bytes(&text);
    }

    /// Message indexes named by a sequence set (or UID set), ascending, each once.
    /// Numbers beyond the mailbox are clamped for ranges (`1:4294967295`) and refused alone.
    pub(super) fn resolve_set(&self, set: &SeqSet, uid: bool) -> Result<Vec<usize>, String> {
        let view = self.selected_ref().view();
        let n = view.len();
        let mut out = Vec::new();
        if uid {
            let Some(max_uid) = view.entries.last().map(|e| e.uid) else {
                return Ok(out);
            };
            for (lo, hi) in set.ranges(max_uid) {
                let start = view.entries.partition_point(|e| e.uid < lo);
                let end = view.entries.partition_point(|e| e.uid <= hi);
                out.extend(start..end);
            }
        } else {
            for (lo, hi) in set.ranges(n as u32) {
                if lo as usize > n || (lo == hi && hi as usize > n) || n == 0 {
                    return Err("Invalid message sequence number".into());
                }
                out.extend((lo as usize - 1)..(hi as usize).min(n));
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Tagged completion for a command on the selected mailbox, after its updates.
    pub(super) fn complete(&mut self, tag: &str, report_expunges: bool, text: &str) {
        self.complete_with(tag, report_expunges, None, text);
    }

    /// `complete` with a response code on the OK (COPYUID).
    pub(super) fn complete_with(
        &mut self,
        tag: &str,
        report_expunges: bool,
        code: Option<&Code>,
        text: &str,
    ) {
        self.report_updates(report_expunges);
        self.status(tag, Status::Ok, code, text);
    }
}

impl Session {
    /// STARTTLS (RFC 3501 6.2.1, RFC 9051 6.2.1): only before login, only once.
    fn cmd_starttls(&mut self, tag: &str) {
        if self.secure {
            return self.bad(tag, "TLS is already active");
        }
        if !self.starttls_offered {
            return self.bad(tag, "STARTTLS is not available on this connection");
        }
        if self.user().is_some() {
            return self.bad(tag, "STARTTLS is allowed only before login");
        }
        self.ok(tag, "Begin TLS negotiation now");
        self.starttls_pending = true;
    }
}
