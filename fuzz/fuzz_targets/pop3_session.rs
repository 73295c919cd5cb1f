//! A POP3 connection before login: line framing, USER/PASS/APOP/AUTH, CAPA, STLS.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let users = common::scratch("pop3-users", 100_000, |d| {
        std::fs::write(d.join("passwd"), b"").expect("users file");
    });
    let mut s =
        imap::pop3::session::Session::new("fuzz".into(), users.join("passwd"));
    common::drive(&mut s, data);
});
