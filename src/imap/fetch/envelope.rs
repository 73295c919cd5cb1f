//! ENVELOPE (RFC 3501 7.4.2): date, subject, address lists and ids from the header,
//! as raw header text (encoded words are left for the client to decode).

use super::mime::{fields, unfold};
use crate::imap::response::{nstring, string};

/// One RFC 5322 address, or a group marker (RFC 3501: start `(NIL NIL "name" NIL)`,
/// end `(NIL NIL NIL NIL)`).
#[derive(Debug, PartialEq, Eq)]
pub enum Address {
    Mailbox {
        name: Option<Vec<u8>>,
        adl: Option<Vec<u8>>,
        local: Vec<u8>,
        host: Vec<u8>,
    },
    GroupStart(Vec<u8>),
    GroupEnd,
}

/// An addr-spec without its comments and folding white space (RFC 5322 3.4.1 allows
/// CFWS around the local part, the `@` and the domain), quoted strings kept.
fn without_comments(spec: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(spec.len());
    let (mut depth, mut quoted, mut escaped) = (0usize, false, false);
    for &c in spec {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            b'\\' => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            b'"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            b'(' if !quoted => depth += 1,
            b')' if !quoted && depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            _ if c.is_ascii_whitespace() && !quoted => {}
            _ => out.push(c),
        }
    }
    out
}

/// Parse an address list; tolerant of what real mail carries (missing angle brackets,
/// comments as names, stray commas).
pub fn parse_addresses(v: &[u8]) -> Vec<Address> {
    let mut out = Vec::new();
    let mut phrase: Vec<u8> = Vec::new();
    let mut comment: Option<Vec<u8>> = None;
    let mut angle: Option<Vec<u8>> = None;
    let mut in_group = false;
    let mut i = 0;
    let finish = |phrase: &mut Vec<u8>,
                  comment: &mut Option<Vec<u8>>,
                  angle: &mut Option<Vec<u8>>,
                  out: &mut Vec<Address>| {
        let name_words = super::mime::trim(phrase).to_vec();
        let (name, spec) = match angle.take() {
            Some(a) => ((!name_words.is_empty()).then_some(name_words), a),
            None => (comment.take(), name_words),
        };
        phrase.clear();
        *comment = None;
        let spec = without_comments(&spec);
        if spec.is_empty() {
            return;
        }
        let (adl, spec) = match spec.iter().position(|&c| c == b':') {
            Some(p) if spec.starts_with(b"@") => (Some(spec[..p].to_vec()), spec[p + 1..].to_vec()),
            _ => (None, spec),
        };
        let (local, host) = match spec.iter().rposition(|&c| c == b'@') {
            Some(p) => (spec[..p].to_vec(), spec[p + 1..].to_vec()),
            None => (spec, Vec::new()),
        };
        let local = if local.len() >= 2 && local.starts_with(b"\"") && local.ends_with(b"\"") {
            local[1..local.len() - 1].to_vec()
        } else {
            local
        };
        out.push(Address::Mailbox {
            name,
            adl,
            local,
            host,
        });
    };
    while i < v.len() {
        let c = v[i];
        match c {
            b'"' => {
                // Quoted string: content without the quotes, escapes resolved.
                i += 1;
                let mut q = Vec::new();
                while i < v.len() && v[i] != b'"' {
                    if v[i] == b'\\' && i + 1 < v.len() {
                        i += 1;
                    }
                    q.push(v[i]);
                    i += 1;
                }
                if angle.is_none() && !phrase.is_empty() && !phrase.ends_with(b" ") {
                    phrase.push(b' ');
                }
                phrase.extend_from_slice(&q);
            }
            b'(' => {
                let mut depth = 0;
                let start = i + 1;
                while i < v.len() {
                    match v[i] {
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        b'\\' => i += 1,
                        _ => {}
                    }
                    i += 1;
                }
                let text = super::mime::trim(&v[start.min(v.len())..i.min(v.len())]).to_vec();
                if !text.is_empty() {
                    comment = Some(text);
                }
            }
            b'<' => {
                let end = v[i..]
                    .iter()
                    .position(|&c| c == b'>')
                    .map(|p| i + p)
                    .unwrap_or(v.len());
                angle = Some(v[i + 1..end].to_vec());
                i = end;
            }
            b',' => finish(&mut phrase, &mut comment, &mut angle, &mut out),
            b':' if angle.is_none() && !in_group && !phrase.contains(&b'@') => {
                let name = super::mime::trim(&phrase).to_vec();
                phrase.clear();
                out.push(Address::GroupStart(name));
                in_group = true;
            }
            b';' if in_group => {
                finish(&mut phrase, &mut comment, &mut angle, &mut out);
                out.push(Address::GroupEnd);
                in_group = false;
            }
            _ => {
                if c.is_ascii_whitespace() {
                    if !phrase.is_empty() && !phrase.ends_with(b" ") {
                        phrase.push(b' ');
                    }
                } else {
                    phrase.push(c);
                }
            }
        }
        i += 1;
    }
    finish(&mut phrase, &mut comment, &mut angle, &mut out);
    if in_group {
        out.push(Address::GroupEnd);
    }
    out
}

fn address_list(out: &mut Vec<u8>, value: Option<&[u8]>) {
    let addrs = value.map(parse_addresses).unwrap_or_default();
    if addrs.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in &addrs {
        out.push(b'(');
        match a {
            Address::Mailbox {
                name,
                adl,
                local,
                host,
            } => {
                nstring(out, name.as_deref());
                out.push(b' ');
                nstring(out, adl.as_deref());
                out.push(b' ');
                string(out, local);
                out.push(b' ');
                string(out, host);
            }
            Address::GroupStart(name) => {
                out.extend_from_slice(b"NIL NIL ");
                string(out, name);
                out.extend_from_slice(b" NIL");
            }
            Address::GroupEnd => out.extend_from_slice(b"NIL NIL NIL NIL"),
        }
        out.push(b')');
    }
    out.push(b')');
}

/// Write the ENVELOPE of a header block.
pub fn write(out: &mut Vec<u8>, header: &[u8]) {
    let all = fields(header);
    let get = |name: &str| -> Option<Vec<u8>> {
        all.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| unfold(v))
    };
    let nonempty = |v: Option<Vec<u8>>| v.filter(|x| !x.is_empty());
    let from = get("From");
    let sender = nonempty(get("Sender")).or_else(|| from.clone());
    let reply_to = nonempty(get("Reply-To")).or_else(|| from.clone());
    out.push(b'(');
    nstring(out, nonempty(get("Date")).as_deref());
    out.push(b' ');
    nstring(out, get("Subject").as_deref());
    for v in [from, sender, reply_to, get("To"), get("Cc"), get("Bcc")] {
        out.push(b' ');
        address_list(out, v.as_deref());
    }
    out.push(b' ');
    nstring(out, nonempty(get("In-Reply-To")).as_deref());
    out.push(b' ');
    nstring(out, nonempty(get("Message-ID")).as_deref());
    out.push(b')');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_inside_the_address_are_not_part_of_it() {
        let a = parse_addresses(b"Jo <user-from (comment)@ (comment) domain.org>");
        assert_eq!(
            a,
            vec![Address::Mailbox {
                name: Some(b"Jo".to_vec()),
                adl: None,
                local: b"user-from".to_vec(),
                host: b"domain.org".to_vec(),
            }]
        );
    }

    #[test]
    fn rfc3501_style_envelope() {
        let h = b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\nFrom: Terry Gray <gray@cac.washington.edu>\r\nSubject: IMAP4rev1 WG mtg summary\r\nTo: imap@cac.washington.edu\r\ncc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\nMessage-Id: <B27397-0100000@cac.washington.edu>\r\n\r\n";
        let mut o = Vec::new();
        write(&mut o, h);
        assert_eq!(
            String::from_utf8(o).unwrap(),
            "(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary\" ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL \"<B27397-0100000@cac.washington.edu>\")"
        );
    }

    #[test]
    fn groups_and_odd_forms() {
        let a = parse_addresses(b"undisclosed-recipients:;");
        assert_eq!(
            a,
            vec![
                Address::GroupStart(b"undisclosed-recipients".to_vec()),
                Address::GroupEnd
            ]
        );
        let a = parse_addresses(b"joe@example.com (Joe Bloggs), \"Smith, J\" <j@x.org>");
        assert_eq!(a.len(), 2);
        assert_eq!(
            a[0],
            Address::Mailbox {
                name: Some(b"Joe Bloggs".to_vec()),
                adl: None,
                local: b"joe".to_vec(),
                host: b"example.com".to_vec()
            }
        );
        assert_eq!(
            a[1],
            Address::Mailbox {
                name: Some(b"Smith, J".to_vec()),
                adl: None,
                local: b"j".to_vec(),
                host: b"x.org".to_vec()
            }
        );
    }
}
