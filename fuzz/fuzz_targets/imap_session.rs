//! An IMAP connection before login: line and literal framing, the non-authenticated
//! commands, AUTHENTICATE's continuation, the failed-login answer.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let users = common::scratch("imap-users", 100_000, |d| {
        std::fs::write(d.join("passwd"), b"").expect("users file");
    });
    let mut s =
        imap::imap::session::Session::new("fuzz".into(), users.join("passwd"), None);
    common::drive(&mut s, data);
});
