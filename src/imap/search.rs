//! SEARCH (RFC 3501 6.4.4): every key, over flags, dates, sizes, headers (RFC 2047
//! decoded) and bodies (transfer-decoded, converted from their charset), matched as
//! case-insensitive substrings. A message is read only when a key needs its text.

use super::fetch::envelope;
use super::fetch::mime::{self, Kind, Part};
use super::parser::{SearchKey, SeqSet};
use crate::store::{Flags, Mailbox, Result, StoreError};
use crate::util::date;

/// What one message offers the search, loaded on demand.
pub struct Candidate<'m> {
    mailbox: &'m mut dyn Mailbox,
    index: usize,
    seq: u32,
    max_uid: u32,
    count: u32,
    /// The file as read, before MIME parsing (enough for header keys).
    raw: Option<Vec<u8>>,
    header_crlf: Option<Vec<u8>>,
    message: Option<(Vec<u8>, Part)>,
    body_text: Option<String>,
}

impl<'m> Candidate<'m> {
    pub fn new(mailbox: &'m mut dyn Mailbox, index: usize) -> Self {
        let count = mailbox.view().len() as u32;
        let max_uid = mailbox.view().entries.last().map(|e| e.uid).unwrap_or(0);
        Candidate {
            mailbox,
            index,
            seq: index as u32 + 1,
            max_uid,
            count,
            raw: None,
            header_crlf: None,
            message: None,
            body_text: None,
        }
    }

    /// Octets of the message this candidate read (0: decided from the index alone).
    pub fn bytes_examined(&self) -> usize {
        match (&self.message, &self.raw) {
            (Some((m, _)), _) => m.len(),
            (None, Some(r)) => r.len(),
            (None, None) => 0,
        }
    }

    fn load(&mut self) -> Result<&(Vec<u8>, Part)> {
        if self.message.is_none() {
            let raw = match self.raw.take() {
                Some(r) => r,
                None => self.mailbox.read(self.index)?,
            };
            let crlf = mime::to_crlf(&raw).into_owned();
            let root = mime::parse(&crlf);
            self.message = Some((crlf, root));
        }
        Ok(self.message.as_ref().expect("loaded"))
    }

    /// The raw header block, read without parsing the MIME structure.
    fn header(&mut self) -> Result<&[u8]> {
        if self.raw.is_none() && self.message.is_none() {
            self.raw = Some(self.mailbox.read(self.index)?);
        }
        if let Some((msg, root)) = &self.message {
            return Ok(&msg[root.header.clone()]);
        }
        if self.header_crlf.is_none() {
            let raw = self.raw.as_deref().expect("read above");
            let end = mime::memfind(raw, b"\n\n")
                .map(|p| p + 2)
                .or_else(|| mime::memfind(raw, b"\n\r\n").map(|p| p + 3))
                .unwrap_or(raw.len());
            // Field parsing works on CRLF lines; MDAs write LF.
            self.header_crlf = Some(mime::to_crlf(&raw[..end]).into_owned());
        }
        Ok(self.header_crlf.as_deref().expect("computed above"))
    }

    fn header_values(&mut self, name: &str) -> Result<Vec<String>> {
        let header = self.header()?;
        Ok(mime::fields(header)
            .into_iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| mime::decode_header_value(v))
            .collect())
    }

    fn body(&mut self) -> Result<&str> {
        if self.body_text.is_none() {
            let (msg, root) = self.load()?;
            let mut text = String::new();
            collect_text(msg, root, &mut text);
            self.body_text = Some(text.to_lowercase());
        }
        Ok(self.body_text.as_deref().expect("computed"))
    }

    fn all_headers(&mut self) -> Result<String> {
        let (msg, root) = self.load()?;
        let mut s = String::new();
        for (n, v) in mime::fields(&msg[root.header.clone()]) {
            s.push_str(&String::from_utf8_lossy(n));
            s.push_str(": ");
            s.push_str(&mime::decode_header_value(v));
            s.push('\n');
        }
        Ok(s)
    }
}

/// Decoded text of every text part (and of encapsulated messages), for BODY and TEXT.
fn collect_text(msg: &[u8], part: &Part, out: &mut String) {
    match &part.kind {
        Kind::Multipart(children) => children.iter().for_each(|c| collect_text(msg, c, out)),
        Kind::Message(inner) => {
            for (n, v) in mime::fields(&msg[inner.header.clone()]) {
                out.push_str(&String::from_utf8_lossy(n));
                out.push_str(": ");
                out.push_str(&mime::decode_header_value(v));
                out.push('\n');
            }
            collect_text(msg, inner, out);
        }
        Kind::Leaf => {
            if part.mime_type != "text"
                && !(part.mime_type == "message" && part.subtype != "rfc822")
            {
                return;
            }
            let header = &msg[part.header.clone()];
            let body = &msg[part.body.clone()];
            let cte =
                mime::field(header, "Content-Transfer-Encoding").map(|v| v.to_ascii_lowercase());
            let decoded = match cte.as_deref() {
                Some(b"base64") => crate::util::base64::decode(body),
                Some(b"quoted-printable") => mime::decode_qp(body, false),
                _ => body.to_vec(),
            };
            let charset = part
                .params
                .iter()
                .find(|(k, _)| k == "charset")
                .map(|(_, v)| v.as_str());
            out.push_str(&mime::to_text(&decoded, charset));
            out.push('\n');
        }
    }
}

fn contains(hay: &str, needle: &str) -> bool {
    needle.is_empty() || hay.to_lowercase().contains(needle)
}

/// FROM, TO, CC and BCC search the envelope's addresses (RFC 3501 6.4.4), not only the
/// header's text: `<user (comment)@ (comment) example.org>` is found by
/// `user@example.org`.
fn is_address_field(name: &str) -> bool {
    ["FROM", "TO", "CC", "BCC"]
        .iter()
        .any(|f| f.eq_ignore_ascii_case(name))
}

/// The addresses of a header value as `name <local@host>`, one after another.
fn address_text(value: &[u8]) -> String {
    let mut out = String::new();
    for a in envelope::parse_addresses(value) {
        if let envelope::Address::Mailbox {
            name, local, host, ..
        } = a
        {
            if let Some(n) = name {
                out.push_str(&String::from_utf8_lossy(&n));
                out.push(' ');
            }
            out.push('<');
            out.push_str(&String::from_utf8_lossy(&local));
            if !host.is_empty() {
                out.push('@');
                out.push_str(&String::from_utf8_lossy(&host));
            }
            out.push_str(">, ");
        }
    }
    out
}

fn in_set(set: &SeqSet, n: u32, star: u32) -> bool {
    set.ranges(star).any(|(a, b)| (a..=b).contains(&n))
}

/// Does the candidate match `key`? Search strings are UTF-8 (CHARSET UTF-8 or US-ASCII).
pub fn matches(key: &SearchKey, c: &mut Candidate) -> Result<bool> {
    use SearchKey as K;
    let entry = &c.mailbox.view().entries[c.index];
    let flags = entry.flags;
    let recent = entry.recent;
    let uid = entry.uid;
    Ok(match key {
        K::All => true,
        K::And(keys) => {
            for k in keys {
                if !matches(k, c)? {
                    return Ok(false);
                }
            }
            true
        }
        K::Or(a, b) => matches(a, c)? || matches(b, c)?,
        K::Not(k) => !matches(k, c)?,
        K::Flag(bit, set) => flags.has(*bit) == *set,
        K::Keyword(name, set) => {
            let has = c
                .mailbox
                .keywords()
                .iter()
                .position(|k| k.eq_ignore_ascii_case(name))
                .is_some_and(|i| flags.keywords & (1 << i) != 0);
            has == *set
        }
        K::Recent(set) => recent == *set,
        K::New => recent && !flags.has(Flags::SEEN),
        K::Old => !recent,
        K::Uid(set) => in_set(set, uid, c.max_uid),
        K::Seq(set) => in_set(set, c.seq, c.count),
        K::Larger(n) => c.mailbox.size(c.index)? > *n,
        K::Smaller(n) => c.mailbox.size(c.index)? < *n,
        K::Before(d) | K::On(d) | K::Since(d) => {
            let t = c.mailbox.internal_date(c.index)?;
            let day = (t + date::local_offset(t) as i64).div_euclid(86400);
            match key {
                K::Before(_) => day < *d,
                K::On(_) => day == *d,
                _ => day >= *d,
            }
        }
        K::SentBefore(d) | K::SentOn(d) | K::SentSince(d) => {
            let v = c.header_values("Date")?;
            let Some(day) = v.first().and_then(|s| date::rfc5322_day(s.as_bytes())) else {
                return Ok(false);
            };
            match key {
                K::SentBefore(_) => day < *d,
                K::SentOn(_) => day == *d,
                _ => day >= *d,
            }
        }
        K::Header(name, value) => {
            let needle = String::from_utf8_lossy(value).to_lowercase();
            let values = c.header_values(name)?;
            values.iter().any(|v| contains(v, &needle))
                || (is_address_field(name)
                    && values
                        .iter()
                        .any(|v| contains(&address_text(v.as_bytes()), &needle)))
        }
        K::Body(v) => {
            let needle = String::from_utf8_lossy(v).to_lowercase();
            c.body()?.contains(&needle)
        }
        K::Text(v) => {
            let needle = String::from_utf8_lossy(v).to_lowercase();
            contains(&c.all_headers()?, &needle) || c.body()?.contains(&needle)
        }
    })
}

/// How much a key costs to evaluate: flags and numbers are free, sizes and dates need
/// metadata, header keys read the file's header, body keys decode the whole message.
fn cost(key: &SearchKey) -> u8 {
    use SearchKey as K;
    match key {
        K::All
        | K::Flag(..)
        | K::Keyword(..)
        | K::Recent(_)
        | K::New
        | K::Old
        | K::Uid(_)
        | K::Seq(_) => 0,
        K::Larger(_) | K::Smaller(_) | K::Before(_) | K::On(_) | K::Since(_) => 1,
        K::Header(..) | K::SentBefore(_) | K::SentOn(_) | K::SentSince(_) => 2,
        K::Body(_) | K::Text(_) => 3,
        K::Not(k) => cost(k),
        K::Or(a, b) => cost(a).max(cost(b)),
        K::And(v) => v.iter().map(cost).max().unwrap_or(0),
    }
}

/// Reorder AND-ed keys cheapest first (the result is the same; the work is not):
/// `TEXT x SUBJECT y` then reads bodies only of messages whose subject matched.
pub fn optimize(key: &mut SearchKey) {
    match key {
        SearchKey::And(v) => {
            v.iter_mut().for_each(optimize);
            v.sort_by_key(cost);
        }
        SearchKey::Or(a, b) => {
            optimize(a);
            optimize(b);
        }
        SearchKey::Not(k) => optimize(k),
        _ => {}
    }
}

/// A vanished message matches nothing; other errors stop the search.
pub fn matches_or_skip(key: &SearchKey, c: &mut Candidate) -> Result<bool> {
    match matches(key, c) {
        Err(StoreError::Expunged) => Ok(false),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cheap_keys_first() {
        let mut k = SearchKey::And(vec![
            SearchKey::Text(b"x".to_vec()),
            SearchKey::Header("SUBJECT".into(), b"y".to_vec()),
            SearchKey::Flag(Flags::SEEN, true),
        ]);
        optimize(&mut k);
        let SearchKey::And(v) = k else { panic!() };
        assert!(matches!(v[0], SearchKey::Flag(..)));
        assert!(matches!(v[1], SearchKey::Header(..)));
        assert!(matches!(v[2], SearchKey::Text(_)));
    }
}
