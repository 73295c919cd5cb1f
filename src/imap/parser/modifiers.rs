//! The parameter lists extensions add to existing commands (RFC 4466, "Collected
//! Extensions to IMAP4 ABNF"):
//!
//! ```text
//! select      = "SELECT" SP mailbox [select-params]                    ; 2.1
//! select-params = SP "(" select-param *(SP select-param) ")"
//! fetch       = "FETCH" SP sequence-set SP (... fetch-att list) [fetch-modifiers]  ; 2.4
//! fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")"
//! store       = "STORE" SP sequence-set [store-modifiers] SP store-att-flags  ; 2.5
//! store-modifiers = SP "(" store-modifier *(SP store-modifier) ")"
//! *-param / *-modifier = tagged-ext-label [SP tagged-ext-val]
//! tagged-ext-label = tagged-label-fchar *tagged-label-char
//! tagged-label-fchar = ALPHA / "-" / "_" / "."
//! tagged-label-char = tagged-label-fchar / DIGIT / ":"
//! ```
//!
//! Each list is read by name: a parameter is a variant of its enum and an arm in its
//! `*_param` function, which reads the value its RFC defines. A name no extension here
//! defines is refused by name (BAD "unknown SELECT parameter X"), never skipped: a
//! client that sends one expects its meaning. None is defined yet; CONDSTORE and
//! QRESYNC (RFC 7162 3.1.8, 3.2.5: `CONDSTORE`, `QRESYNC (...)`, `CHANGEDSINCE n`,
//! `VANISHED`, `UNCHANGEDSINCE n`) are the first to come.

use super::{Parser, R, err};

/// A parameter of SELECT or EXAMINE (RFC 4466 2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectParam {}

/// A modifier of FETCH (RFC 4466 2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchModifier {}

/// A modifier of STORE (RFC 4466 2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreModifier {}

fn is_label_fchar(c: u8) -> bool {
    c.is_ascii_alphabetic() || matches!(c, b'-' | b'_' | b'.')
}

impl Parser<'_> {
    /// `[SP "(" item *(SP item) ")"]` where each item starts with a tagged-ext-label,
    /// which `item` gets upper-cased to read the rest of its item; absent, no items.
    /// Present when `(` follows the space (nothing else that may follow a mailbox, a
    /// FETCH item list or a sequence set starts with one).
    fn parameters<T>(
        &mut self,
        what: &str,
        mut item: impl FnMut(&mut Self, &str) -> R<T>,
    ) -> R<Vec<T>> {
        if self.b.get(self.i..self.i + 2) != Some(b" (") {
            return Ok(Vec::new());
        }
        self.sp()?;
        self.paren_list(&format!("{what} list"), false, |p| {
            if !p.peek().is_some_and(is_label_fchar) {
                return err(format!("expected a {what} name"));
            }
            let label = p.take_while(|c| is_label_fchar(c) || c.is_ascii_digit() || c == b':');
            let label = String::from_utf8_lossy(label).to_ascii_uppercase();
            item(p, &label)
        })
    }

    /// `[select-params]` after SELECT's or EXAMINE's mailbox.
    pub(super) fn select_params(&mut self) -> R<Vec<SelectParam>> {
        self.parameters("SELECT parameter", |_, label| {
            err(format!("unknown SELECT parameter {label}"))
        })
    }

    /// `[fetch-modifiers]` after FETCH's items.
    pub(super) fn fetch_modifiers(&mut self) -> R<Vec<FetchModifier>> {
        self.parameters("FETCH modifier", |_, label| {
            err(format!("unknown FETCH modifier {label}"))
        })
    }

    /// `[store-modifiers]` between STORE's sequence set and its flags.
    pub(super) fn store_modifiers(&mut self) -> R<Vec<StoreModifier>> {
        self.parameters("STORE modifier", |_, label| {
            err(format!("unknown STORE modifier {label}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::super::tests::cmd;
    use super::super::{Command, StoreMode};

    fn refused(line: &str) -> String {
        match parse(line.as_bytes()).1 {
            Err(e) => e.0,
            Ok(c) => panic!("{line}: parsed as {c:?}"),
        }
    }

    #[test]
    fn commands_without_parameters_have_none() {
        match cmd("a SELECT INBOX") {
            Command::Select(s) => {
                assert_eq!(s.mailbox, b"INBOX");
                assert!(s.params.is_empty());
            }
            c => panic!("{c:?}"),
        }
        match cmd("a EXAMINE \"Sent Items\"") {
            Command::Examine(s) => assert_eq!(s.mailbox, b"Sent Items"),
            c => panic!("{c:?}"),
        }
        match cmd("a UID FETCH 1:* (FLAGS UID)") {
            Command::Fetch {
                modifiers, atts, ..
            } => {
                assert!(modifiers.is_empty());
                assert_eq!(atts.len(), 2);
            }
            c => panic!("{c:?}"),
        }
        match cmd("a STORE 1 +FLAGS (\\Seen)") {
            Command::Store {
                modifiers, mode, ..
            } => {
                assert!(modifiers.is_empty());
                assert_eq!(mode, StoreMode::Add);
            }
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn a_parameter_no_extension_defines_is_refused_by_name() {
        // RFC 7162's, before CONDSTORE is implemented: the client hears which one.
        assert_eq!(
            refused("a SELECT INBOX (CONDSTORE)"),
            "unknown SELECT parameter CONDSTORE"
        );
        assert_eq!(
            refused("a EXAMINE INBOX (qresync (67890007 20050715194045000 41,43:211))"),
            "unknown SELECT parameter QRESYNC"
        );
        assert_eq!(
            refused("a FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)"),
            "unknown FETCH modifier CHANGEDSINCE"
        );
        assert_eq!(
            refused("a UID STORE 1:3 (UNCHANGEDSINCE 7) +FLAGS (\\Seen)"),
            "unknown STORE modifier UNCHANGEDSINCE"
        );
        assert_eq!(
            refused("a FETCH 1 FLAGS (X-ONE.2:b)"),
            "unknown FETCH modifier X-ONE.2:B"
        );
    }

    #[test]
    fn malformed_lists_are_refused() {
        for line in [
            "a SELECT INBOX ()",        // at least one parameter
            "a SELECT INBOX (",         // unterminated
            "a SELECT INBOX CONDSTORE", // not in parentheses
            "a SELECT INBOX (9X)",      // a label starts with a letter, -, _ or .
            "a FETCH 1 FLAGS ()",
            "a FETCH 1 FLAGS (",
            "a STORE 1 () +FLAGS \\Seen",
            "a SELECT INBOX  (CONDSTORE)",
        ] {
            assert!(parse(line.as_bytes()).1.is_err(), "{line} parsed");
        }
    }
}
