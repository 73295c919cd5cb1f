//! The protocol transcripts of tests/transcripts, fed to the engines in this process
//! over a temporary Maildir: no socket, no daemon, no root, and a clock the runner
//! moves (a held login refusal is due at once). Milliseconds for all of them; the
//! black-box replay (tests/test_transcripts.py) runs the same files against the real
//! binaries in both run modes. The format is described there.

use imap::session::{Mode, Peer, Protocol, Refusal, Service};
use regex::Regex;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const USER: &str = "transcript";
// As tests/conftest.py: the transcripts send it as an 11-octet literal.
const PASSWORD: &str = "s3cret pass";

/// Python's `unicode_escape` as the transcripts use it: \r \n \t \\ \xNN.
fn unescape(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut b = [0u8; 4];
            // Non-ASCII stands for its code point as one octet (latin-1), as the replay sends it.
            match u8::try_from(c as u32) {
                Ok(o) => out.push(o),
                Err(_) => out.extend_from_slice(c.encode_utf8(&mut b).as_bytes()),
            }
            continue;
        }
        match chars.next() {
            Some('r') => out.push(b'\r'),
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('\\') => out.push(b'\\'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                out.push(u8::from_str_radix(&hex, 16).expect("\\xNN"));
            }
            Some(other) => {
                out.push(b'\\');
                out.push(other as u8);
            }
            None => out.push(b'\\'),
        }
    }
    out
}

/// A user with a Maildir under a fresh directory, and the users file naming them.
struct Account {
    base: PathBuf,
    users_file: PathBuf,
}

impl Account {
    fn new(name: &str) -> Account {
        let base =
            std::env::temp_dir().join(format!("imapd-transcript-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let home = base.join("home");
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(home.join("Maildir").join(sub)).unwrap();
        }
        let users_file = base.join("passwd");
        std::fs::write(
            &users_file,
            format!(
                "{USER}:{{PLAIN}}{PASSWORD}:1000:1000::{}::\n",
                home.display()
            ),
        )
        .unwrap();
        Account { base, users_file }
    }

    fn deliver(&self, n: usize, text: &[u8]) {
        let maildir = self.base.join("home").join("Maildir");
        let name = format!("1700000000.M{n}P1.transcript");
        std::fs::write(maildir.join("tmp").join(&name), text).unwrap();
        std::fs::rename(
            maildir.join("tmp").join(&name),
            maildir.join("new").join(&name),
        )
        .unwrap();
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// The engine and what it has said that the transcript has not read yet.
struct Driver {
    session: Box<dyn Protocol>,
    pending: Vec<u8>,
    now: Instant,
    steps: usize,
    literals: bool,
}

impl Driver {
    /// One response line, with the literals it announces folded in (IMAP), as the
    /// black-box replay reads it.
    fn line(&mut self, what: &str) -> String {
        let mut out = self.raw_line(what);
        while self.literals {
            let Some(n) = literal_at_end(&out) else { break };
            self.fill(n, what);
            out.extend_from_slice(b"\r\n");
            out.extend(self.pending.drain(..n));
            let more = self.raw_line(what);
            out.extend_from_slice(&more);
        }
        // Latin-1, as the replay decodes.
        out.iter().map(|&b| b as char).collect()
    }

    fn raw_line(&mut self, what: &str) -> Vec<u8> {
        loop {
            if let Some(lf) = self.pending.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.pending.drain(..=lf).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return line;
            }
            self.more(what);
        }
    }

    fn fill(&mut self, n: usize, what: &str) {
        while self.pending.len() < n {
            self.more(what);
        }
    }

    /// Step the engine once more (acting on a login as a `--user` daemon does: the
    /// store opened here, as the process's own user) and take its output.
    fn more(&mut self, what: &str) {
        self.steps += 1;
        assert!(
            self.steps < 100_000,
            "{what}: no more output from the engine"
        );
        assert!(!self.session.is_closed(), "{what}: the session ended");
        let step = self.session.step(self.now);
        if let Some(login) = self.session.take_login() {
            let store = login.user.mail.open().map_err(|_| Refusal::Temporary);
            self.session.enter(login, store);
        }
        let out = std::mem::take(self.session.output());
        if out.is_empty() && !step.busy {
            // Nothing to do before its deadline: move the clock there (a held refusal).
            match step.deadline {
                Some(t) if t > self.now => self.now = t,
                _ => self.now += Duration::from_millis(10),
            }
        }
        self.pending.extend_from_slice(&out);
    }
}

/// N of a line ending in `{N}`.
fn literal_at_end(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&body[open + 1..]).ok()?.parse().ok()
}

fn replay(service: &Service, path: &Path) {
    let name = path.file_stem().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).unwrap();
    let steps: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    assert!(!steps.is_empty(), "{name}: empty");
    let account = Account::new(&format!("{}-{name}", service.name));
    for (n, step) in steps.iter().enumerate() {
        if let Some(m) = step.strip_prefix("M: ") {
            account.deliver(n, &unescape(m));
        }
    }
    let peer = Peer {
        addr: Some("127.0.0.1:40000".parse().unwrap()),
        mode: Mode::Daemon,
        secure: false,
        starttls: false,
    };
    let mut d = Driver {
        session: (service.start)(peer, account.users_file.clone()),
        pending: Vec::new(),
        now: Instant::now(),
        steps: 0,
        literals: service.name == "imapd",
    };
    for (n, step) in steps.iter().filter(|s| !s.starts_with("M: ")).enumerate() {
        let where_ = format!("{name} step {}", n + 1);
        let (kind, text) = step.split_once(' ').unwrap_or((step, ""));
        let text = text.replace("{user}", USER).replace("{password}", PASSWORD);
        match kind {
            "C:" | "C+" => {
                let mut data = unescape(&text);
                data.extend_from_slice(b"\r\n");
                d.session.feed(&data);
            }
            "S:" => {
                let re = Regex::new(&format!("(?s)^(?:{text})$")).expect("a regex");
                let line = d.line(&where_);
                assert!(re.is_match(&line), "{where_}: {line:?} !~ {text:?}");
            }
            "S*" => {
                let re = Regex::new(&format!("(?s)^(?:{text})$")).expect("a regex");
                while !re.is_match(&d.line(&where_)) {}
            }
            _ => panic!("{where_}: bad transcript line {step:?}"),
        }
    }
    d.session.finish();
}

fn transcripts(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no transcripts in {}", dir.display());
    v
}

#[test]
fn imap_transcripts() {
    for path in transcripts("tests/transcripts") {
        replay(&imap::imap::SERVICE, &path);
    }
}

#[test]
fn pop3_transcripts() {
    for path in transcripts("tests/transcripts/pop3") {
        replay(&imap::pop3::SERVICE, &path);
    }
}
