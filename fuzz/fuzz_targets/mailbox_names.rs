//! Mailbox names and LIST patterns (modified UTF-7, `..`, `~`, `#`, wildcards): every
//! accepted name stays inside the user's mail, and matching terminates.
#![no_main]
use imap::store::names::{self, MailboxName};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (pattern, name) = match data.iter().position(|&c| c == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, data),
    };
    for delim in ['/', '.'] {
        if let Ok(n) = MailboxName::parse_with(name, delim) {
            let s = n.as_str();
            assert!(
                !s.starts_with('/') && !s.split(delim).any(|l| l == ".." || l.is_empty()),
                "{s:?} escapes"
            );
            let _ = n.parents();
        }
        let _ = names::list_match_with(pattern, name, delim);
    }
});
