//! Recovery of an interrupted mbox rewrite from a journal left by a crash: a damaged
//! or hostile journal must be refused, never applied.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let dir = common::scratch("journal", 100_000, |_| {});
    let (journal, mbox) = (dir.join("imapd.journal"), dir.join("mbox"));
    std::fs::write(&journal, data).expect("journal");
    std::fs::write(
        &mbox,
        b"From a@b Mon Nov 23 10:00:00 2026\nSubject: x\n\nbody\n\n",
    )
    .expect("mbox");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&mbox)
        .expect("open");
    let _ = imap::store::mbox::journal::recover(&journal, &f, "fuzz");
});
