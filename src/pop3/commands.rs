//! The TRANSACTION state (RFC 1939 5): STAT, LIST, RETR, DELE, NOOP (in session.rs),
//! RSET, TOP and UIDL over the maildrop numbered at login.

use super::parser::Command;
use super::session::{Job, Session, State, TransferKind};
use super::transfer::Transfer;
use crate::store::StoreError;

/// Listing lines produced per round, so a 100,000-message LIST is sliced like RETR.
const LIST_BATCH: usize = 2048;

impl Session {
    pub(super) fn transaction(&mut self, cmd: Command) {
        let State::Transaction(drop) = &mut self.state else {
            return;
        };
        match cmd {
            Command::Stat => {
                let (n, size) = drop.totals();
                self.ok(&format!("{n} {size}"));
            }
            Command::List(Some(n)) => match drop.get(n) {
                Ok(m) => {
                    let size = m.size;
                    self.ok(&format!("{n} {size}"));
                }
                Err(e) => self.err(e.text()),
            },
            Command::Uidl(Some(n)) => match drop.get(n) {
                Ok(m) => {
                    let uidl = drop.uidl(m);
                    self.ok(&format!("{n} {uidl}"));
                }
                Err(e) => self.err(e.text()),
            },
            Command::List(None) => {
                let (n, size) = drop.totals();
                self.ok(&format!("{n} messages ({size} octets)"));
                self.start_job(Job::Listing {
                    next: 0,
                    uidl: false,
                });
            }
            Command::Uidl(None) => {
                self.ok("Unique-ID listing follows");
                self.start_job(Job::Listing {
                    next: 0,
                    uidl: true,
                });
            }
            Command::Retr(n) => self.transfer(n, None),
            Command::Top(n, lines) => self.transfer(n, Some(lines)),
            Command::Dele(n) => match drop.dele(n) {
                Ok(()) => self.ok(&format!("Message {n} deleted")),
                Err(e) => self.err(e.text()),
            },
            Command::Rset => {
                drop.rset();
                let (n, size) = drop.totals();
                self.ok(&format!("{n} messages ({size} octets)"));
            }
            Command::User(_) | Command::Pass(_) | Command::Apop { .. } | Command::Auth { .. } => {
                self.bad("Already logged in")
            }
            // Handled before the state split.
            Command::Capa | Command::Quit | Command::Noop | Command::Stls => {}
        }
    }

    /// RETR (`top` None) or TOP: the +OK line, then the message streamed by the job.
    fn transfer(&mut self, n: u32, top: Option<u64>) {
        let State::Transaction(drop) = &mut self.state else {
            return;
        };
        let size = match drop.get(n) {
            Ok(m) => m.size,
            Err(e) => return self.err(e.text()),
        };
        let opened = match drop.open_message(n, top.is_none()) {
            Ok(r) => r,
            Err(e) => return self.err(e.text()),
        };
        match opened {
            Ok(reader) => {
                let (transfer, kind) = match top {
                    None => {
                        self.ok(&format!("{size} octets"));
                        (Transfer::whole(reader), TransferKind::Retr)
                    }
                    Some(lines) => {
                        self.ok("Top of message follows");
                        (Transfer::top(reader, lines), TransferKind::Top)
                    }
                };
                self.start_job(Job::Transfer(transfer, kind));
            }
            Err(StoreError::Expunged) => {
                self.err("Message was deleted by another session");
            }
            Err(e) if self.waits_for_lock(&e) => {
                self.park(Job::Again(match top {
                    None => Command::Retr(n),
                    Some(lines) => Command::Top(n, lines),
                }));
            }
            Err(e @ StoreError::Locked { .. }) => {
                self.log_failure("read message", &e);
                self.err("[IN-USE] The mailbox is locked by another program; try again later");
            }
            Err(e) => {
                self.log_failure("read message", &e);
                self.err("[SYS/TEMP] The message can't be read now; see the server log");
            }
        }
    }

    /// Some lines of a LIST or UIDL listing; the job continues until the ".".
    pub(super) fn list_some(&mut self, next: usize, uidl: bool) {
        let State::Transaction(drop) = &self.state else {
            return;
        };
        let end = (next + LIST_BATCH).min(drop.len());
        let mut text = String::with_capacity((end - next) * 24);
        for i in next..end {
            if let Some(m) = drop.listed(i) {
                let n = i + 1;
                if uidl {
                    text.push_str(&format!("{n} {}\r\n", drop.uidl(m)));
                } else {
                    text.push_str(&format!("{n} {}\r\n", m.size));
                }
            }
        }
        if end == drop.len() {
            text.push_str(".\r\n");
        } else {
            self.start_job(Job::Listing { next: end, uidl });
        }
        self.out(&text);
    }
}
