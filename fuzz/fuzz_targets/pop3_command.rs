//! The POP3 command grammar (RFC 1939, 2449, 5034) on one line.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = imap::pop3::parser::parse(data);
});
