//! The users file (Dovecot's passwd-file format): fields, schemes, extra fields.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for line in text.lines() {
        if let Some(e) = imap::auth::passwd_file::parse_line(line) {
            let _ = imap::auth::passwd_file::verify(&e.password, b"fuzz");
        }
    }
});
