//! `imapd.cache`: a snapshot of one folder, so that SELECT of an unchanged 100,000-message
//! folder reads one file instead of listing two directories and parsing the uidlist,
//! and FETCH FAST needs no stat() per message. Every field is big-endian, with a version
//! and a checksum (`store::sealed`); a damaged, foreign or stale cache is ignored and rebuilt.
//!
//! Layout: magic `IMAPDCA3`, u32 uidvalidity, u32 next_uid, i64 new/ mtime (ns),
//! i64 cur/ mtime (ns), i64 uidlist mtime (ns), u64 uidlist size, u32 count, then per
//! message: u32 uid, u8 place (bit 0: in new/; bit 1: line end known, bit 2: the
//! message ends with a line end), u64 vsize (u64::MAX unknown), i64 internal
//! date (i64::MIN unknown), u16 name length, name; last, u64 checksum of all before it
//! (64-bit words read big-endian, multiply-xor mixed).

use crate::store::sealed;

const MAGIC: &[u8; 8] = b"IMAPDCA3";
pub const FILE: &str = "imapd.cache";

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stamps {
    pub new_mtime: i64,
    pub cur_mtime: i64,
    pub uidlist_mtime: i64,
    pub uidlist_size: u64,
}

impl Stamps {
    /// Neither new/ nor cur/ changed between the two readings (the uidlist aside).
    pub fn same_dirs(&self, other: &Stamps) -> bool {
        self.new_mtime == other.new_mtime && self.cur_mtime == other.cur_mtime
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedMessage {
    pub uid: u32,
    /// Path relative to the folder: `cur/<name>` or `new/<name>`.
    pub locator: String,
    pub vsize: Option<u64>,
    pub internal_date: Option<i64>,
    pub terminated: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub uidvalidity: u32,
    pub next_uid: u32,
    pub stamps: Stamps,
    pub messages: Vec<CachedMessage>,
}

pub fn encode(s: &Snapshot) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + s.messages.len() * 72);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&s.uidvalidity.to_be_bytes());
    out.extend_from_slice(&s.next_uid.to_be_bytes());
    out.extend_from_slice(&s.stamps.new_mtime.to_be_bytes());
    out.extend_from_slice(&s.stamps.cur_mtime.to_be_bytes());
    out.extend_from_slice(&s.stamps.uidlist_mtime.to_be_bytes());
    out.extend_from_slice(&s.stamps.uidlist_size.to_be_bytes());
    out.extend_from_slice(&(s.messages.len() as u32).to_be_bytes());
    for m in &s.messages {
        let (mut place, name) = match m.locator.strip_prefix("new/") {
            Some(n) => (1u8, n),
            None => (0u8, m.locator.strip_prefix("cur/").unwrap_or(&m.locator)),
        };
        match m.terminated {
            Some(true) => place |= 0b110,
            Some(false) => place |= 0b010,
            None => {}
        }
        let name = &name.as_bytes()[..name.len().min(u16::MAX as usize)];
        out.extend_from_slice(&m.uid.to_be_bytes());
        out.push(place);
        out.extend_from_slice(&m.vsize.unwrap_or(u64::MAX).to_be_bytes());
        out.extend_from_slice(&m.internal_date.unwrap_or(i64::MIN).to_be_bytes());
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name);
    }
    sealed::seal(&mut out);
    out
}

pub fn decode(b: &[u8]) -> Option<Snapshot> {
    let mut r = sealed::open(b, MAGIC)?;
    let mut s = Snapshot {
        uidvalidity: r.u32()?,
        next_uid: r.u32()?,
        stamps: Stamps {
            new_mtime: r.i64()?,
            cur_mtime: r.i64()?,
            uidlist_mtime: r.i64()?,
            uidlist_size: r.u64()?,
        },
        messages: Vec::new(),
    };
    let count = r.u32()? as usize;
    // Each record is at least 23 bytes: a count larger than the file allows is damage.
    if count > r.field_bytes() / 23 {
        return None;
    }
    s.messages.reserve(count);
    let mut last_uid = 0;
    for _ in 0..count {
        let uid = r.u32()?;
        let place = r.u8()?;
        let vsize = r.u64()?;
        let idate = r.i64()?;
        let len = r.u16()? as usize;
        let name = std::str::from_utf8(r.take(len)?).ok()?;
        if uid <= last_uid || name.bytes().any(|c| c == b'/') || place > 0b111 {
            return None;
        }
        last_uid = uid;
        let mut locator = String::with_capacity(4 + name.len());
        locator.push_str(if place & 1 == 1 { "new/" } else { "cur/" });
        locator.push_str(name);
        s.messages.push(CachedMessage {
            uid,
            locator,
            vsize: (vsize != u64::MAX).then_some(vsize),
            internal_date: (idate != i64::MIN).then_some(idate),
            terminated: (place & 0b010 != 0).then_some(place & 0b100 != 0),
        });
    }
    r.at_end().then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Snapshot {
        Snapshot {
            uidvalidity: 0x01020304,
            next_uid: 3,
            stamps: Stamps {
                new_mtime: 1,
                cur_mtime: -2,
                uidlist_mtime: 3,
                uidlist_size: 4,
            },
            messages: vec![
                CachedMessage {
                    uid: 1,
                    locator: "cur/a:2,S".into(),
                    vsize: Some(10),
                    internal_date: None,
                    terminated: Some(false),
                },
                CachedMessage {
                    uid: 2,
                    locator: "new/b".into(),
                    vsize: None,
                    internal_date: Some(-5),
                    terminated: None,
                },
            ],
        }
    }

    #[test]
    fn roundtrip_and_fixed_byte_order() {
        let bytes = encode(&sample());
        // UIDVALIDITY is stored big-endian whatever the host: the same bytes on s390x and x86_64.
        assert_eq!(&bytes[8..12], &[1, 2, 3, 4]);
        assert_eq!(decode(&bytes), Some(sample()));
    }

    #[test]
    fn damage_is_detected() {
        let mut bytes = encode(&sample());
        let n = bytes.len();
        bytes[n / 2] ^= 0x40;
        assert_eq!(decode(&bytes), None);
        assert_eq!(decode(&bytes[..n - 1]), None);
        assert_eq!(decode(b"garbage"), None);
    }
}
