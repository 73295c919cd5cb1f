//! Maildir file names: flags after `:2,`, sizes in `,S=` and `,W=`, the unique part.
#![no_main]
use libfuzzer_sys::fuzz_target;
use imap::store::maildir::{filename, uidlist};

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    let flags = filename::flags_of(name);
    let _ = filename::vsize_of(name);
    if filename::is_message_name(name) {
        let base = uidlist::base_name(name);
        let renamed = filename::with_flags(base, flags);
        assert_eq!(uidlist::base_name(&renamed), base, "a flag change keeps the unique part");
    }
});
