//! SEARCH keys (RFC 3501 6.4.4, 9 `search-key`), nesting bounded by MAX_SEARCH_DEPTH,
//! and what the answer returns (RFC 4731 ESEARCH's `RETURN (...)`).

use super::{Parser, R, SeqSet, err};
use crate::store::Flags;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    And(Vec<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    Not(Box<SearchKey>),
    Flag(u8, bool),
    Keyword(String, bool),
    Recent(bool),
    New,
    Old,
    /// Header field contains value (From, To, Cc, Bcc, Subject and HEADER).
    Header(String, Vec<u8>),
    Body(Vec<u8>),
    Text(Vec<u8>),
    Before(i64),
    On(i64),
    Since(i64),
    SentBefore(i64),
    SentOn(i64),
    SentSince(i64),
    Larger(u64),
    Smaller(u64),
    Uid(SeqSet),
    Seq(SeqSet),
}

/// What an extended SEARCH answers with (RFC 4731 3.1): `* ESEARCH (TAG "t") [UID]`
/// then each asked-for item. `RETURN ()` is ALL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchReturn {
    pub min: bool,
    pub max: bool,
    pub all: bool,
    pub count: bool,
}

impl Parser<'_> {
    /// RFC 4731 3, RFC 4466 2.6:
    ///   search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP search-return-opt)] ")"
    ///   search-return-opt  = "MIN" / "MAX" / "ALL" / "COUNT"
    /// (SAVE is RFC 5182 SEARCHRES, not offered: refused by name like any other.)
    pub(super) fn search_return(&mut self) -> R<SearchReturn> {
        let mut r = SearchReturn::default();
        self.paren_list("RETURN options", true, |p| {
            let word = String::from_utf8_lossy(p.atom()?).to_ascii_uppercase();
            match word.as_str() {
                "MIN" => r.min = true,
                "MAX" => r.max = true,
                "ALL" => r.all = true,
                "COUNT" => r.count = true,
                _ => return err(format!("unknown SEARCH RETURN option {word}")),
            }
            Ok(())
        })?;
        if r == SearchReturn::default() {
            r.all = true;
        }
        Ok(r)
    }

    pub(super) fn search_key(&mut self) -> R<SearchKey> {
        use SearchKey as K;
        self.depth += 1;
        if self.depth > crate::config::MAX_SEARCH_DEPTH {
            return err("search criteria nested too deeply");
        }
        let k = if self.peek() == Some(b'(') {
            self.i += 1;
            let mut v = vec![self.search_key()?];
            while self.peek() == Some(b' ') {
                self.i += 1;
                v.push(self.search_key()?);
            }
            self.expect(b')')?;
            K::And(v)
        } else if self.peek().is_some_and(|c| c.is_ascii_digit() || c == b'*') {
            K::Seq(self.seq_set()?)
        } else {
            let word = String::from_utf8_lossy(self.atom()?).to_ascii_uppercase();
            let arg = |p: &mut Self| -> R<Vec<u8>> {
                p.sp()?;
                p.astring()
            };
            match word.as_str() {
                "ALL" => K::All,
                "ANSWERED" => K::Flag(Flags::ANSWERED, true),
                "DELETED" => K::Flag(Flags::DELETED, true),
                "DRAFT" => K::Flag(Flags::DRAFT, true),
                "FLAGGED" => K::Flag(Flags::FLAGGED, true),
                "SEEN" => K::Flag(Flags::SEEN, true),
                "UNANSWERED" => K::Flag(Flags::ANSWERED, false),
                "UNDELETED" => K::Flag(Flags::DELETED, false),
                "UNDRAFT" => K::Flag(Flags::DRAFT, false),
                "UNFLAGGED" => K::Flag(Flags::FLAGGED, false),
                "UNSEEN" => K::Flag(Flags::SEEN, false),
                "RECENT" => K::Recent(true),
                "NEW" => K::New,
                "OLD" => K::Old,
                "KEYWORD" | "UNKEYWORD" => {
                    self.sp()?;
                    let kw = String::from_utf8_lossy(self.atom()?).into_owned();
                    K::Keyword(kw, word == "KEYWORD")
                }
                "BCC" | "CC" | "FROM" | "SUBJECT" | "TO" => {
                    let v = arg(self)?;
                    K::Header(word.clone(), v)
                }
                "HEADER" => {
                    let name = arg(self)?;
                    let v = arg(self)?;
                    K::Header(String::from_utf8_lossy(&name).to_ascii_uppercase(), v)
                }
                "BODY" => K::Body(arg(self)?),
                "TEXT" => K::Text(arg(self)?),
                "BEFORE" | "ON" | "SINCE" | "SENTBEFORE" | "SENTON" | "SENTSINCE" => {
                    self.sp()?;
                    let d = self.date()?;
                    match word.as_str() {
                        "BEFORE" => K::Before(d),
                        "ON" => K::On(d),
                        "SINCE" => K::Since(d),
                        "SENTBEFORE" => K::SentBefore(d),
                        "SENTON" => K::SentOn(d),
                        _ => K::SentSince(d),
                    }
                }
                "LARGER" | "SMALLER" => {
                    self.sp()?;
                    let n = self.number()?;
                    if word == "LARGER" {
                        K::Larger(n)
                    } else {
                        K::Smaller(n)
                    }
                }
                "UID" => {
                    self.sp()?;
                    K::Uid(self.seq_set()?)
                }
                "NOT" => {
                    self.sp()?;
                    K::Not(Box::new(self.search_key()?))
                }
                "OR" => {
                    self.sp()?;
                    let a = self.search_key()?;
                    self.sp()?;
                    let b = self.search_key()?;
                    K::Or(Box::new(a), Box::new(b))
                }
                _ => return err(format!("unknown search key {word}")),
            }
        };
        self.depth -= 1;
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{bad, cmd};
    use super::super::*;

    #[test]
    fn search_keys() {
        match cmd("a SEARCH CHARSET UTF-8 OR (FROM \"smith\" UNSEEN) NOT SINCE 1-Feb-1994 1:3,*") {
            Command::Search {
                key: SearchKey::And(v),
                ..
            } => {
                assert_eq!(v.len(), 2);
                assert!(matches!(v[0], SearchKey::Or(..)));
            }
            other => panic!("{other:?}"),
        }
        let deep = format!("a SEARCH {}ALL{}", "(".repeat(500), ")".repeat(500));
        bad(deep.as_bytes());
        let nots = format!("a SEARCH {}ALL", "NOT ".repeat(500));
        bad(nots.as_bytes());
        match cmd("a SEARCH CHARSET koi8-r ALL") {
            Command::Search { charset, .. } => assert_eq!(charset.as_deref(), Some("KOI8-R")),
            other => panic!("{other:?}"),
        }
        bad(b"a SEARCH FOO");
    }

    // RFC 4731 3.1's examples, and what is refused.
    #[test]
    fn search_return_options() {
        let ret = |s: &str| match cmd(s) {
            Command::Search { ret, .. } => ret,
            other => panic!("{other:?}"),
        };
        assert_eq!(ret("a SEARCH UNSEEN"), None);
        let all = SearchReturn {
            all: true,
            ..Default::default()
        };
        assert_eq!(ret("A282 SEARCH RETURN () FLAGGED"), Some(all));
        assert_eq!(ret("A283 SEARCH RETURN (ALL) FLAGGED"), Some(all));
        assert_eq!(
            ret("A285 UID SEARCH RETURN (min MAX) 1:5000"),
            Some(SearchReturn {
                min: true,
                max: true,
                ..Default::default()
            })
        );
        match cmd("a SEARCH RETURN (COUNT) CHARSET UTF-8 TEXT x") {
            Command::Search { ret, charset, .. } => {
                assert_eq!(ret.map(|r| r.count), Some(true));
                assert_eq!(charset.as_deref(), Some("UTF-8"));
            }
            other => panic!("{other:?}"),
        }
        bad(b"a SEARCH RETURN (SAVE) ALL"); // SEARCHRES: not offered
        bad(b"a SEARCH RETURN (MIN FOO) ALL");
        bad(b"a SEARCH RETURN MIN ALL");
        bad(b"a SEARCH RETURN (MIN)");
        bad(b"a SEARCH RETURN (MIN ALL");
    }
}
