//! SASL PLAIN (RFC 4616): base64, then authzid NUL authcid NUL password.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = imap::auth::sasl::decode_plain(data);
});
