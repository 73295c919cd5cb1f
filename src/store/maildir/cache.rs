//! `imapd.cache`: a snapshot of one folder, so that SELECT of an unchanged 100,000-message
//! folder reads one file instead of listing two directories and parsing the uidlist,
//! and FETCH FAST needs no stat() per message. Every field is big-endian, with a version
//! and a checksum (`store::sealed`); a damaged, foreign or stale cache is ignored and rebuilt.
//!
//! Layout: magic `IMAPDCA4`, u32 uidvalidity, u32 next_uid, i64 new/ mtime (ns),
//! i64 cur/ mtime (ns), i64 uidlist mtime (ns), u64 uidlist size, u32 count, then per
//! message: the message record both stores share (`store::record`: uid, size, date,
//! line end, later attributes), u8 place (1: in new/), u16 name length, name; last, u64
//! checksum of all before it (64-bit words read big-endian, multiply-xor mixed).

use crate::store::record::{self, MessageRecord};
use crate::store::sealed;

const MAGIC: &[u8; 8] = b"IMAPDCA4";
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
    pub record: MessageRecord,
    /// Path relative to the folder: `cur/<name>` or `new/<name>`.
    pub locator: String,
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
        let (place, name) = match m.locator.strip_prefix("new/") {
            Some(n) => (1u8, n),
            None => (0u8, m.locator.strip_prefix("cur/").unwrap_or(&m.locator)),
        };
        let name = &name.as_bytes()[..name.len().min(u16::MAX as usize)];
        m.record.encode(&mut out);
        out.push(place);
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
    // A count larger than the file has room for is damage.
    if count > r.field_bytes() / (record::MIN_LEN + 3) {
        return None;
    }
    s.messages.reserve(count);
    let mut last_uid = 0;
    for _ in 0..count {
        let record = MessageRecord::decode(&mut r)?;
        let place = r.u8()?;
        let len = r.u16()? as usize;
        let name = std::str::from_utf8(r.take(len)?).ok()?;
        if record.uid <= last_uid || name.bytes().any(|c| c == b'/') || place > 1 {
            return None;
        }
        last_uid = record.uid;
        let mut locator = String::with_capacity(4 + name.len());
        locator.push_str(if place == 1 { "new/" } else { "cur/" });
        locator.push_str(name);
        s.messages.push(CachedMessage { record, locator });
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
                    record: MessageRecord {
                        uid: 1,
                        vsize: Some(10),
                        internal_date: None,
                        terminated: Some(false),
                    },
                    locator: "cur/a:2,S".into(),
                },
                CachedMessage {
                    record: MessageRecord {
                        uid: 2,
                        vsize: None,
                        internal_date: Some(-5),
                        terminated: None,
                    },
                    locator: "new/b".into(),
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
