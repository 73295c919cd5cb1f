//! \Recent (RFC 3501 2.3.2): a message is recent in the first session to select its
//! mailbox read-write after it arrived, however it arrived (delivered to new/, or
//! APPENDed, COPYed or MOVEd with flags straight into cur/). Dovecot keeps the first
//! recent UID in its index; we keep `imapd.recent`: `V<uidvalidity> <uid>`, the highest
//! UID some session was already shown as \Recent. A read-write session claims the
//! UIDs above it under an fcntl lock, so each goes to one session only; EXAMINE and
//! STATUS see them as recent without claiming them. The record is overwritten in place
//! (fixed width): no new file per claim, and no fsync (after a crash, mail is at worst
//! shown \Recent once more).

use crate::store::filelock::{Holders, RangeLock};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

pub const FILE: &str = "imapd.recent";
/// `V<10 digits> <10 digits>` padded: every record has the same length.
const RECORD: usize = 32;

fn open(dir: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(create)
        .create(create)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir.join(FILE))
}

fn parse(f: &File, uidvalidity: u32) -> io::Result<Option<u32>> {
    let mut buf = [0u8; RECORD];
    let n = f.read_at(&mut buf, 0)?;
    let text = String::from_utf8_lossy(&buf[..n]);
    let Some((v, uid)) = text.trim().split_once(' ') else {
        return Ok(None);
    };
    let same = v.strip_prefix('V').and_then(|v| v.parse::<u32>().ok()) == Some(uidvalidity);
    Ok(same.then(|| uid.trim().parse().ok()).flatten())
}

/// The highest UID already shown as \Recent (None: never recorded for this
/// UIDVALIDITY; the folder predates the file).
pub fn read(dir: &Path, uidvalidity: u32) -> Option<u32> {
    let f = open(dir, false).ok()?;
    let _shared = RangeLock::read(&f, Holders::OursBriefly).ok()?;
    parse(&f, uidvalidity).ok().flatten()
}

/// Claim the UIDs up to `highest`: returns the highest one claimed before (the caller
/// shows those above it as \Recent), or None if nothing was recorded yet.
pub fn claim(dir: &Path, uidvalidity: u32, highest: u32) -> io::Result<Option<u32>> {
    let f = open(dir, true)?;
    let _held = RangeLock::write(&f, Holders::OursBriefly)?;
    let before = parse(&f, uidvalidity)?;
    if before.is_none_or(|w| w < highest) {
        let mut record = format!("V{uidvalidity} {highest}").into_bytes();
        record.resize(RECORD - 1, b' ');
        record.push(b'\n');
        f.write_all_at(&record, 0)?;
    }
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
