//! \Recent (RFC 3501 2.3.2): a message is recent in the first session to select its
//! mailbox read-write after it arrived, however it arrived (delivered to new/, or
//! APPENDed, COPYed or MOVEd with flags straight into cur/). Dovecot keeps the first
//! recent UID in its index; we keep `imapd.recent`: `V<uidvalidity> <uid>`, the highest
//! UID some session was already shown as \Recent. A read-write session claims the
//! UIDs above it under a dot-lock, so each goes to one session only; EXAMINE and
//! STATUS see them as recent without claiming them.

use crate::store::dotlock::DotLock;
use std::io;
use std::path::Path;

pub const FILE: &str = "imapd.recent";

/// The highest UID already shown as \Recent (None: never recorded for this
/// UIDVALIDITY; the folder predates the file).
pub fn read(dir: &Path, uidvalidity: u32) -> Option<u32> {
    let text = std::fs::read_to_string(dir.join(FILE)).ok()?;
    let (v, uid) = text.trim().split_once(' ')?;
    (v.strip_prefix('V')?.parse::<u32>().ok()? == uidvalidity)
        .then(|| uid.parse().ok())
        .flatten()
}

/// Claim the UIDs up to `highest`: returns the highest one claimed before (the caller
/// shows those above it as \Recent), or None if nothing was recorded yet.
pub fn claim(dir: &Path, uidvalidity: u32, highest: u32) -> io::Result<Option<u32>> {
    if read(dir, uidvalidity).is_some_and(|w| w >= highest) {
        return Ok(read(dir, uidvalidity));
    }
    let lock = DotLock::acquire(&dir.join(FILE))?;
    let before = read(dir, uidvalidity);
    if before.is_some_and(|w| w >= highest) {
        return Ok(before);
    }
    lock.replace(format!("V{uidvalidity} {highest}\n").as_bytes())?;
    Ok(before)
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_uid_is_claimed_once() {
        let dir = std::env::temp_dir().join(format!("imapd-recent-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(super::claim(&dir, 7, 3).unwrap(), None);
        assert_eq!(super::claim(&dir, 7, 3).unwrap(), Some(3));
        assert_eq!(super::claim(&dir, 7, 5).unwrap(), Some(3));
        assert_eq!(super::read(&dir, 7), Some(5));
        // Another UIDVALIDITY: nothing recorded for it.
        assert_eq!(super::read(&dir, 8), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
