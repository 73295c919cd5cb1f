//! BODY and BODYSTRUCTURE (RFC 3501 7.4.2, grammar `body` in section 9).

use super::mime::{Kind, Part, field, line_count, value_with_params};
use crate::imap::response::{nstring, string};

fn upper(s: &str) -> Vec<u8> {
    s.to_ascii_uppercase().into_bytes()
}

fn params(out: &mut Vec<u8>, params: &[(String, String)]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        string(out, &upper(k));
        out.push(b' ');
        string(out, v.as_bytes());
    }
    out.push(b')');
}

/// body-fld-dsp, body-fld-lang, body-fld-loc (the extension data both forms share).
fn disposition_language_location(out: &mut Vec<u8>, header: &[u8]) {
    match field(header, "Content-Disposition") {
        Some(v) if !v.is_empty() => {
            let (d, p) = value_with_params(&v);
            out.push(b'(');
            string(out, &upper(&d));
            out.push(b' ');
            params(out, &p);
            out.push(b')');
        }
        _ => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    match field(header, "Content-Language") {
        Some(v) if !v.is_empty() => {
            let langs: Vec<&[u8]> = v
                .split(|&c| c == b',')
                .map(super::mime::trim)
                .filter(|l| !l.is_empty())
                .collect();
            if langs.len() == 1 {
                string(out, langs[0]);
            } else {
                out.push(b'(');
                for (i, l) in langs.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    string(out, l);
                }
                out.push(b')');
            }
        }
        _ => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    nstring(
        out,
        field(header, "Content-Location")
            .filter(|v| !v.is_empty())
            .as_deref(),
    );
}

/// Write the body structure of `part` of `msg`; `extended` for BODYSTRUCTURE.
pub fn write(out: &mut Vec<u8>, msg: &[u8], part: &Part, extended: bool) {
    let header = &msg[part.header.clone()];
    out.push(b'(');
    match &part.kind {
        Kind::Multipart(children) => {
            for c in children {
                write(out, msg, c, extended);
            }
            out.push(b' ');
            string(out, &upper(&part.subtype));
            if extended {
                out.push(b' ');
                params(out, &part.params);
                out.push(b' ');
                disposition_language_location(out, header);
            }
        }
        kind => {
            let body = &msg[part.body.clone()];
            string(out, &upper(&part.mime_type));
            out.push(b' ');
            string(out, &upper(&part.subtype));
            out.push(b' ');
            params(out, &part.params);
            out.push(b' ');
            nstring(
                out,
                field(header, "Content-ID")
                    .filter(|v| !v.is_empty())
                    .as_deref(),
            );
            out.push(b' ');
            nstring(
                out,
                field(header, "Content-Description")
                    .filter(|v| !v.is_empty())
                    .as_deref(),
            );
            out.push(b' ');
            let enc = field(header, "Content-Transfer-Encoding")
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| b"7BIT".to_vec());
            string(out, &enc.to_ascii_uppercase());
            out.extend_from_slice(format!(" {}", body.len()).as_bytes());
            if let Kind::Message(inner) = kind {
                out.push(b' ');
                super::envelope::write(out, &msg[inner.header.clone()]);
                out.push(b' ');
                write(out, msg, inner, extended);
                out.extend_from_slice(format!(" {}", line_count(body)).as_bytes());
            } else if part.mime_type == "text" {
                out.extend_from_slice(format!(" {}", line_count(body)).as_bytes());
            }
            if extended {
                out.push(b' ');
                nstring(
                    out,
                    field(header, "Content-MD5")
                        .filter(|v| !v.is_empty())
                        .as_deref(),
                );
                out.push(b' ');
                disposition_language_location(out, header);
            }
        }
    }
    out.push(b')');
}

#[cfg(test)]
mod tests {
    use super::super::mime::parse;

    #[test]
    fn simple_text() {
        let m = b"Subject: x\r\n\r\nhello\r\nworld\r\n";
        let p = parse(m);
        let mut o = Vec::new();
        super::write(&mut o, m, &p, false);
        assert_eq!(
            String::from_utf8(o).unwrap(),
            "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 14 2)"
        );
        let mut o = Vec::new();
        super::write(&mut o, m, &p, true);
        assert_eq!(
            String::from_utf8(o).unwrap(),
            "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 14 2 NIL NIL NIL NIL)"
        );
    }

    #[test]
    fn multipart_with_attachment() {
        let m = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhi\r\n--b\r\nContent-Type: application/pdf; name=x.pdf\r\nContent-Disposition: attachment; filename=x.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--b--\r\n";
        let p = parse(m);
        let mut o = Vec::new();
        super::write(&mut o, m, &p, true);
        assert_eq!(
            String::from_utf8(o).unwrap(),
            "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 2 1 NIL NIL NIL NIL)(\"APPLICATION\" \"PDF\" (\"NAME\" \"x.pdf\") NIL NIL \"BASE64\" 4 NIL (\"ATTACHMENT\" (\"FILENAME\" \"x.pdf\")) NIL NIL) \"MIXED\" (\"BOUNDARY\" \"b\") NIL NIL NIL)"
        );
    }
}
