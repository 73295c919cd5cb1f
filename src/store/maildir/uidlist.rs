//! `dovecot-uidlist`: the UID <-> file mapping Dovecot keeps in each Maildir folder, and
//! which this server keeps too, so Dovecot and imapd can serve one Maildir in turn (or at
//! once) with the same UIDs. Version 3 (Dovecot 1.1+):
//!   `3 V<uidvalidity> N<next uid> G<guid>`  (other header fields may follow, any order)
//!   `<uid> [<ext>...] :<base file name>`     (ext such as `W<vsize>`; base = name before `:2,`)
//! Version 1 is Courier's `courierimapuiddb` layout, which Dovecot also reads:
//!   `1 <uidvalidity> <next uid>` then `<uid> <file name>`.

use super::super::{Result, StoreError};
use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub struct Uidlist {
    pub uidvalidity: u32,
    pub next_uid: u32,
    /// Header fields other than V and N (G, and any we don't know), written back as read.
    pub extra_header: Vec<String>,
    /// uid -> (ext fields, base name), in file order (ascending uid).
    pub records: Vec<Record>,
}

#[derive(Debug, Clone)]
pub struct Record {
    pub uid: u32,
    pub ext: String,
    pub base: String,
}

impl Record {
    /// Dovecot's `W<vsize>` extension: the message size with CRLF line ends.
    pub fn vsize(&self) -> Option<u64> {
        self.ext
            .split(' ')
            .find_map(|f| f.strip_prefix('W'))
            .and_then(|v| v.parse().ok())
    }
}

/// The base of a Maildir file name: everything before the `:2,` info (or `:1,`).
pub fn base_name(file: &str) -> &str {
    match file.find(':') {
        Some(i) => &file[..i],
        None => file,
    }
}

impl Uidlist {
    pub fn new(uidvalidity: u32) -> Self {
        Uidlist {
            uidvalidity,
            next_uid: 1,
            extra_header: vec![format!("G{:032x}", guid_seed())],
            records: Vec::new(),
        }
    }

    pub fn parse(text: &str) -> Result<Uidlist> {
        let mut lines = text.lines();
        let header = lines
            .next()
            .ok_or_else(|| StoreError::Corrupt("empty uidlist".into()))?;
        let mut fields = header.split_whitespace();
        let version = fields.next().unwrap_or("");
        let mut list = Uidlist::default();
        match version {
            "1" => {
                list.uidvalidity = parse_num(fields.next())?;
                list.next_uid = parse_num(fields.next())?;
            }
            "2" | "3" => {
                for f in fields {
                    match f.as_bytes()[0] {
                        b'V' => list.uidvalidity = parse_num(Some(&f[1..]))?,
                        b'N' => list.next_uid = parse_num(Some(&f[1..]))?,
                        _ => list.extra_header.push(f.to_string()),
                    }
                }
            }
            other => {
                return Err(StoreError::Corrupt(format!(
                    "uidlist version {other:?} not understood"
                )));
            }
        }
        if list.uidvalidity == 0 {
            return Err(StoreError::Corrupt("uidlist without UIDVALIDITY".into()));
        }
        let mut last = 0;
        for line in lines {
            if line.is_empty() {
                continue;
            }
            let (uid_s, rest) = line.split_once(' ').unwrap_or((line, ""));
            let Ok(uid) = uid_s.parse::<u32>() else {
                continue;
            };
            let (ext, base) = if version == "1" {
                // (Trimmed as a version 3 name is: what we write back reads the same.)
                ("", base_name(rest.trim()).trim())
            } else {
                match rest.find(':') {
                    Some(i) => (rest[..i].trim(), rest[i + 1..].trim()),
                    // Version 2 lines may lack the colon: then the last field is the name.
                    None => match rest.rsplit_once(' ') {
                        Some((e, b)) => (e.trim(), b.trim()),
                        None => ("", rest.trim()),
                    },
                }
            };
            if uid == 0 || uid <= last || base.is_empty() {
                continue; // out of order or damaged line: the file is rewritten without it
            }
            last = uid;
            list.records.push(Record {
                uid,
                ext: ext.to_string(),
                base: base.to_string(),
            });
        }
        if list.next_uid <= last {
            list.next_uid = last + 1;
        }
        Ok(list)
    }

    pub fn serialize(&self) -> String {
        let mut s = format!("3 V{} N{}", self.uidvalidity, self.next_uid);
        for f in &self.extra_header {
            s.push(' ');
            s.push_str(f);
        }
        s.push('\n');
        s.reserve(self.records.len() * 64);
        for r in &self.records {
            s.push_str(&r.uid.to_string());
            if !r.ext.is_empty() {
                s.push(' ');
                s.push_str(&r.ext);
            }
            s.push_str(" :");
            s.push_str(&r.base);
            s.push('\n');
        }
        s
    }

    pub fn by_base(&self) -> HashMap<&str, usize> {
        self.records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.base.as_str(), i))
            .collect()
    }
}

fn parse_num(s: Option<&str>) -> Result<u32> {
    s.and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError::Corrupt("bad number in uidlist header".into()))
}

fn guid_seed() -> u128 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    t ^ ((std::process::id() as u128) << 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dovecot_v3_roundtrip() {
        let text = "3 V1446660062 N893 Gc9411e16de473a566f06000061f01900\n\
                    891 :1511442247.M529702P32470.mail.example.org,S=201,W=206\n\
                    892 W206 :1511442438.M141759P32632.mail.example.org,S=201,W=206\n";
        let l = Uidlist::parse(text).unwrap();
        assert_eq!((l.uidvalidity, l.next_uid), (1446660062, 893));
        assert_eq!(l.records.len(), 2);
        assert_eq!(l.records[1].vsize(), Some(206));
        assert_eq!(
            l.records[0].base,
            "1511442247.M529702P32470.mail.example.org,S=201,W=206"
        );
        assert_eq!(l.serialize(), text);
    }

    #[test]
    fn courier_v1() {
        let l =
            Uidlist::parse("1 1199999999 4\n1 1200000000.123.host:2,S\n3 1200000001.124.host\n")
                .unwrap();
        assert_eq!((l.uidvalidity, l.next_uid), (1199999999, 4));
        assert_eq!(l.records[0].base, "1200000000.123.host");
        assert_eq!(l.records[1].uid, 3);
    }

    #[test]
    fn damaged_lines_are_dropped() {
        let l = Uidlist::parse("3 V5 N2\n7 :a\n3 :b\nx :c\n9 :\n").unwrap();
        assert_eq!(l.records.len(), 1);
        assert_eq!(l.next_uid, 8);
        assert!(Uidlist::parse("3 N2\n").is_err());
        assert!(Uidlist::parse("").is_err());
    }
}
