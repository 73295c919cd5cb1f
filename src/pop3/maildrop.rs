//! The maildrop of a POP3 session (RFC 1939 4-6): INBOX under the POP3 lock, numbered
//! once at login. Numbers and sizes never change during the session; DELE only marks,
//! and the marks take effect in the UPDATE state (QUIT). Mail delivered meanwhile is
//! not shown and not touched; what an IMAP session expunges meanwhile is answered as
//! gone when asked for.

use super::lock::MaildropLock;
use super::uidl;
use crate::config;
use crate::store::{FlagChange, Flags, Mailbox, MailboxName, MessageReader, Store, StoreError};

pub struct Message {
    /// Position in the mailbox's view.
    index: usize,
    pub uid: u32,
    /// Octets as RETR sends them (CRLF line ends, before dot-stuffing).
    pub size: u64,
    pub deleted: bool,
    retrieved: bool,
}

pub struct Maildrop {
    mailbox: Box<dyn Mailbox>,
    lock: MaildropLock,
    messages: Vec<Message>,
}

/// A message number that can't be used, with the text for `-ERR`.
pub enum Refused {
    NoSuchMessage,
    Deleted,
}

impl Refused {
    pub fn text(&self) -> &'static str {
        match self {
            Refused::NoSuchMessage => "No such message",
            Refused::Deleted => "Message already deleted",
        }
    }
}

impl Maildrop {
    /// Lock the maildrop, then take the snapshot (RFC 1939 8: lock, then number).
    pub fn open(store: &mut dyn Store) -> Result<Maildrop, StoreError> {
        let path = store.state_dir()?.join("ipop3d.lock");
        let lock = match MaildropLock::acquire(&path) {
            Ok(Some(lock)) => lock,
            Ok(None) => return Err(StoreError::InUse),
            Err(e) => return Err(StoreError::io("lock the maildrop", "INBOX", e)),
        };
        let inbox = MailboxName::parse(b"INBOX").expect("INBOX is a valid name");
        let mut mailbox = store.open(&inbox, false)?;
        let mut messages = Vec::with_capacity(mailbox.view().len());
        for index in 0..mailbox.view().len() {
            let uid = mailbox.view().entries[index].uid;
            match pop3_size(mailbox.as_mut(), index) {
                Ok(size) => messages.push(Message {
                    index,
                    uid,
                    size,
                    deleted: false,
                    retrieved: false,
                }),
                // Expunged by another session since the scan: not part of this maildrop.
                Err(StoreError::Expunged) => {}
                Err(e) => return Err(e),
            }
        }
        mailbox.flush();
        Ok(Maildrop {
            mailbox,
            lock,
            messages,
        })
    }

    pub fn lock(&self) -> &MaildropLock {
        &self.lock
    }

    /// Messages in the maildrop, deleted ones included (message numbers run 1..=len).
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// (count, octets) of the messages not marked deleted: STAT, and the login reply.
    pub fn totals(&self) -> (usize, u64) {
        self.sum(false)
    }

    /// (count, octets) of the messages marked deleted, for the logout line.
    pub fn marked_deleted(&self) -> (usize, u64) {
        self.sum(true)
    }

    fn sum(&self, deleted: bool) -> (usize, u64) {
        self.messages
            .iter()
            .filter(|m| m.deleted == deleted)
            .fold((0, 0), |(n, s), m| (n + 1, s + m.size))
    }

    /// Message `n` (1-based), if it exists and is not marked deleted.
    pub fn get(&self, n: u32) -> Result<&Message, Refused> {
        let m = (n as usize)
            .checked_sub(1)
            .and_then(|i| self.messages.get(i))
            .ok_or(Refused::NoSuchMessage)?;
        if m.deleted {
            return Err(Refused::Deleted);
        }
        Ok(m)
    }

    /// The message at position `i` (0-based) for listings; None if deleted.
    pub fn listed(&self, i: usize) -> Option<&Message> {
        self.messages.get(i).filter(|m| !m.deleted)
    }

    pub fn uidl(&self, m: &Message) -> String {
        uidl::format(config::POP3_UIDL_FORMAT, m.uid, self.mailbox.uidvalidity())
    }

    pub fn dele(&mut self, n: u32) -> Result<(), Refused> {
        self.get(n)?;
        self.messages[n as usize - 1].deleted = true;
        Ok(())
    }

    /// RSET: unmark every deleted message.
    pub fn rset(&mut self) {
        for m in &mut self.messages {
            m.deleted = false;
        }
    }

    /// The stored bytes of message `n`, for RETR (`retrieved`) or TOP.
    pub fn open_message(
        &mut self,
        n: u32,
        retrieved: bool,
    ) -> Result<Result<Box<dyn MessageReader>, StoreError>, Refused> {
        self.get(n)?;
        let m = &mut self.messages[n as usize - 1];
        if retrieved {
            m.retrieved = true;
        }
        Ok(self.mailbox.open_message(m.index))
    }

    /// The UPDATE state (RFC 1939 6): remove the messages marked deleted and mark the
    /// retrieved ones \Seen. Messages delivered during the session stay. An IMAP
    /// session with the mailbox selected sees the removals as EXPUNGE.
    /// `Locked`: nothing was removed (a change of flags made is made again, the same),
    /// and the update may be tried again.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        // Pick up renames by other sessions (flag changes) so files are found at once;
        // expunges are held back, so positions stay as numbered at login.
        self.mailbox.sync(false)?;
        if config::POP3_MARK_SEEN {
            for m in self.messages.iter().filter(|m| m.retrieved && !m.deleted) {
                let Some(entry) = self.mailbox.view().entries.get(m.index) else {
                    continue;
                };
                if entry.expunged || entry.flags.has(Flags::SEEN) {
                    continue;
                }
                let seen = Flags {
                    system: Flags::SEEN,
                    keywords: 0,
                };
                match self.mailbox.change_flags(m.index, FlagChange::add(seen)) {
                    Ok(()) | Err(StoreError::Expunged) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let doomed: Vec<usize> = self
            .messages
            .iter()
            .filter(|m| m.deleted)
            .map(|m| m.index)
            .collect();
        if !doomed.is_empty() {
            self.mailbox.expunge(&doomed)?;
        }
        self.mailbox.flush();
        Ok(())
    }

    /// The session ends without QUIT (dropped connection, autologout): nothing is
    /// deleted (RFC 1939 6).
    pub fn abandon(mut self) {
        self.mailbox.flush();
    }
}

/// The octets a RETR sends before dot-stuffing: RFC822.SIZE, plus the CRLF that ends a
/// last line the message leaves unterminated (RFC 1939 3 needs it before the final ".").
fn pop3_size(mailbox: &mut dyn Mailbox, index: usize) -> Result<u64, StoreError> {
    let size = mailbox.size(index)?;
    Ok(if size == 0 || mailbox.ends_with_newline(index)? {
        size
    } else {
        size + 2
    })
}
