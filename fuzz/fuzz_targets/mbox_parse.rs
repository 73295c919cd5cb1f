//! An mbox file as Postfix, procmail, mutt, UW or anyone wrote it: separators,
//! Content-Length framing, metadata headers, served sizes; scanned whole and from a
//! message boundary (the appended tail), and written back as a new message.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::Write;

mod common;

fuzz_target!(|data: &[u8]| {
    let dir = common::scratch("mbox-parse", 100_000, |_| {});
    let path = dir.join("mbox");
    let mut f = std::fs::File::create(&path).expect("mbox");
    f.write_all(data).expect("write");
    let f = std::fs::File::open(&path).expect("open");
    let Ok(scan) = imap::store::mbox::parse::Scanner::scan(&f, 0, true) else {
        return;
    };
    if let Some(second) = scan.msgs.get(1) {
        let _ = imap::store::mbox::parse::Scanner::scan(&f, second.from_off, false);
    }
    let mut out = Vec::new();
    let meta = imap::store::mbox::write::Meta {
        uid: 7,
        flags: imap::store::Flags::SEEN,
        keywords: &[],
        recent: false,
    };
    imap::store::mbox::write::new_message(data, 1_700_000_000, &meta, None, &mut out);
    let _ = imap::store::mbox::parse::served_header(data, false);
});
