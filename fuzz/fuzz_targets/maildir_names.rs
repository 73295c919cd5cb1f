//! Maildir file names: flags after `:2,`, sizes in `,S=` and `,W=`, the unique part.
#![no_main]
use imap::store::maildir::{filename, uidlist};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    let flags = filename::flags_of(name);
    let _ = filename::vsize_of(name);
    if filename::is_message_name(name) {
        let base = uidlist::base_name(name);
        let renamed = filename::with_flags(base, flags);
        assert_eq!(
            uidlist::base_name(&renamed),
            base,
            "a flag change keeps the unique part"
        );
    }
});
