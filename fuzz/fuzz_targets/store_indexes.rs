//! The stores' own binary files read back: mbox imapd.index and Maildir imapd.cache
//! (sealed with a checksum; a damaged or foreign file must be ignored, not trusted).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(state) = imap::store::mbox::index::decode(data) {
        let _ = imap::store::mbox::index::encode(&state);
    }
    if let Some(snap) = imap::store::maildir::cache::decode(data) {
        let _ = imap::store::maildir::cache::encode(&snap);
    }
});
