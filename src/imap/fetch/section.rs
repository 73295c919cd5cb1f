//! BODY[section] (RFC 3501 6.4.5): which bytes a section names.

use super::mime::{Kind, Part, fields};
use crate::imap::parser::{Section, SectionText};
use std::borrow::Cow;

/// Find the part a list of part numbers names. A non-multipart body is its own part 1,
/// and numbers after a message/rfc822 part address the encapsulated message's parts.
fn resolve<'p>(root: &'p Part, path: &[u32]) -> Option<&'p Part> {
    let mut cur = root;
    let mut entered_message = true; // the top level is a message
    for &n in path {
        let n = n as usize;
        if !entered_message {
            if let Kind::Message(inner) = &cur.kind {
                cur = inner;
                entered_message = true;
            }
        }
        cur = match &cur.kind {
            Kind::Multipart(children) => children.get(n - 1)?,
            _ if n == 1 && entered_message => cur,
            _ => return None,
        };
        entered_message = false;
    }
    Some(cur)
}

fn header_subset(header: &[u8], names: &[String], keep: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields(header) {
        let listed = names
            .iter()
            .any(|n| n.as_bytes().eq_ignore_ascii_case(name));
        if listed == keep {
            out.extend_from_slice(name);
            out.push(b':');
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The bytes of `section` in the CRLF message `msg` parsed as `root`; empty if the
/// section does not exist (as UW imapd and Dovecot answer).
pub fn extract<'m>(msg: &'m [u8], root: &Part, section: &Section) -> Cow<'m, [u8]> {
    let empty = Cow::Borrowed(&b""[..]);
    if section.part.is_empty() {
        return match &section.text {
            None => Cow::Borrowed(msg),
            Some(SectionText::Header) => Cow::Borrowed(&msg[root.header.clone()]),
            Some(SectionText::Text) => Cow::Borrowed(&msg[root.body.clone()]),
            Some(SectionText::HeaderFields(f)) => {
                Cow::Owned(header_subset(&msg[root.header.clone()], f, true))
            }
            Some(SectionText::HeaderFieldsNot(f)) => {
                Cow::Owned(header_subset(&msg[root.header.clone()], f, false))
            }
            Some(SectionText::Mime) => empty,
        };
    }
    let Some(part) = resolve(root, &section.part) else {
        return empty;
    };
    // HEADER/TEXT after part numbers are those of an encapsulated message.
    let inner = match &part.kind {
        Kind::Message(inner) => Some(&**inner),
        _ => None,
    };
    match &section.text {
        None => Cow::Borrowed(&msg[part.body.clone()]),
        Some(SectionText::Mime) => {
            // The part's own MIME header; for the top-level body (part 1 of a
            // non-multipart message) that is the message header.
            Cow::Borrowed(&msg[part.header.clone()])
        }
        Some(SectionText::Header) => inner
            .map(|m| Cow::Borrowed(&msg[m.header.clone()]))
            .unwrap_or(empty),
        Some(SectionText::Text) => inner
            .map(|m| Cow::Borrowed(&msg[m.body.clone()]))
            .unwrap_or(empty),
        Some(SectionText::HeaderFields(f)) => inner
            .map(|m| Cow::Owned(header_subset(&msg[m.header.clone()], f, true)))
            .unwrap_or(empty),
        Some(SectionText::HeaderFieldsNot(f)) => inner
            .map(|m| Cow::Owned(header_subset(&msg[m.header.clone()], f, false)))
            .unwrap_or(empty),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::fetch::mime::parse;

    const M: &[u8] = b"From: a@b\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=\"xx\"\r\n\r\n--xx\r\nContent-Type: text/plain\r\n\r\nhello\r\n--xx\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=yy\r\n\r\n--yy\r\n\r\nplain\r\n--yy\r\nContent-Type: text/html\r\n\r\n<b>html</b>\r\n--yy--\r\n--xx--\r\n";

    fn sec(part: &[u32], text: Option<SectionText>) -> Section {
        Section {
            part: part.to_vec(),
            text,
        }
    }

    #[test]
    fn nested_sections() {
        let p = parse(M);
        assert_eq!(&*extract(M, &p, &sec(&[1], None)), b"hello");
        assert_eq!(
            &*extract(M, &p, &sec(&[1], Some(SectionText::Mime))),
            b"Content-Type: text/plain\r\n\r\n"
        );
        assert_eq!(
            &*extract(M, &p, &sec(&[2], Some(SectionText::Header))),
            b"Subject: inner\r\nContent-Type: multipart/alternative; boundary=yy\r\n\r\n"
        );
        assert_eq!(&*extract(M, &p, &sec(&[2, 1], None)), b"plain");
        assert_eq!(&*extract(M, &p, &sec(&[2, 2], None)), b"<b>html</b>");
        assert_eq!(&*extract(M, &p, &sec(&[3], None)), b"");
        assert_eq!(&*extract(M, &p, &sec(&[1, 1], None)), b"");
        assert_eq!(
            &*extract(
                M,
                &p,
                &sec(&[], Some(SectionText::HeaderFields(vec!["SUBJECT".into()])))
            ),
            b"Subject: s\r\n\r\n"
        );
    }

    #[test]
    fn single_part_message_is_part_one() {
        let m = b"Subject: x\r\n\r\nbody\r\n";
        let p = parse(m);
        assert_eq!(&*extract(m, &p, &sec(&[1], None)), b"body\r\n");
        assert_eq!(
            &*extract(m, &p, &sec(&[], Some(SectionText::Text))),
            b"body\r\n"
        );
    }
}
