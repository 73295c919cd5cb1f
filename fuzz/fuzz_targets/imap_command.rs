//! The IMAP command grammar (RFC 3501 9) on one command line.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = imap::imap::parser::parse(data);
});
