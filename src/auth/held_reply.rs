//! The answer to a failed login, held back: the same delay whatever went wrong
//! (unknown user, wrong password), so timing tells an attacker nothing and guessing is
//! slow; after `MAX_AUTH_FAILURES` on one connection, the connection ends. Both
//! protocols hold their own text; the session's `step` releases it when due.

use crate::config;
use std::time::{Duration, Instant};

pub struct HeldReply {
    until: Instant,
    text: Vec<u8>,
    /// End the connection once the reply is out.
    close: bool,
}

impl HeldReply {
    /// `text` answers the failure; `last_words` follow it when this was one failure too
    /// many (IMAP's `* BYE`; nothing for POP3).
    pub fn failed_login(mut text: Vec<u8>, failures: u32, last_words: &[u8]) -> HeldReply {
        let close = failures >= config::MAX_AUTH_FAILURES;
        if close {
            text.extend_from_slice(last_words);
        }
        HeldReply {
            until: Instant::now() + Duration::from_millis(config::AUTH_FAIL_DELAY_MS),
            text,
            close,
        }
    }

    pub fn until(&self) -> Instant {
        self.until
    }

    /// Move a due reply into `out`: Err(time) while it must still wait, Ok(true) if the
    /// connection must end now, Ok(false) otherwise (or if nothing was held).
    pub fn release(
        slot: &mut Option<HeldReply>,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> Result<bool, Instant> {
        match slot {
            Some(h) if now < h.until => Err(h.until),
            Some(_) => {
                let h = slot.take().expect("matched Some");
                out.extend_from_slice(&h.text);
                Ok(h.close)
            }
            None => Ok(false),
        }
    }
}
