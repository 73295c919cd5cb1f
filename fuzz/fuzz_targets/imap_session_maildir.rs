//! A logged-in IMAP session on a Maildir of its own: every command of the
//! authenticated and selected states against a real store.
#![no_main]
use imap::store::MailLocation;
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let dir = common::scratch("maildir", 500, |d| {
        let md = d.join("Maildir");
        for sub in ["cur", "new", "tmp", ".Sent/cur", ".Sent/new", ".Sent/tmp"] {
            std::fs::create_dir_all(md.join(sub)).expect("maildir");
        }
        std::fs::write(md.join("new/1700000000.M1P1.fuzz"), common::MESSAGE).expect("message");
        std::fs::write(
            md.join("cur/1700000001.M2P1.fuzz:2,S"),
            b"Subject: two\r\n\r\nx\r\n",
        )
        .expect("message");
    });
    let mut s = common::preauth_session(&dir, MailLocation::Maildir(dir.join("Maildir")));
    common::drive(&mut s, data);
});
