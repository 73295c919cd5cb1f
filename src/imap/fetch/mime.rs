//! The MIME structure of a message (RFC 2045/2046) as IMAP needs it: byte ranges of
//! every part's header and body in the CRLF form of the message, so BODY[section],
//! BODYSTRUCTURE sizes and line counts are exact. Parsing is linear in the message size
//! and bounded in depth and part count (config), so hostile MIME costs no more than
//! reading the message.

use crate::config::{MAX_MIME_DEPTH, MAX_MIME_PARTS};
use std::borrow::Cow;
use std::ops::Range;

#[derive(Debug)]
pub struct Part {
    /// The header block, including the blank line that ends it (if present).
    pub header: Range<usize>,
    pub body: Range<usize>,
    pub mime_type: String,
    pub subtype: String,
    pub params: Vec<(String, String)>,
    pub kind: Kind,
}

#[derive(Debug)]
pub enum Kind {
    Leaf,
    Multipart(Vec<Part>),
    /// message/rfc822: the encapsulated message, its header and body as a Part.
    Message(Box<Part>),
}

/// The message with every bare LF turned into CRLF (borrowed when already CRLF).
pub fn to_crlf(data: &[u8]) -> Cow<'_, [u8]> {
    let bare = data
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || data[i - 1] != b'\r'));
    if !bare {
        return Cow::Borrowed(data);
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 30);
    let mut prev = 0u8;
    for &b in data {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    Cow::Owned(out)
}

/// End of the header block starting at `start`: index just past the blank line, and
/// the index where the body begins (the same). A message without a blank line is all header.
fn header_end(msg: &[u8], start: usize, limit: usize) -> usize {
    if msg[start..limit].starts_with(b"\r\n") {
        return start + 2;
    }
    match memfind(&msg[start..limit], b"\r\n\r\n") {
        Some(p) => start + p + 4,
        None => limit,
    }
}

pub fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        match hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&b| b == first)
        {
            Some(p) => {
                i += p;
                if &hay[i..i + needle.len()] == needle {
                    return Some(i);
                }
                i += 1;
            }
            None => return None,
        }
    }
    None
}

/// Header fields of a header block: (name, raw value with folding) pairs.
pub fn fields(header: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < header.len() {
        let line_end = memfind(&header[i..], b"\r\n")
            .map(|p| i + p)
            .unwrap_or(header.len());
        if line_end == i {
            break; // blank line: end of header
        }
        // Field extends over continuation lines (starting with SP or HTAB).
        let mut end = line_end;
        while end + 2 < header.len() && matches!(header[end + 2], b' ' | b'\t') {
            end = memfind(&header[end + 2..], b"\r\n")
                .map(|p| end + 2 + p)
                .unwrap_or(header.len());
        }
        let field = &header[i..end];
        if let Some(colon) = field.iter().position(|&c| c == b':') {
            let name = trim(&field[..colon]);
            if !name.is_empty() && name.iter().all(|&c| c > b' ' && c < 0x7f) {
                out.push((name, &field[colon + 1..]));
            }
        }
        i = (end + 2).min(header.len());
    }
    out
}

pub fn trim(s: &[u8]) -> &[u8] {
    let a = s
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(s.len());
    let b = s
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map(|p| p + 1)
        .unwrap_or(a);
    &s[a..b.max(a)]
}

/// A field value with folding removed and outer white space trimmed.
pub fn unfold(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    for &c in v {
        if c != b'\r' && c != b'\n' {
            out.push(c);
        }
    }
    trim(&out).to_vec()
}

/// First value of `name` in the header block, unfolded.
pub fn field(header: &[u8], name: &str) -> Option<Vec<u8>> {
    fields(header)
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| unfold(v))
}

/// Parameters of a header value, lower-case names, values unquoted.
pub type Params = Vec<(String, String)>;

/// Parse `type/subtype; a=b; c="d"` (RFC 2045 5.1). Comments are removed.
pub fn content_type(v: &[u8]) -> Option<(String, String, Params)> {
    let v = strip_comments(v);
    let mut parts = split_params(&v);
    let first = parts.remove(0);
    let (t, s) = first.split_once('/')?;
    let (t, s) = (t.trim().to_ascii_lowercase(), s.trim().to_ascii_lowercase());
    let token = |x: &str| {
        !x.is_empty()
            && x.bytes()
                .all(|c| c > b' ' && c < 0x7f && !b"()<>@,;:\\\"/[]?=".contains(&c))
    };
    if !token(&t) || !token(&s) {
        return None;
    }
    Some((t, s, params_of(parts)))
}

/// Parameters of a header value such as Content-Disposition (`attachment; filename=x`):
/// the first token and the parameters.
pub fn value_with_params(v: &[u8]) -> (String, Vec<(String, String)>) {
    let v = strip_comments(v);
    let mut parts = split_params(&v);
    let first = parts.remove(0).trim().to_string();
    (first, params_of(parts))
}

fn params_of(parts: Vec<String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in parts {
        if let Some((k, v)) = p.split_once('=') {
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim();
            let v = if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
                let inner = &v[1..v.len() - 1];
                let mut s = String::new();
                let mut esc = false;
                for c in inner.chars() {
                    if esc || c != '\\' {
                        s.push(c);
                        esc = false;
                    } else {
                        esc = true;
                    }
                }
                s
            } else {
                v.to_string()
            };
            if !k.is_empty() {
                out.push((k, v));
            }
        }
    }
    out
}

fn strip_comments(v: &[u8]) -> String {
    let v = unfold(v);
    let mut out = String::new();
    let (mut depth, mut quoted, mut esc) = (0, false, false);
    for &b in &v {
        let c = b as char;
        if esc {
            if depth == 0 {
                out.push(c);
            }
            esc = false;
            continue;
        }
        match c {
            '\\' => {
                esc = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(if b >= 0x80 { '\u{FFFD}' } else { c }),
            _ => {}
        }
    }
    out
}

fn split_params(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let (mut quoted, mut esc) = (false, false);
    for c in s.chars() {
        if esc {
            out.last_mut().unwrap().push(c);
            esc = false;
            continue;
        }
        match c {
            '\\' if quoted => {
                esc = true;
                out.last_mut().unwrap().push(c);
            }
            '"' => {
                quoted = !quoted;
                out.last_mut().unwrap().push(c);
            }
            ';' if !quoted => out.push(String::new()),
            _ => out.last_mut().unwrap().push(c),
        }
    }
    out
}

struct Budget {
    parts: usize,
}

/// Parse a whole (CRLF) message.
pub fn parse(msg: &[u8]) -> Part {
    let mut budget = Budget { parts: 0 };
    parse_entity(msg, 0, msg.len(), false, 0, &mut budget)
}

fn parse_entity(
    msg: &[u8],
    start: usize,
    end: usize,
    in_digest: bool,
    depth: usize,
    budget: &mut Budget,
) -> Part {
    budget.parts += 1;
    let hend = header_end(msg, start, end);
    let header = start..hend;
    let body = hend..end;
    let ct = field(&msg[header.clone()], "Content-Type").and_then(|v| content_type(&v));
    let (mime_type, subtype, params) = ct.unwrap_or_else(|| {
        if in_digest {
            ("message".into(), "rfc822".into(), Vec::new())
        } else {
            (
                "text".into(),
                "plain".into(),
                vec![("charset".into(), "us-ascii".into())],
            )
        }
    });
    let mut part = Part {
        header,
        body: body.clone(),
        mime_type,
        subtype,
        params,
        kind: Kind::Leaf,
    };
    let exhausted = depth >= MAX_MIME_DEPTH || budget.parts >= MAX_MIME_PARTS;
    if part.mime_type == "multipart" {
        let boundary = part
            .params
            .iter()
            .find(|(k, _)| k == "boundary")
            .map(|(_, v)| v.clone());
        match boundary {
            Some(b) if !b.is_empty() && b.len() <= 200 && !exhausted => {
                let digest = part.subtype == "digest";
                let mut ranges = split_multipart(msg, body.clone(), b.as_bytes());
                // Past the part budget, the remaining parts are folded into the last
                // one allowed: every byte stays reachable, the structure stays small.
                let allowed = MAX_MIME_PARTS.saturating_sub(budget.parts).max(1);
                if ranges.len() > allowed {
                    let end = ranges.last().map(|r| r.end).unwrap_or(body.end);
                    ranges.truncate(allowed);
                    if let Some(last) = ranges.last_mut() {
                        last.end = end;
                    }
                }
                let children: Vec<Part> = ranges
                    .into_iter()
                    .map(|r| parse_entity(msg, r.start, r.end, digest, depth + 1, budget))
                    .collect();
                if children.is_empty() {
                    // A multipart without parts can't be described: show it as opaque data.
                    part.mime_type = "application".into();
                    part.subtype = "octet-stream".into();
                    part.params.clear();
                } else {
                    part.kind = Kind::Multipart(children);
                }
            }
            _ => {
                part.mime_type = "application".into();
                part.subtype = "octet-stream".into();
                part.params.clear();
            }
        }
    } else if part.mime_type == "message"
        && (part.subtype == "rfc822" || part.subtype == "global")
        && !exhausted
    {
        let inner = parse_entity(msg, body.start, body.end, false, depth + 1, budget);
        part.kind = Kind::Message(Box::new(inner));
    }
    part
}

/// Body parts of a multipart body: between `--boundary` delimiter lines; the CRLF
/// before a delimiter belongs to the delimiter (RFC 2046 5.1.1).
fn split_multipart(msg: &[u8], body: Range<usize>, boundary: &[u8]) -> Vec<Range<usize>> {
    let mut delim = Vec::with_capacity(boundary.len() + 2);
    delim.extend_from_slice(b"--");
    delim.extend_from_slice(boundary);
    let mut parts = Vec::new();
    let mut pos = body.start;
    // (start of the CRLF before the delimiter, index after the delimiter line, closing?)
    let find_next = |from: usize| -> Option<(usize, usize, bool)> {
        let mut i = from;
        loop {
            let at_line_start = i == body.start || (i >= 2 && &msg[i - 2..i] == b"\r\n");
            if at_line_start && msg[i..body.end].starts_with(&delim) {
                let after = i + delim.len();
                let closing = msg[after..body.end].starts_with(b"--");
                let line_end = memfind(&msg[after..body.end], b"\r\n")
                    .map(|p| after + p + 2)
                    .unwrap_or(body.end);
                let before = if i >= body.start + 2 && &msg[i - 2..i] == b"\r\n" {
                    i - 2
                } else {
                    i
                };
                return Some((before, line_end, closing));
            }
            let next = memfind(&msg[i..body.end], b"\r\n--")?;
            i = i + next + 2;
            if i >= body.end {
                return None;
            }
        }
    };
    let mut current: Option<usize> = None;
    while let Some((before, after, closing)) = find_next(pos) {
        if let Some(s) = current {
            parts.push(s..before.max(s));
        }
        if closing {
            current = None;
            break;
        }
        current = Some(after);
        pos = after;
        if after >= body.end {
            break;
        }
    }
    if let Some(s) = current {
        // No closing delimiter: the last part runs to the end.
        parts.push(s..body.end);
    }
    parts
}

/// Lines in a body, as BODYSTRUCTURE counts them.
pub fn line_count(body: &[u8]) -> usize {
    let n = body.iter().filter(|&&b| b == b'\n').count();
    if !body.is_empty() && *body.last().unwrap() != b'\n' {
        n + 1
    } else {
        n
    }
}

// ---- decoding, for SEARCH over decoded text ----

pub fn decode_qp(data: &[u8], header: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    while i < data.len() {
        let c = data[i];
        if c == b'=' {
            if data[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if data[i + 1..].starts_with(b"\n") {
                i += 2;
                continue;
            }
            if let (Some(a), Some(b)) = (
                data.get(i + 1).and_then(|&c| hex(c)),
                data.get(i + 2).and_then(|&c| hex(c)),
            ) {
                out.push(a * 16 + b);
                i += 3;
                continue;
            }
            out.push(c);
        } else if c == b'_' && header {
            out.push(b' ');
        } else {
            out.push(c);
        }
        i += 1;
    }
    out
}

/// Bytes in `charset` to text (unknown charsets and bad bytes become U+FFFD; raw 8-bit
/// text without a charset is taken as UTF-8 when valid, else Latin-1).
pub fn to_text(data: &[u8], charset: Option<&str>) -> String {
    let enc = charset.and_then(|c| encoding_rs::Encoding::for_label(c.trim().as_bytes()));
    match enc {
        Some(e) => e.decode_without_bom_handling(data).0.into_owned(),
        None => match std::str::from_utf8(data) {
            Ok(s) => s.to_string(),
            Err(_) => encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(data)
                .0
                .into_owned(),
        },
    }
}

/// RFC 2047 encoded words in a header value, decoded to text.
pub fn decode_header_value(v: &[u8]) -> String {
    let v = unfold(v);
    let mut out = String::new();
    let mut i = 0;
    let mut last_was_word = false;
    let mut pending_ws = String::new();
    while i < v.len() {
        if v[i..].starts_with(b"=?") {
            if let Some((text, used)) = encoded_word(&v[i..]) {
                if !last_was_word {
                    out.push_str(&pending_ws);
                }
                pending_ws.clear();
                out.push_str(&text);
                i += used;
                last_was_word = true;
                continue;
            }
        }
        let c = v[i];
        if c == b' ' || c == b'\t' {
            pending_ws.push(c as char);
            i += 1;
            continue;
        }
        out.push_str(&pending_ws);
        pending_ws.clear();
        // Raw 8-bit header text: take the run as UTF-8 or Latin-1.
        let run_end = v[i..]
            .iter()
            .position(|&b| b == b' ' || b == b'\t' || (b == b'='))
            .map(|p| i + p.max(1))
            .unwrap_or(v.len());
        out.push_str(&to_text(&v[i..run_end], None));
        i = run_end;
        last_was_word = false;
    }
    out.push_str(&pending_ws);
    out
}

fn encoded_word(s: &[u8]) -> Option<(String, usize)> {
    // =?charset?E?text?=
    let rest = &s[2..];
    let q1 = rest.iter().position(|&c| c == b'?')?;
    let charset = std::str::from_utf8(&rest[..q1]).ok()?;
    let charset = charset.split('*').next().unwrap_or(charset); // RFC 2231 language suffix
    let enc = *rest.get(q1 + 1)?;
    if rest.get(q1 + 2) != Some(&b'?') {
        return None;
    }
    let text_start = q1 + 3;
    let end = memfind(&rest[text_start..], b"?=")? + text_start;
    let text = &rest[text_start..end];
    if text.contains(&b' ') {
        return None;
    }
    let bytes = match enc.to_ascii_uppercase() {
        b'B' => crate::util::base64::decode(text),
        b'Q' => decode_qp(text, true),
        _ => return None,
    };
    Some((to_text(&bytes, Some(charset)), 2 + end + 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTI: &[u8] = b"From: a@b\r\nContent-Type: multipart/mixed; boundary=\"xx\"\r\n\r\npreamble\r\n--xx\r\nContent-Type: text/plain\r\n\r\nhello\r\n--xx\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--xx--\r\nepilogue\r\n";

    #[test]
    fn multipart_ranges() {
        let p = parse(MULTI);
        let Kind::Multipart(ch) = &p.kind else {
            panic!("{p:?}")
        };
        assert_eq!(ch.len(), 2);
        assert_eq!(&MULTI[ch[0].body.clone()], b"hello");
        assert_eq!(
            &MULTI[ch[0].header.clone()],
            b"Content-Type: text/plain\r\n\r\n"
        );
        let Kind::Message(inner) = &ch[1].kind else {
            panic!()
        };
        assert_eq!(&MULTI[inner.body.clone()], b"inner body");
        assert_eq!(
            field(&MULTI[inner.header.clone()], "subject").unwrap(),
            b"inner"
        );
    }

    #[test]
    fn pathological_mime_is_bounded() {
        // 10,000 nested multiparts: parsing stops at the depth limit.
        let mut m = Vec::new();
        for i in 0..10000 {
            m.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n")
                    .as_bytes(),
            );
        }
        let p = parse(&m);
        fn depth(p: &Part) -> usize {
            match &p.kind {
                Kind::Multipart(c) => 1 + c.iter().map(depth).max().unwrap_or(0),
                Kind::Message(i) => 1 + depth(i),
                Kind::Leaf => 0,
            }
        }
        assert!(depth(&p) <= crate::config::MAX_MIME_DEPTH);
        // Many empty parts: bounded by the part budget.
        let mut m = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n".to_vec();
        for _ in 0..20000 {
            m.extend_from_slice(b"--x\r\n\r\n");
        }
        let Kind::Multipart(children) = parse(&m).kind else {
            panic!("not multipart")
        };
        assert!(children.len() < crate::config::MAX_MIME_PARTS);
        assert_eq!(children.last().unwrap().body.end, m.len());
    }

    #[test]
    fn header_decoding() {
        assert_eq!(
            decode_header_value(b"=?ISO-8859-1?Q?Andr=E9?= Pirard"),
            "André Pirard"
        );
        assert_eq!(
            decode_header_value(b"=?UTF-8?B?w6lsw6k=?= =?UTF-8?B?w6k=?="),
            "éléé"
        );
        assert_eq!(decode_qp(b"caf=C3=A9=\r\nx", false), "caféx".as_bytes());
        let (t, s, p) = content_type(b"Text/HTML; charset=\"utf-8\" (comment)").unwrap();
        assert_eq!((t.as_str(), s.as_str()), ("text", "html"));
        assert_eq!(p, vec![("charset".to_string(), "utf-8".to_string())]);
        assert_eq!(to_crlf(b"a\nb\r\n").as_ref(), b"a\r\nb\r\n");
    }
}
