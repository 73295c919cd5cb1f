//! Maildir file names: `<unique>[,S=<size>][,W=<vsize>]:2,<flag letters>`.
//! Letters in ASCII order (maildir spec): D draft, F flagged, P passed, R replied,
//! S seen, T trashed; Dovecot's lowercase a..z are keywords 0..25 of dovecot-keywords.

use super::super::Flags;
use std::sync::atomic::{AtomicU32, Ordering};

const LETTERS: [(u8, u8); 6] = [
    (b'D', Flags::DRAFT),
    (b'F', Flags::FLAGGED),
    (b'P', Flags::PASSED),
    (b'R', Flags::ANSWERED),
    (b'S', Flags::SEEN),
    (b'T', Flags::DELETED),
];

/// Flags encoded in a file name's `:2,` info; a name without info has none.
pub fn flags_of(file: &str) -> Flags {
    let mut f = Flags::default();
    let b = file.as_bytes();
    if let Some(i) = b
        .iter()
        .rposition(|&c| c == b':')
        .filter(|&i| b[i + 1..].starts_with(b"2,"))
    {
        for &c in &b[i + 3..] {
            if let Some(&(_, bit)) = LETTERS.iter().find(|(l, _)| *l == c) {
                f.system |= bit;
            } else if c.is_ascii_lowercase() {
                f.keywords |= 1 << (c - b'a');
            }
        }
    }
    f
}

/// The file name for `base` carrying `flags`.
pub fn with_flags(base: &str, flags: Flags) -> String {
    let mut s = String::with_capacity(base.len() + 12);
    s.push_str(base);
    s.push_str(":2,");
    for &(l, bit) in &LETTERS {
        if flags.system & bit != 0 {
            s.push(l as char);
        }
    }
    for k in 0..26 {
        if flags.keywords & (1 << k) != 0 {
            s.push((b'a' + k as u8) as char);
        }
    }
    s
}

/// `,W=<n>` (size with CRLF) from a file name, as Dovecot writes it.
pub fn vsize_of(file: &str) -> Option<u64> {
    let base = super::uidlist::base_name(file);
    base.split(',')
        .find_map(|f| f.strip_prefix("W="))
        .and_then(|v| v.parse().ok())
}

/// Names that are not messages: dot files, and anything with a `/` can't occur.
pub fn is_message_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.')
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A new unique base name: `<secs>.M<usecs>P<pid>Q<n>.<host>` (the maildir spec's
/// recommendation, as Dovecot writes it), with `/` and `:` in the host escaped.
pub fn unique(hostname: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let host = hostname.replace('/', "\\057").replace(':', "\\072");
    format!(
        "{}.M{}P{}Q{}.{}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        host
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_letters() {
        let f = flags_of("123.M1P2.host,S=10,W=12:2,FRSac");
        assert_eq!(f.system, Flags::FLAGGED | Flags::ANSWERED | Flags::SEEN);
        assert_eq!(f.keywords, 0b101);
        assert_eq!(
            with_flags("123.M1P2.host,S=10,W=12", f),
            "123.M1P2.host,S=10,W=12:2,FRSac"
        );
        assert_eq!(flags_of("123.host"), Flags::default());
        assert_eq!(vsize_of("123.host,S=10,W=12:2,S"), Some(12));
        assert_eq!(vsize_of("123.host:2,S"), None);
        assert!(unique("a/b:c").ends_with(".a\\057b\\072c"));
    }
}
