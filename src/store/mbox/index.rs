//! `imapd.index`: what one parse of an mbox found (offsets, UIDs, flags, sizes), kept
//! beside the journal so that opening an unchanged mbox reads this file instead of the
//! whole mbox. It is only a cache: it names the mbox state it describes (inode, size,
//! mtime and ctime in ns, and our writers' generation counter) and is ignored when that
//! differs, or when damaged.
//!
//! Layout, all big-endian: magic `IMAPDMB3`, stamp (5 x u64), u64 junk prefix, u8 pseudo
//! present, u32 count, the records (pseudo first), u64 checksum of all before it.
//! A record: u64 from/hdr/body/end/next, the message record both stores share
//! (`store::record`: uid, size, date, line end, later attributes), u8 flags, u8 bits
//! (recent, Content-Length framed, pseudo), three slots (u64 offset, u32 capacity,
//! u32::MAX when absent), keywords (u16 count, u16-length strings), u8 base present +
//! u32 uidvalidity, u32 last uid, keywords, two slots.

use super::parse::{Base, MsgRec, Slot};
use crate::store::record::MessageRecord;
use crate::store::sealed::{self, Reader};

const MAGIC: &[u8; 8] = b"IMAPDMB3";
pub const FILE: &str = "imapd.index";
/// Our writers' counter of changes that are not appends (`MboxFolder::will_write`).
pub const GENERATION_FILE: &str = "imapd.generation";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    /// Bumped by our own sessions before every write that is not an append: a same-length
    /// overwrite within one tick of the file system clock leaves the rest of the stamp
    /// as it was, and an append after it would otherwise look like an append alone.
    pub generation: u64,
}

impl Stamp {
    pub fn of(m: &std::fs::Metadata, generation: u64) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            ino: m.ino(),
            size: m.size(),
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
            ctime_ns: m.ctime() * 1_000_000_000 + m.ctime_nsec(),
            generation,
        }
    }
}

#[derive(Clone)]
pub struct State {
    pub stamp: Stamp,
    pub junk_prefix: u64,
    pub pseudo: Option<MsgRec>,
    pub msgs: Vec<MsgRec>,
}

struct Out(Vec<u8>);

impl Out {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn slot(&mut self, s: Option<Slot>) {
        let s = s.map_or((0, u32::MAX), |s| (s.off, s.cap));
        self.u64(s.0);
        self.u32(s.1);
    }
    fn strings(&mut self, v: &[String]) {
        self.u16(v.len().min(u16::MAX as usize) as u16);
        for k in v.iter().take(u16::MAX as usize) {
            let b = &k.as_bytes()[..k.len().min(u16::MAX as usize)];
            self.u16(b.len() as u16);
            self.0.extend_from_slice(b);
        }
    }
    fn rec(&mut self, r: &MsgRec) {
        for v in [r.from_off, r.hdr_off, r.body_off, r.end, r.next] {
            self.u64(v);
        }
        r.record().encode(&mut self.0);
        self.u8(r.flags);
        self.u8(r.recent as u8 | (r.cl_framed as u8) << 1 | (r.pseudo as u8) << 2);
        self.slot(r.status_slot);
        self.slot(r.xstatus_slot);
        self.slot(r.keywords_slot);
        self.strings(&r.keywords);
        match &r.base {
            Some(b) => {
                self.u8(1);
                self.u32(b.uidvalidity);
                self.u32(b.last_uid);
                self.strings(&b.keywords);
                self.slot(b.last_uid_slot);
                self.slot(b.keywords_slot);
            }
            None => self.u8(0),
        }
    }
}

pub fn encode(s: &State) -> Vec<u8> {
    let mut o = Out(Vec::with_capacity(64 + s.msgs.len() * 110));
    o.0.extend_from_slice(MAGIC);
    o.u64(s.stamp.ino);
    o.u64(s.stamp.size);
    o.u64(s.stamp.mtime_ns as u64);
    o.u64(s.stamp.ctime_ns as u64);
    o.u64(s.stamp.generation);
    o.u64(s.junk_prefix);
    o.u8(s.pseudo.is_some() as u8);
    o.u32(s.msgs.len() as u32);
    if let Some(p) = &s.pseudo {
        o.rec(p);
    }
    for m in &s.msgs {
        o.rec(m);
    }
    sealed::seal(&mut o.0);
    o.0
}

// The records' own shapes, on top of the shared big-endian reader.
fn read_slot(i: &mut Reader) -> Option<Option<Slot>> {
    let off = i.u64()?;
    let cap = i.u32()?;
    Some((cap != u32::MAX).then_some(Slot { off, cap }))
}

fn read_strings(i: &mut Reader) -> Option<Vec<String>> {
    let n = i.u16()?;
    let mut v = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let len = i.u16()? as usize;
        v.push(String::from_utf8(i.take(len)?.to_vec()).ok()?);
    }
    Some(v)
}

fn read_rec(i: &mut Reader) -> Option<MsgRec> {
    let mut r = MsgRec {
        from_off: i.u64()?,
        hdr_off: i.u64()?,
        body_off: i.u64()?,
        end: i.u64()?,
        next: i.u64()?,
        ..Default::default()
    };
    // A parse knows all of these: one without is not ours.
    let record = MessageRecord::decode(i)?;
    r.uid = record.uid;
    r.vsize = record.vsize?;
    r.internal_date = record.internal_date?;
    r.terminated = record.terminated?;
    r.flags = i.u8()?;
    let bits = i.u8()?;
    r.recent = bits & 1 != 0;
    r.cl_framed = bits & 2 != 0;
    r.pseudo = bits & 4 != 0;
    r.status_slot = read_slot(i)?;
    r.xstatus_slot = read_slot(i)?;
    r.keywords_slot = read_slot(i)?;
    r.keywords = read_strings(i)?;
    if i.u8()? == 1 {
        r.base = Some(Box::new(Base {
            uidvalidity: i.u32()?,
            last_uid: i.u32()?,
            keywords: read_strings(i)?,
            last_uid_slot: read_slot(i)?,
            keywords_slot: read_slot(i)?,
        }));
    }
    Some(r)
}

pub fn decode(b: &[u8]) -> Option<State> {
    let mut i = sealed::open(b, MAGIC)?;
    let stamp = Stamp {
        ino: i.u64()?,
        size: i.u64()?,
        mtime_ns: i.u64()? as i64,
        ctime_ns: i.u64()? as i64,
        generation: i.u64()?,
    };
    let junk_prefix = i.u64()?;
    let has_pseudo = i.u8()? == 1;
    let count = i.u32()? as usize;
    let pseudo = if has_pseudo {
        Some(read_rec(&mut i)?)
    } else {
        None
    };
    let mut msgs = Vec::with_capacity(count.min(i.field_bytes() / 64));
    for _ in 0..count {
        msgs.push(read_rec(&mut i)?);
    }
    i.at_end().then_some(State {
        stamp,
        junk_prefix,
        pseudo,
        msgs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let rec = MsgRec {
            from_off: 1,
            hdr_off: 2,
            body_off: 3,
            end: 4,
            next: 5,
            uid: 6,
            flags: 7,
            keywords: vec!["$Junk".into()],
            recent: true,
            vsize: 8,
            internal_date: -9,
            terminated: true,
            cl_framed: false,
            status_slot: Some(Slot { off: 10, cap: 3 }),
            xstatus_slot: None,
            keywords_slot: Some(Slot { off: 11, cap: 33 }),
            base: Some(Box::new(Base {
                uidvalidity: 12,
                last_uid: 13,
                keywords: vec!["a".into(), "b".into()],
                last_uid_slot: Some(Slot { off: 14, cap: 10 }),
                keywords_slot: None,
            })),
            pseudo: false,
        };
        let s = State {
            stamp: Stamp {
                ino: 1,
                size: 2,
                mtime_ns: 3,
                ctime_ns: 4,
                generation: 5,
            },
            junk_prefix: 0,
            pseudo: None,
            msgs: vec![rec.clone(), rec],
        };
        let mut b = encode(&s);
        let d = decode(&b).unwrap();
        assert_eq!(d.stamp, s.stamp);
        assert_eq!(d.msgs.len(), 2);
        assert_eq!(d.msgs[1].base, s.msgs[1].base);
        assert_eq!(d.msgs[1].keywords_slot, s.msgs[1].keywords_slot);
        assert_eq!(d.msgs[0].internal_date, -9);
        b[20] ^= 1;
        assert!(decode(&b).is_none());
    }

    /// The bytes are fixed by the format, not by the host: this holds on s390x
    /// (big-endian) as on x86_64, so an index written by one is read by the other.
    #[test]
    fn bytes_are_the_same_on_every_architecture() {
        let s = State {
            stamp: Stamp {
                ino: 0x0102_0304_0506_0708,
                size: 9,
                mtime_ns: -1,
                ctime_ns: 2,
                generation: 3,
            },
            junk_prefix: 0,
            pseudo: None,
            msgs: vec![MsgRec {
                uid: 0x0a0b_0c0d,
                ..Default::default()
            }],
        };
        let b = encode(&s);
        assert_eq!(&b[..16], b"IMAPDMB3\x01\x02\x03\x04\x05\x06\x07\x08");
        assert_eq!(&b[24..32], &[0xff; 8]);
        assert_eq!(&b[40..48], &[0, 0, 0, 0, 0, 0, 0, 3]);
        let uid_at = 8 + 8 * 6 + 1 + 4 + 8 * 5;
        assert_eq!(&b[uid_at..uid_at + 4], &[0x0a, 0x0b, 0x0c, 0x0d]);
        let sum = u64::from_be_bytes(b[b.len() - 8..].try_into().unwrap());
        assert_eq!(sum, sealed::checksum(&b[..b.len() - 8]));
        assert_eq!(format!("{sum:016x}"), GOLDEN_SUM);
    }

    const GOLDEN_SUM: &str = "c1a0bb39349131c8";
}
