//! UIDVALIDITY for a new mailbox: the time, as Dovecot and UW choose it, but never a
//! value this user was given before. RFC 3501 2.3.1.1: a mailbox deleted and created
//! again must not reuse a UIDVALIDITY, even within the same second. The last value is
//! kept per user in `dovecot-uidvalidity` (hexadecimal), the file Dovecot keeps in a
//! Maildir root, so a Maildir served by both never gets one value twice.

use super::dotlock::DotLock;
use super::filelock::Holders;
use std::path::Path;

pub const FILE: &str = "dovecot-uidvalidity";

/// The next UIDVALIDITY of the user whose counter lives in `dir`.
pub fn next(dir: &Path) -> u32 {
    let now = crate::util::date::now().clamp(1, u32::MAX as i64) as u32;
    let path = dir.join(FILE);
    let Ok(lock) = DotLock::acquire(&path, Holders::OursBriefly) else {
        // The counter cannot be kept (no write access): the time alone, as before.
        return now;
    };
    let last = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| u32::from_str_radix(t.trim(), 16).ok())
        .unwrap_or(0);
    let value = if last >= now && last < u32::MAX {
        last + 1
    } else {
        now
    };
    if let Err(e) = lock.replace(format!("{value:08x}\n").as_bytes()) {
        crate::log::warning(&format!(
            "cannot record UIDVALIDITY in {}: {e}",
            path.display()
        ));
    }
    value
}

#[cfg(test)]
mod tests {
    #[test]
    fn never_the_same_twice_even_within_a_second() {
        let dir = std::env::temp_dir().join(format!("imapd-uidv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = super::next(&dir);
        let b = super::next(&dir);
        let c = super::next(&dir);
        assert!(a < b && b < c, "{a} {b} {c}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
