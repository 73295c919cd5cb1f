//! A logged-in IMAP session on an mbox INBOX and mbox folders of its own.
#![no_main]
use imap::store::MailLocation;
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let dir = common::scratch("mbox", 500, |d| {
        std::fs::create_dir_all(d.join("mail")).expect("folders");
        let mut inbox = b"From alice@example.com  Mon Nov 23 10:00:00 2026\n".to_vec();
        inbox.extend_from_slice(&common::MESSAGE.replace_crlf());
        inbox.extend_from_slice(b"\nFrom bob@example.com  Mon Nov 23 10:01:00 2026\nSubject: two\nStatus: RO\n\n>From x\n\n");
        std::fs::write(d.join("inbox"), inbox).expect("inbox");
    });
    let mut s = common::preauth_session(&dir, MailLocation::Mbox {
            inbox: dir.join("inbox"),
            folders: dir.join("mail"),
        });
    common::drive(&mut s, data);
});

trait ReplaceCrlf {
    fn replace_crlf(&self) -> Vec<u8>;
}

impl ReplaceCrlf for [u8] {
    fn replace_crlf(&self) -> Vec<u8> {
        self.iter().copied().filter(|&c| c != b'\r').collect()
    }
}
