//! The lock waits left inside a worker, and how a daemon keeps serving others meanwhile.
//! Another program's lock is not waited for in a step (`store::filelock::Holders`,
//! `session::lock_wait`: the command is parked); what is waited for is our own locks,
//! each held for one small read or write, and flag changes an mbox session still owes
//! when it ends (`filelock::patiently`).
//!
//! Such a wait says so: one that has lasted `LONG` takes a `LongWait`, and the worker
//! pool of a daemon (which registers `set_hook`) runs a substitute thread for as long as
//! it lasts, so the number of workers free to serve other sessions stays the same.
//! Without a hook (inetd: one session per process) a wait is only a wait.

use std::sync::OnceLock;
use std::time::Duration;

/// A wait this long is a long one (under it, a lock is only changing hands).
pub const LONG: Duration = Duration::from_millis(10);

static HOOK: OnceLock<fn(bool)> = OnceLock::new();

/// `hook(true)` when a thread starts a long wait, `hook(false)` when it ends.
pub fn set_hook(hook: fn(bool)) {
    let _ = HOOK.set(hook);
}

/// Held for the rest of a long wait.
pub struct LongWait(());

pub fn long_wait() -> LongWait {
    if let Some(h) = HOOK.get() {
        h(true);
    }
    LongWait(())
}

impl Drop for LongWait {
    fn drop(&mut self) {
        if let Some(h) = HOOK.get() {
            h(false);
        }
    }
}
