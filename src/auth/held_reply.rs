//! The answer to a failed login, held back: the same delay whatever went wrong
//! (unknown user, wrong password), so timing tells an attacker nothing and guessing is
//! slow; after `MAX_AUTH_FAILURES` on one connection, the connection ends. Both
//! protocols hold their own text; the session's `step` releases it when due.
//!
//! The delay doubles with each recent failure from the same address (in a daemon, across
//! its connections; an inetd process sees only its own), up to AUTH_FAIL_DELAY_MAX_MS,
//! and is forgotten after AUTH_FAIL_WINDOW_SECS without a failure.

use crate::config;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Recent failures by peer address: (count, time of the last one).
static RECENT: Mutex<Option<HashMap<String, (u32, Instant)>>> = Mutex::new(None);

/// Addresses remembered at most (a spray of addresses cannot grow it without bound).
const MAX_PEERS: usize = 65536;

/// Count a failure from `peer`; the delay its answer gets.
fn delay_for(peer: &str, now: Instant) -> Duration {
    let window = Duration::from_secs(config::AUTH_FAIL_WINDOW_SECS);
    let mut guard = RECENT.lock().unwrap_or_else(|e| e.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    if map.len() >= MAX_PEERS {
        map.retain(|_, (_, last)| now.duration_since(*last) < window);
        if map.len() >= MAX_PEERS {
            map.clear();
        }
    }
    let e = map.entry(peer.to_string()).or_insert((0, now));
    if now.duration_since(e.1) >= window {
        e.0 = 0;
    }
    e.0 = e.0.saturating_add(1);
    e.1 = now;
    let factor = 1u64 << (e.0 - 1).min(16);
    Duration::from_millis(
        config::AUTH_FAIL_DELAY_MS
            .saturating_mul(factor)
            .min(config::AUTH_FAIL_DELAY_MAX_MS.max(config::AUTH_FAIL_DELAY_MS)),
    )
}

pub struct HeldReply {
    until: Instant,
    text: Vec<u8>,
    /// End the connection once the reply is out.
    close: bool,
}

impl HeldReply {
    /// `text` answers the failure; `last_words` follow it when this was one failure too
    /// many (IMAP's `* BYE`; nothing for POP3). The delay counts from `started`, when
    /// the check began: the check's own time (a hash, PAM, a lookup) is inside it, so an
    /// unknown user and a wrong password are answered at the same moment.
    pub fn failed_login(
        mut text: Vec<u8>,
        failures: u32,
        last_words: &[u8],
        peer: &str,
        started: Instant,
    ) -> HeldReply {
        let close = failures >= config::MAX_AUTH_FAILURES;
        if close {
            text.extend_from_slice(last_words);
        }
        let now = Instant::now();
        HeldReply {
            until: started + delay_for(peer, now),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_grows_per_peer_and_is_capped() {
        let now = Instant::now();
        let base = Duration::from_millis(config::AUTH_FAIL_DELAY_MS);
        let a: Vec<Duration> = (0..3).map(|_| delay_for("192.0.2.77", now)).collect();
        assert_eq!(a, vec![base, base * 2, base * 4]);
        // Another address starts afresh.
        assert_eq!(delay_for("192.0.2.78", now), base);
        let cap = Duration::from_millis(config::AUTH_FAIL_DELAY_MAX_MS);
        for _ in 0..40 {
            assert!(delay_for("192.0.2.79", now) <= cap.max(base));
        }
        // Forgotten after the window.
        let later = now + Duration::from_secs(config::AUTH_FAIL_WINDOW_SECS);
        assert_eq!(delay_for("192.0.2.77", later), base);
    }
}
