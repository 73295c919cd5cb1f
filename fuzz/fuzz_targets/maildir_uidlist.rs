//! dovecot-uidlist as Dovecot or we wrote it (versions, extensions, damage).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(list) = imap::store::maildir::uidlist::Uidlist::parse(text) {
        let again = list.serialize();
        let reread =
            imap::store::maildir::uidlist::Uidlist::parse(&again).expect("what we write, we read");
        assert_eq!(reread.serialize(), again, "the uidlist round-trips");
        let _ = list.by_base();
    }
});
