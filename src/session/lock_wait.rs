//! A command that meets a lock another program holds (`StoreError::Locked`: an MDA
//! delivering, mutt rewriting an mbox, a Dovecot sync, a stale lock) is not waited for
//! in the worker: the store changed nothing, the engine keeps the command (or the slice
//! of a FETCH, SEARCH or COPY it was at) as its job, and the step loop runs it again
//! when `wakes_at` is due, serving other sessions meanwhile. Pipelined commands behind
//! it wait their turn. After `LOCK_WAIT_SECS` the engine answers instead
//! (IMAP NO [INUSE], POP3 -ERR [IN-USE]).

use crate::config;
use crate::store::StoreError;
use std::time::{Duration, Instant};

/// The first pause, and the longest: tries come quickly while a lock is only changing
/// hands (another session of ours numbering new mail), then four times a second: a try
/// runs the command again up to the lock (a SELECT lists the folder again), though it
/// costs no wait (`filelock::once`).
const FIRST_PAUSE: Duration = Duration::from_millis(5);
const LONGEST_PAUSE: Duration = Duration::from_millis(250);

#[derive(Default)]
pub struct LockWaits {
    /// Since when the job has waited, and when it is tried next.
    waiting: Option<(Instant, Instant, Duration)>,
    /// Did the job just run park itself again?
    parked: bool,
}

impl LockWaits {
    /// Is `e` a lock another program holds, that the job may still wait for? (If so,
    /// the engine parks the job; after LOCK_WAIT_SECS it answers.)
    pub fn waits_for(&self, e: &StoreError) -> bool {
        matches!(e, StoreError::Locked { .. }) && self.may_wait(Instant::now())
    }

    /// May the job wait longer (rather than be answered)?
    pub fn may_wait(&self, now: Instant) -> bool {
        self.waiting.is_none_or(|(since, _, _)| {
            now.duration_since(since) < Duration::from_secs(config::LOCK_WAIT_SECS)
        })
    }

    /// The job met a lock: try it again after a pause (longer each time).
    pub fn park(&mut self, now: Instant) {
        let (since, pause) = match self.waiting {
            Some((since, _, pause)) => (since, (pause * 2).min(LONGEST_PAUSE)),
            None => (now, FIRST_PAUSE),
        };
        self.waiting = Some((since, now + pause, pause));
        self.parked = true;
    }

    /// When the parked job is due (None: it is not parked).
    pub fn wakes_at(&self) -> Option<Instant> {
        self.waiting.map(|(_, next, _)| next)
    }

    /// The job is about to run: is it a parked one, tried again?
    pub fn running(&mut self) -> bool {
        self.parked = false;
        self.waiting.is_some()
    }

    /// The job ran: unless it parked itself again, its wait is over.
    pub fn ran(&mut self) {
        if !self.parked {
            self.waiting = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_until_a_run_does_not_park() {
        let t0 = Instant::now();
        let mut w = LockWaits::default();
        assert!(w.may_wait(t0) && w.wakes_at().is_none());
        w.park(t0);
        assert_eq!(w.wakes_at(), Some(t0 + FIRST_PAUSE));
        for _ in 0..10 {
            w.running();
            w.park(t0);
            w.ran();
        }
        assert_eq!(w.wakes_at(), Some(t0 + LONGEST_PAUSE));
        let late = t0 + Duration::from_secs(config::LOCK_WAIT_SECS);
        assert!(w.may_wait(t0) && !w.may_wait(late));
        w.running();
        w.ran();
        assert!(w.wakes_at().is_none() && w.may_wait(late));
    }
}
