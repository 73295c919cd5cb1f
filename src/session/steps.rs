//! The step loop every engine shares (`Protocol::step`): let a held login refusal out
//! when due, work through the command in progress and the input until the output is
//! plentiful (the client must read before more is made) or nothing is left, run the
//! engine's own timers (IMAP IDLE), and end a session left idle too long (RFC 3501
//! 5.4, RFC 1939 3). Bounded: a daemon's worker serves others in between. A step never
//! sleeps on a lock another program holds (`store::filelock::yielding`): a job parked
//! on one (`lock_wait`) runs again when due, and the input waits behind it.

use super::Step;
use super::login::LoginGate;
use crate::config;
use std::time::Instant;

/// Slices of a command in progress per step at most (each bounded by the output
/// high-water mark or its own budget).
const JOB_ROUNDS: usize = 64;
/// Commands or command pieces taken from the input per step at most.
const ROUNDS: usize = 256;

/// What the step loop asks of an engine.
pub trait Steps {
    fn closed(&self) -> bool;
    fn logins(&mut self) -> &mut LoginGate;
    fn input_buffer(&mut self) -> &mut Vec<u8>;
    fn output_buffer(&mut self) -> &mut Vec<u8>;
    /// "Begin TLS" was answered: nothing more is read until the driver has switched.
    fn switching_to_tls(&self) -> bool;
    /// Run one slice of the command in progress; false if there is none.
    fn continue_job(&mut self, now: Instant) -> bool;
    fn has_job(&self) -> bool;
    /// When the job, parked on a lock another program holds (`lock_wait`), is due.
    fn job_wakes_at(&self) -> Option<Instant> {
        None
    }
    /// Take one command, or piece of one, from the input; false if none is complete.
    fn take_input(&mut self) -> bool;
    fn has_complete_input(&self) -> bool;
    /// The engine's own timers: run those due; when the next is.
    fn timers(&mut self, now: Instant) -> Option<Instant> {
        let _ = now;
        None
    }
    /// When the session ends unless the client shows a sign of life (or logs in).
    fn logout_at(&self) -> Instant;
    /// End it for that (IMAP says BYE; POP3 closes silently, without UPDATE).
    fn autologout(&mut self);
    fn close(&mut self, reason: &'static str);
}

pub fn step<E: Steps + ?Sized>(e: &mut E, now: Instant) -> Step {
    // A lock another program holds is not waited for here (`lock_wait`).
    crate::store::filelock::yielding(|| step_yielding(e, now))
}

fn step_yielding<E: Steps + ?Sized>(e: &mut E, now: Instant) -> Step {
    if e.closed() {
        return Step::default();
    }
    crate::util::release_spare(e.input_buffer());
    let mut out = std::mem::take(e.output_buffer());
    let released = e.logins().release(now, &mut out);
    *e.output_buffer() = out;
    match released {
        Err(until) => {
            return Step {
                busy: false,
                deadline: Some(until),
            };
        }
        Ok(true) => {
            e.close("too many failed logins");
            return Step::default();
        }
        Ok(false) => {}
    }
    let (mut rounds, mut job_rounds) = (0, 0);
    while !e.closed()
        && !e.logins().busy()
        && !e.switching_to_tls()
        && e.output_buffer().len() < config::OUTPUT_HIGH_WATER
        && rounds < ROUNDS
    {
        rounds += 1;
        if !parked(e, now) && e.continue_job(now) {
            job_rounds += 1;
            if job_rounds >= JOB_ROUNDS {
                break;
            }
            continue;
        }
        if e.has_job() {
            break; // parked on a lock: the commands behind it wait their turn
        }
        if !e.take_input() {
            break;
        }
    }
    let next_timer = if e.closed() { None } else { e.timers(now) };
    if e.closed() {
        return Step::default();
    }
    let logout_at = e.logout_at();
    if now >= logout_at {
        e.autologout();
        return Step::default();
    }
    let mut deadline = logout_at;
    for t in [next_timer, e.logins().held_until(), e.job_wakes_at()]
        .into_iter()
        .flatten()
    {
        deadline = deadline.min(t);
    }
    // Busy means work is ready; whether there is room to write it is the driver's
    // business (it waits for the socket to drain when it could not flush).
    let busy = if e.has_job() {
        !parked(e, now)
    } else {
        e.has_complete_input() && !e.logins().busy()
    };
    Step {
        busy,
        deadline: Some(deadline),
    }
}

/// Is the job parked on a lock, not yet due?
fn parked<E: Steps + ?Sized>(e: &E, now: Instant) -> bool {
    e.job_wakes_at().is_some_and(|t| t > now)
}
