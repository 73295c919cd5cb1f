//! IDLE (RFC 2177): the session reports changes as they happen until DONE. The mailbox
//! is looked at every IDLE_POLL_MS, which catches other sessions' changes and mail an
//! MDA drops into new/ within a second; a quiet folder costs two stat() calls a poll.

use super::super::state::{Frame, Session};
use crate::config;
use std::time::{Duration, Instant};

impl Session {
    pub(super) fn cmd_idle(&mut self, tag: &str) {
        self.report_updates(true);
        self.out("+ idling\r\n");
        self.set_frame(Frame::Idle {
            tag: tag.to_string(),
        });
        if self.mailbox().is_some() {
            self.next_idle_poll =
                Some(Instant::now() + Duration::from_millis(config::IDLE_POLL_MS));
        }
    }

    pub(in crate::imap) fn idle_poll(&mut self) {
        self.report_updates(true);
    }

    pub(in crate::imap) fn idle_done(&mut self, tag: &str, line: &[u8]) {
        self.next_idle_poll = None;
        if line.eq_ignore_ascii_case(b"DONE") {
            self.report_updates(true);
            self.ok(tag, "IDLE terminated");
        } else {
            self.bad(tag, "Expected DONE to end IDLE");
        }
    }
}
