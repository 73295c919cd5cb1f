//! A message as FETCH sees it: the MIME tree, BODYSTRUCTURE, ENVELOPE, every part's
//! section, encoded words, base64 and quoted-printable.
#![no_main]
use imap::imap::fetch::{bodystructure, envelope, mime};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let part = mime::parse(data);
    let mut out = Vec::new();
    bodystructure::write(&mut out, data, &part, true);
    out.clear();
    bodystructure::write(&mut out, data, &part, false);
    let header_end = mime::memfind(data, b"\r\n\r\n").map_or(data.len(), |i| i + 2);
    out.clear();
    envelope::write(&mut out, &data[..header_end]);
    let _ = envelope::parse_addresses(data);
    let _ = mime::decode_header_value(data);
    let _ = mime::decode_qp(data, true);
    let _ = imap::util::base64::decode(data);
    let _ = mime::content_type(data);
    let _ = mime::to_text(data, Some("iso-8859-1"));
    use imap::imap::parser::{Section, SectionText};
    let texts = [
        None,
        Some(SectionText::Header),
        Some(SectionText::Text),
        Some(SectionText::Mime),
        Some(SectionText::HeaderFields(vec![
            "FROM".into(),
            "SUBJECT".into(),
        ])),
        Some(SectionText::HeaderFieldsNot(vec!["TO".into()])),
    ];
    let root = part;
    for part in [vec![], vec![1], vec![2], vec![1, 2], vec![2, 1, 1]] {
        for text in &texts {
            let section = Section {
                part: part.clone(),
                text: text.clone(),
            };
            let _ = imap::imap::fetch::section::extract(data, &root, &section);
        }
    }
});
