//! FETCH items (RFC 3501 6.4.5, 9 `fetch-att`, `section`, `partial`): the message data a
//! client may ask for, typed.

use super::{Parser, R, err};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    Header,
    HeaderFields(Vec<String>),
    HeaderFieldsNot(Vec<String>),
    Text,
    Mime,
}

/// BODY[<section>]: part numbers, then what of that part.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    pub part: Vec<u32>,
    pub text: Option<SectionText>,
}

impl Section {
    /// The section spec as echoed in the response (`1.2.HEADER.FIELDS (FROM TO)`).
    pub fn spec(&self) -> String {
        let mut s: Vec<String> = self.part.iter().map(|p| p.to_string()).collect();
        match &self.text {
            None => {}
            Some(SectionText::Header) => s.push("HEADER".into()),
            Some(SectionText::Text) => s.push("TEXT".into()),
            Some(SectionText::Mime) => s.push("MIME".into()),
            Some(SectionText::HeaderFields(f)) => {
                s.push(format!("HEADER.FIELDS ({})", f.join(" ")))
            }
            Some(SectionText::HeaderFieldsNot(f)) => {
                s.push(format!("HEADER.FIELDS.NOT ({})", f.join(" ")))
            }
        }
        s.join(".")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAtt {
    Envelope,
    Flags,
    InternalDate,
    Rfc822,
    Rfc822Header,
    Rfc822Size,
    Rfc822Text,
    /// BODY without a section: the non-extensible BODYSTRUCTURE.
    Body,
    BodyStructure,
    Uid,
    Section {
        peek: bool,
        section: Section,
        partial: Option<(u32, u32)>,
    },
}

impl Parser<'_> {
    pub(super) fn header_list(&mut self) -> R<Vec<String>> {
        self.paren_list("header list", false, |p| {
            let h = p.astring()?;
            if h.is_empty() || h.iter().any(|&c| c <= b' ' || c == b':' || c >= 0x7f) {
                return err("invalid header field name");
            }
            Ok(String::from_utf8_lossy(&h).into_owned())
        })
    }

    pub(super) fn section(&mut self) -> R<Section> {
        self.expect(b'[')?;
        let mut s = Section::default();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(s);
        }
        loop {
            if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                let n = self.nz_number()?;
                s.part.push(n);
                if s.part.len() > 64 {
                    return err("section nesting too deep");
                }
                if self.peek() == Some(b'.') {
                    self.i += 1;
                    continue;
                }
                break;
            }
            if self.keyword("HEADER.FIELDS.NOT") {
                self.sp()?;
                s.text = Some(SectionText::HeaderFieldsNot(self.header_list()?));
            } else if self.keyword("HEADER.FIELDS") {
                self.sp()?;
                s.text = Some(SectionText::HeaderFields(self.header_list()?));
            } else if self.keyword("HEADER") {
                s.text = Some(SectionText::Header);
            } else if self.keyword("TEXT") {
                s.text = Some(SectionText::Text);
            } else if self.keyword("MIME") && !s.part.is_empty() {
                s.text = Some(SectionText::Mime);
            } else {
                return err("invalid section");
            }
            break;
        }
        self.expect(b']')?;
        Ok(s)
    }

    pub(super) fn fetch_att(&mut self, out: &mut Vec<FetchAtt>) -> R<()> {
        use FetchAtt::*;
        let att = if self.keyword("ENVELOPE") {
            Envelope
        } else if self.keyword("FLAGS") {
            Flags
        } else if self.keyword("INTERNALDATE") {
            InternalDate
        } else if self.keyword("RFC822.HEADER") {
            Rfc822Header
        } else if self.keyword("RFC822.SIZE") {
            Rfc822Size
        } else if self.keyword("RFC822.TEXT") {
            Rfc822Text
        } else if self.keyword("RFC822") {
            Rfc822
        } else if self.keyword("BODYSTRUCTURE") {
            BodyStructure
        } else if self.keyword("UID") {
            Uid
        } else if self.keyword("BODY.PEEK") || self.keyword("BINARY.PEEK") {
            let section = self.section()?;
            Section {
                peek: true,
                section,
                partial: self.partial()?,
            }
        } else if self.keyword("BODY") {
            if self.peek() == Some(b'[') {
                let section = self.section()?;
                Section {
                    peek: false,
                    section,
                    partial: self.partial()?,
                }
            } else {
                Body
            }
        } else if self.keyword("ALL") {
            out.extend([Flags, InternalDate, Rfc822Size, Envelope]);
            return Ok(());
        } else if self.keyword("FAST") {
            out.extend([Flags, InternalDate, Rfc822Size]);
            return Ok(());
        } else if self.keyword("FULL") {
            out.extend([Flags, InternalDate, Rfc822Size, Envelope, Body]);
            return Ok(());
        } else {
            return err("unknown FETCH attribute");
        };
        out.push(att);
        Ok(())
    }

    pub(super) fn partial(&mut self) -> R<Option<(u32, u32)>> {
        if self.peek() != Some(b'<') {
            return Ok(None);
        }
        self.i += 1;
        let start = self.number32()?;
        self.expect(b'.')?;
        let len = self.nz_number()?;
        self.expect(b'>')?;
        Ok(Some((start, len)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{bad, cmd};
    use super::super::*;

    #[test]
    fn fetch_attributes() {
        match cmd(
            "a FETCH 2:4,7 (FLAGS BODY.PEEK[1.2.HEADER.FIELDS (From Subject)]<10.20> BODY[] RFC822.SIZE)",
        ) {
            Command::Fetch { set, atts, .. } => {
                assert_eq!(set.ranges(9).collect::<Vec<_>>(), vec![(2, 4), (7, 7)]);
                assert_eq!(atts.len(), 4);
                match &atts[1] {
                    FetchAtt::Section {
                        peek: true,
                        section,
                        partial: Some((10, 20)),
                    } => {
                        assert_eq!(section.part, vec![1, 2]);
                        assert_eq!(section.spec(), "1.2.HEADER.FIELDS (From Subject)");
                    }
                    other => panic!("{other:?}"),
                }
            }
            _ => panic!(),
        }
        match cmd("a FETCH 1 FULL") {
            Command::Fetch { atts, .. } => assert_eq!(atts.len(), 5),
            _ => panic!(),
        }
        bad(b"a FETCH 1 (BODY[HEADER.FIELDS ()])");
        bad(b"a FETCH 1 (BODY[MIME])");
        bad(b"a FETCH 0 FLAGS");
        bad(b"a FETCH 1 (FLAGS");
    }
}
