//! What the session targets share: driving a sans-I/O session with fuzz input as a
//! client would send it (in pieces), and a private mail store per fuzzing process.
#![allow(dead_code)]

use imap::auth::User;
use imap::session::{Protocol, Refusal};
use imap::store::MailLocation;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Feed `data` in pieces (the first byte chooses their size, so framing is tested at
/// every split), stepping the session as a driver would; the output is drained.
pub fn drive(s: &mut dyn Protocol, data: &[u8]) {
    let (piece, data) = match data.split_first() {
        Some((&b, rest)) => ((b as usize % 64) + 1, rest),
        None => (1, data),
    };
    for chunk in data.chunks(piece.max(1)) {
        if s.is_closed() {
            break;
        }
        s.feed(chunk);
        for _ in 0..64 {
            let step = s.step(Instant::now());
            s.output().clear();
            if !step.busy || s.is_closed() {
                break;
            }
        }
    }
    s.connection_lost("fuzz input ended");
    s.finish();
}

/// An IMAP session already logged in (as PREAUTH) on the mail at `mail`.
pub fn preauth_session(dir: &Path, mail: MailLocation) -> imap::imap::Session {
    let user = User {
        name: "fuzz".into(),
        uid: None,
        gid: None,
        mail,
    };
    let mut s = imap::imap::Session::new("fuzz".into(), dir.join("passwd"), Some(user));
    // What the driver does with the PREAUTH login: open the store (as this process).
    if let Some(login) = s.take_login() {
        let store = login.user.mail.open().map_err(|_| Refusal::Temporary);
        s.enter(login, store);
    }
    s
}

/// A fresh directory of this process, made again every `every` calls (sessions may
/// create folders and append: the store must not grow without bound over a campaign).
pub fn scratch(name: &str, every: u32, make: impl Fn(&PathBuf)) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static CALLS: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!("imap-fuzz-{name}-{}", std::process::id()));
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    if n % every == 0 || !dir.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        make(&dir);
    }
    dir
}

pub const MESSAGE: &[u8] = b"From: Alice <alice@example.com>\r\nTo: bob@example.org\r\n\
Subject: =?utf-8?q?caf=C3=A9?=\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n\
--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nbody\r\n--b--\r\n";
