//! The one place where a client's mailbox name becomes a store name. Everything a
//! client sends goes through `MailboxName::parse_with` (with the store's hierarchy
//! delimiter), which confines it to the user's mail root: no absolute paths, `..`,
//! `~other`, `#namespace`, a path separator that is not the delimiter, a level that
//! starts with `.` (hidden files, `..`), NUL or control characters, LIST's wildcards
//! `*` and `%`, a name that is another file's dot-lock (`NAME.lock` beside an mbox is
//! that mbox's lock to procmail, Postfix, mutt and us), and INBOX in any case means
//! INBOX (RFC 3501 5.1).

use super::DELIMITER;

/// A validated mailbox name: modified UTF-7, levels joined by the store's delimiter
/// (Maildir++ `.`, mbox `/`), INBOX canonical.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MailboxName(String, char);

/// Longest name accepted: a Maildir++ folder is one directory entry (`.` + name),
/// and file systems allow 255 octets.
pub const MAX_NAME: usize = 250;

impl MailboxName {
    pub fn inbox() -> Self {
        MailboxName("INBOX".into(), DELIMITER)
    }

    /// A name for a Maildir++ store (delimiter `.`).
    pub fn parse(raw: &[u8]) -> Result<Self, &'static str> {
        Self::parse_with(raw, DELIMITER)
    }

    /// A name for a store whose hierarchy delimiter is `delim` (`.` or `/`).
    pub fn parse_with(raw: &[u8], delim: char) -> Result<Self, &'static str> {
        if raw.is_empty() {
            return Err("empty name");
        }
        if raw.len() > MAX_NAME {
            return Err("name too long");
        }
        if raw.iter().any(|&c| c < 0x20 || c == 0x7f) {
            return Err("control characters are not allowed");
        }
        if raw.contains(&b'\\') {
            return Err("'\\' is not allowed");
        }
        if raw.contains(&b'*') || raw.contains(&b'%') {
            return Err("'*' and '%' are LIST wildcards, not name characters");
        }
        if delim == '.' && raw.contains(&b'/') {
            return Err("'/' is not allowed (the hierarchy delimiter is '.')");
        }
        match raw[0] {
            b'~' => return Err("'~' (other users' mail) is not allowed"),
            b'#' => return Err("namespaces other than the personal one are not available"),
            _ => {}
        }
        if crate::util::mutf7::decode(raw).is_none() {
            return Err("not valid modified UTF-7 (RFC 3501 5.1.3)");
        }
        let s = std::str::from_utf8(raw).map_err(|_| "not ASCII")?;
        let mut parts: Vec<&str> = s.split(delim).collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err("empty hierarchy level (leading, trailing or doubled delimiter)");
        }
        if parts.iter().any(|p| p.starts_with('.')) {
            return Err("a level may not start with '.'");
        }
        if parts
            .iter()
            .any(|p| p.to_ascii_lowercase().ends_with(".lock"))
        {
            // An mbox folder `X.lock` is folder X's dot-lock to every MDA and to us; in a
            // Maildir it is harmless, but a name must mean the same in both stores.
            return Err("a name ending in '.lock' is a lock file's name");
        }
        if parts[0].eq_ignore_ascii_case("INBOX") {
            parts[0] = "INBOX";
        }
        Ok(MailboxName(parts.join(&delim.to_string()), delim))
    }

    /// How many hierarchy levels the name has.
    pub fn levels(&self) -> usize {
        self.0.split(self.1).count()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_inbox(&self) -> bool {
        self.0 == "INBOX"
    }

    /// The parent names, outermost first (`a.b.c` -> `a`, `a.b`).
    pub fn parents(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut acc = String::new();
        let parts: Vec<&str> = self.0.split(self.1).collect();
        for p in &parts[..parts.len() - 1] {
            if !acc.is_empty() {
                acc.push(self.1);
            }
            acc.push_str(p);
            out.push(acc.clone());
        }
        out
    }
}

/// RFC 3501 6.3.8 LIST pattern match: `*` matches anything, `%` anything but the
/// delimiter. Iterative with backtracking on the last `*`/`%`, so no pattern blows up.
pub fn list_match(pattern: &[u8], name: &[u8]) -> bool {
    list_match_with(pattern, name, DELIMITER)
}

/// `list_match` for a store whose delimiter is `delim`.
pub fn list_match_with(pattern: &[u8], name: &[u8], delim: char) -> bool {
    let delim = delim as u8;
    // Dynamic programming over (pattern, name) positions: O(p*n), bounded by the
    // line limit, immune to exponential backtracking.
    let n = name.len();
    let mut prev = vec![false; n + 1];
    prev[0] = true;
    for &pc in pattern {
        let mut cur = vec![false; n + 1];
        match pc {
            b'*' => {
                let mut any = false;
                for j in 0..=n {
                    any |= prev[j];
                    cur[j] = any;
                }
            }
            b'%' => {
                let mut any = false;
                for j in 0..=n {
                    if j > 0 && name[j - 1] == delim {
                        any = false;
                    }
                    any |= prev[j];
                    cur[j] = any;
                }
            }
            _ => {
                for j in 1..=n {
                    cur[j] = prev[j - 1] && name[j - 1] == pc;
                }
            }
        }
        prev = cur;
    }
    prev[n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confinement() {
        for bad in [
            &b"/root"[..],
            b"../other/INBOX",
            b"~root/x",
            b"#news.comp",
            b"a..b",
            b".hidden",
            b"a.",
            b"x/y",
            b"a\0b",
            b"tab\there",
            b"\xc3\xa9",
            b"",
            b"..",
            b"&AGE-",
            b"*",
            b"a%b",
        ] {
            assert!(
                MailboxName::parse(bad).is_err(),
                "{:?} accepted",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(MailboxName::parse(b"inbox").unwrap().as_str(), "INBOX");
        assert_eq!(
            MailboxName::parse(b"Inbox.Sub").unwrap().as_str(),
            "INBOX.Sub"
        );
        assert_eq!(
            MailboxName::parse(b"Work.Projects").unwrap().parents(),
            vec!["Work".to_string()]
        );
        assert!(MailboxName::parse(b"&U,BTFw-").is_ok());
        // mbox: `X.lock` beside `X` is X's dot-lock; no folder may have such a name.
        for lock in [&b"Work.lock"[..], b"a/Sent.LOCK", b"INBOX.lock"] {
            assert!(MailboxName::parse_with(lock, '/').is_err());
        }
        assert!(MailboxName::parse_with(b"Work.locker", '/').is_ok());
        // mbox: `/` separates levels; `.` is an ordinary character but never leads.
        for bad in [
            &b"/root"[..],
            b"../x",
            b"a/../b",
            b"a/.imap",
            b".subscriptions",
            b"a//b",
            b"a/",
        ] {
            assert!(MailboxName::parse_with(bad, '/').is_err());
        }
        let n = MailboxName::parse_with(b"inbox", '/').unwrap();
        assert!(n.is_inbox());
        let n = MailboxName::parse_with(b"lists/rust.users", '/').unwrap();
        assert_eq!((n.levels(), n.parents()), (2, vec!["lists".to_string()]));
    }

    #[test]
    fn patterns() {
        assert!(list_match(b"*", b"a.b.c"));
        assert!(list_match(b"%", b"INBOX"));
        assert!(!list_match(b"%", b"a.b"));
        assert!(list_match(b"a.%", b"a.b"));
        assert!(!list_match(b"a.%", b"a.b.c"));
        assert!(list_match(b"a*c", b"a.b.c"));
        assert!(list_match(b"%.%", b"a.b"));
        assert!(!list_match(b"b*", b"a.b"));
        let long_pat = vec![b'*'; 200];
        assert!(list_match(&long_pat, &[b'x'; 200]));
    }
}
