//! Mail locations (`maildir:~/Maildir`, `mbox:~/mail:INBOX=/var/mail/%u`) with any
//! user name and home: the result stays where the template says.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '\n');
    let (location, user, home) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next(),
    );
    if let Some(loc) = imap::store::location::expand(location, user, home) {
        assert_eq!(imap::store::MailLocation::parse(&loc.to_string()), Some(loc));
    }
    let _ = imap::auth::valid_user_name(user.as_bytes());
});
