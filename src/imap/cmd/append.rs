//! APPEND (RFC 3501 6.3.11, LITERAL+ RFC 7888, APPENDUID RFC 4315, APPENDLIMIT RFC
//! 7889). The message literal goes straight into the store's tmp/ file as it arrives,
//! so a 100 MB upload costs no memory and never stalls other clients.

use super::super::parser::{AppendArgs, Flag};
use super::super::response::{Code, Reply, Status};
use super::super::state::{Job, PendingAppend, Session};
use crate::config;
use crate::store::{AppendSink, Flags, MailboxName};

/// System flags and keyword names of a flag list (\Recent cannot be set, RFC 3501 2.3.2).
pub(super) fn split_flags(flags: &[Flag]) -> (Flags, Vec<String>) {
    let mut f = Flags::default();
    let mut keywords = Vec::new();
    for flag in flags {
        match flag {
            Flag::System(b) => f.system |= b,
            Flag::Recent => {}
            Flag::Keyword(k) => {
                if !keywords.iter().any(|x: &String| x.eq_ignore_ascii_case(k)) {
                    keywords.push(k.clone());
                }
            }
        }
    }
    (f, keywords)
}

impl Session {
    /// The line that announced APPEND's message literal has arrived.
    pub(in crate::imap) fn begin_append(
        &mut self,
        tag: String,
        args: AppendArgs,
        size: u64,
        sync: bool,
    ) {
        let refuse = |s: &mut Session, error: Reply| {
            if sync {
                // The client waits for "+" and will not send the message.
                s.wire.refuse_literal();
                error.encode(&mut s.output, &tag);
            } else if size > config::APPEND_LIMIT {
                // RFC 7888 4: too large a non-synchronizing literal ends the connection.
                s.wire.refuse_literal();
                s.protocol_error("non-synchronizing APPEND over the limit");
                s.untagged(Status::Bye, Some(Code::TooBig), "Message too large");
                s.close("literal too large");
            } else {
                // The client sends the message anyway: swallow it, then answer.
                s.append = Some(PendingAppend {
                    tag: tag.clone(),
                    args: args.clone(),
                    sink: None,
                    error: Some(error),
                });
                s.wire.stream_literal();
            }
        };
        if self.user().is_none() {
            return refuse(
                self,
                Reply::new(Status::Bad, None, "APPEND not allowed now: Log in first"),
            );
        }
        if size > config::APPEND_LIMIT {
            return refuse(
                self,
                Reply::new(
                    Status::No,
                    Some(Code::TooBig),
                    format!("Message larger than APPENDLIMIT {}", config::APPEND_LIMIT),
                ),
            );
        }
        let name = match MailboxName::parse_with(&args.mailbox, self.delimiter()) {
            Ok(n) => n,
            Err(why) => {
                let text = format!("Invalid mailbox name: {why}");
                return refuse(self, Reply::new(Status::No, Some(Code::Cannot), text));
            }
        };
        let store = self.store();
        if !store.exists(&name) {
            let text = "Mailbox does not exist";
            return refuse(self, Reply::new(Status::No, Some(Code::TryCreate), text));
        }
        match store.append(&name) {
            Ok(sink) => {
                self.append = Some(PendingAppend {
                    tag: tag.clone(),
                    args,
                    sink: Some(sink),
                    error: None,
                });
                if sync {
                    self.out("+ Ready for literal data\r\n");
                }
                self.wire.stream_literal();
            }
            Err(e) => {
                let reply = Reply::new(Status::No, Some(Code::of_store_error(&e)), e.client_text());
                self.log_failure("append", &e);
                refuse(self, reply)
            }
        }
    }

    /// The line after the message literal: empty ends the APPEND.
    pub(in crate::imap) fn finish_append(&mut self, line: Vec<u8>) {
        let pending = self.append.take().expect("append in progress");
        let tag = pending.tag;
        if !line.is_empty() {
            if let Some(s) = pending.sink {
                s.abort();
            }
            self.take_command_buffer();
            return self.bad(
                &tag,
                "Unexpected data after the APPEND message (MULTIAPPEND is not supported)",
            );
        }
        if let Some(error) = pending.error {
            error.encode(&mut self.output, &tag);
            return;
        }
        let sink = pending.sink.expect("sink present without error");
        let mut args = pending.args;
        args.date = args.date.or(Some(crate::util::date::now()));
        self.commit_append(AppendCommit { tag, args, sink });
    }

    /// Make the message visible, or park the commit on a lock another program holds
    /// (the message waits in the store's spool meanwhile).
    fn commit_append(&mut self, mut c: AppendCommit) {
        let (flags, keywords) = split_flags(&c.args.flags);
        match c.sink.commit(flags, &keywords, c.args.date) {
            Ok((uidvalidity, uid)) => {
                self.report_updates(true);
                let code = Code::AppendUid { uidvalidity, uid };
                self.ok_code(&c.tag, code, "APPEND completed");
            }
            Err(e) if self.waits_for_lock(&e) => self.park(Box::new(c)),
            Err(e) => self.store_error(&c.tag, &e),
        }
    }
}

/// APPEND's message, all in, to be made visible.
struct AppendCommit {
    tag: String,
    args: AppendArgs,
    sink: Box<dyn AppendSink>,
}

impl Job for AppendCommit {
    fn run(self: Box<Self>, session: &mut Session) {
        session.commit_append(*self)
    }
}
