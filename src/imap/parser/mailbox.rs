//! Mailbox arguments: LIST patterns (RFC 3501 9 `list-mailbox`), STATUS items (6.3.10,
//! RFC 8438 SIZE) and APPEND's arguments before its message (6.3.11).

use super::{AppendArgs, ParseError, Parser, R, err, is_atom_char};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusAtt {
    Messages,
    Recent,
    UidNext,
    UidValidity,
    Unseen,
    Size,
}

impl Parser<'_> {
    /// list-mailbox: astring or list-chars including `%` and `*`.
    pub(super) fn list_mailbox(&mut self) -> R<Vec<u8>> {
        match self.peek() {
            Some(b'"') | Some(b'{') => self.string(),
            _ => {
                let a = self.take_while(|c| is_atom_char(c) || matches!(c, b'%' | b'*' | b']'));
                if a.is_empty() {
                    err("expected a mailbox pattern")
                } else {
                    Ok(a.to_vec())
                }
            }
        }
    }

    pub(super) fn status_atts(&mut self) -> R<Vec<StatusAtt>> {
        self.paren_list("STATUS item list", false, |p| {
            let a = String::from_utf8_lossy(p.atom()?).to_ascii_uppercase();
            Ok(match a.as_str() {
                "MESSAGES" => StatusAtt::Messages,
                "RECENT" => StatusAtt::Recent,
                "UIDNEXT" => StatusAtt::UidNext,
                "UIDVALIDITY" => StatusAtt::UidValidity,
                "UNSEEN" => StatusAtt::Unseen,
                "SIZE" => StatusAtt::Size,
                _ => return err(format!("unknown STATUS item {a}")),
            })
        })
    }

    /// APPEND arguments up to the message literal: `mailbox [SP flags] [SP date-time] SP`.
    pub fn append_args(&mut self) -> R<AppendArgs> {
        let mailbox = self.astring()?;
        self.sp()?;
        let mut flags = Vec::new();
        let mut date = None;
        if self.peek() == Some(b'(') {
            flags = self.flag_list()?;
            self.sp()?;
        }
        if self.peek() == Some(b'"') {
            let d = self.quoted()?;
            date = Some(
                crate::util::date::parse_imap_datetime(&d)
                    .ok_or_else(|| ParseError("invalid date-time".into()))?,
            );
            self.sp()?;
        }
        Ok(AppendArgs {
            mailbox,
            flags,
            date,
        })
    }
}
