//! RFC 3501 section 9 command grammar (with RFC 7888 LITERAL+, 2177 IDLE, 4315 UID
//! EXPUNGE, 6851 MOVE, 3691 UNSELECT, 2342 NAMESPACE, 2971 ID, 4616 SASL-IR).
//! Input is one complete command with literals inline (`{n}\r\n` + n octets), as the
//! framer assembles it, without the final CRLF. APPEND's message literal is not in the
//! buffer: the framer streams it to the store and the parser reads only its arguments.

use crate::store::Flags;

mod fetch;
mod mailbox;
mod modifiers;
mod search;

pub use fetch::{FetchAtt, Section, SectionText};
pub use mailbox::StatusAtt;
pub use modifiers::{FetchModifier, SelectParam, StoreModifier};
pub use search::{SearchKey, SearchReturn};

#[derive(Debug)]
pub struct ParseError(pub String);

type R<T> = Result<T, ParseError>;

fn err<T>(msg: impl Into<String>) -> R<T> {
    Err(ParseError(msg.into()))
}

/// A sequence set (RFC 3501 9 `sequence-set`): ranges as written, `*` kept apart from
/// every number (an explicit 4294967295 is a number, not `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqSet(pub Vec<(SeqNum, SeqNum)>);

/// `seq-number = nz-number / "*"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqNum {
    Num(u32),
    /// The largest number in use (the last message, or the highest UID).
    Star,
}

impl SeqSet {
    /// The ranges with `*` read as `star`, each from low to high (`4:2` is `2:4`).
    pub fn ranges(&self, star: u32) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.0.iter().map(move |&(a, b)| {
            let value = |n: SeqNum| match n {
                SeqNum::Num(v) => v,
                SeqNum::Star => star,
            };
            let (a, b) = (value(a), value(b));
            (a.min(b), a.max(b))
        })
    }
}

/// A flag in STORE, APPEND or SEARCH KEYWORD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flag {
    System(u8),
    Recent,
    Keyword(String),
}

/// SELECT's and EXAMINE's arguments (RFC 3501 6.3.1; RFC 4466 2.1 parameters).
#[derive(Debug, Clone)]
pub struct SelectArgs {
    pub mailbox: Vec<u8>,
    pub params: Vec<SelectParam>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    Replace,
    Add,
    Remove,
}

#[derive(Debug, Clone)]
pub enum Command {
    Capability,
    Noop,
    Logout,
    Id,
    Namespace,
    StartTls,
    Login(Vec<u8>, Vec<u8>),
    Authenticate(String, Option<Vec<u8>>),
    Select(SelectArgs),
    Examine(SelectArgs),
    Create(Vec<u8>),
    Delete(Vec<u8>),
    Rename(Vec<u8>, Vec<u8>),
    Subscribe(Vec<u8>),
    Unsubscribe(Vec<u8>),
    List(Vec<u8>, Vec<u8>),
    Lsub(Vec<u8>, Vec<u8>),
    Status(Vec<u8>, Vec<StatusAtt>),
    Append(AppendArgs),
    Check,
    Close,
    Unselect,
    Expunge,
    UidExpunge(SeqSet),
    Idle,
    /// RFC 5161: the capability names, upper case.
    Enable(Vec<String>),
    Search {
        uid: bool,
        /// `RETURN (...)` (RFC 4731): answered with ESEARCH, not SEARCH.
        ret: Option<SearchReturn>,
        /// CHARSET as given (upper case); the command decides whether it can search in it.
        charset: Option<String>,
        key: SearchKey,
    },
    Fetch {
        uid: bool,
        set: SeqSet,
        atts: Vec<FetchAtt>,
        modifiers: Vec<FetchModifier>,
    },
    Store {
        uid: bool,
        set: SeqSet,
        modifiers: Vec<StoreModifier>,
        mode: StoreMode,
        silent: bool,
        flags: Vec<Flag>,
    },
    Copy {
        uid: bool,
        set: SeqSet,
        mailbox: Vec<u8>,
    },
    Move {
        uid: bool,
        set: SeqSet,
        mailbox: Vec<u8>,
    },
}

impl Command {
    /// The name as logged and as shown in completion texts.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Capability => "CAPABILITY",
            Command::Noop => "NOOP",
            Command::Logout => "LOGOUT",
            Command::Id => "ID",
            Command::Namespace => "NAMESPACE",
            Command::StartTls => "STARTTLS",
            Command::Login(..) => "LOGIN",
            Command::Authenticate(..) => "AUTHENTICATE",
            Command::Select(_) => "SELECT",
            Command::Examine(_) => "EXAMINE",
            Command::Create(_) => "CREATE",
            Command::Delete(_) => "DELETE",
            Command::Rename(..) => "RENAME",
            Command::Subscribe(_) => "SUBSCRIBE",
            Command::Unsubscribe(_) => "UNSUBSCRIBE",
            Command::List(..) => "LIST",
            Command::Lsub(..) => "LSUB",
            Command::Status(..) => "STATUS",
            Command::Append(_) => "APPEND",
            Command::Check => "CHECK",
            Command::Close => "CLOSE",
            Command::Unselect => "UNSELECT",
            Command::Expunge => "EXPUNGE",
            Command::UidExpunge(_) => "UID EXPUNGE",
            Command::Idle => "IDLE",
            Command::Enable(_) => "ENABLE",
            Command::Search { .. } => "SEARCH",
            Command::Fetch { .. } => "FETCH",
            Command::Store { .. } => "STORE",
            Command::Copy { .. } => "COPY",
            Command::Move { .. } => "MOVE",
        }
    }
}

/// APPEND's arguments before the message literal.
#[derive(Debug, Clone)]
pub struct AppendArgs {
    pub mailbox: Vec<u8>,
    pub flags: Vec<Flag>,
    pub date: Option<i64>,
}

pub struct Parser<'a> {
    b: &'a [u8],
    pub i: usize,
    depth: usize,
}

fn is_atom_char(c: u8) -> bool {
    c > b' ' && c < 0x7f && !matches!(c, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

impl<'a> Parser<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Parser { b, i: 0, depth: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn at_end(&self) -> bool {
        self.i >= self.b.len()
    }

    fn expect(&mut self, c: u8) -> R<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            err(format!("expected '{}'", c as char))
        }
    }

    fn sp(&mut self) -> R<()> {
        self.expect(b' ')
            .map_err(|_| ParseError("missing argument (expected a space)".into()))
    }

    fn end(&self) -> R<()> {
        if self.at_end() {
            Ok(())
        } else {
            err("unexpected extra arguments")
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.i;
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
        &self.b[start..self.i]
    }

    pub fn tag(&mut self) -> R<String> {
        let t = self.take_while(|c| is_atom_char(c) && c != b'+');
        if t.is_empty() {
            return err("missing or invalid tag");
        }
        Ok(String::from_utf8_lossy(t).into_owned())
    }

    pub fn atom(&mut self) -> R<&'a [u8]> {
        let a = self.take_while(is_atom_char);
        if a.is_empty() {
            err("expected an atom")
        } else {
            Ok(a)
        }
    }

    fn keyword(&mut self, kw: &str) -> bool {
        let end = self.i + kw.len();
        if end <= self.b.len() && self.b[self.i..end].eq_ignore_ascii_case(kw.as_bytes()) {
            let next = self.b.get(end).copied();
            if next.is_none_or(|c| !is_atom_char(c) || matches!(c, b'[' | b'.'))
                || kw.ends_with('[')
            {
                self.i = end;
                return true;
            }
        }
        false
    }

    fn number(&mut self) -> R<u64> {
        let d = self.take_while(|c| c.is_ascii_digit());
        if d.is_empty() || d.len() > 19 {
            return err("expected a number");
        }
        Ok(std::str::from_utf8(d)
            .unwrap()
            .parse::<u64>()
            .unwrap_or(u64::MAX))
    }

    fn number32(&mut self) -> R<u32> {
        let n = self.number()?;
        u32::try_from(n).map_err(|_| ParseError("number out of range".into()))
    }

    fn nz_number(&mut self) -> R<u32> {
        let n = self.number32()?;
        if n == 0 {
            err("zero is not a valid message number")
        } else {
            Ok(n)
        }
    }

    /// `{n}` or `{n+}` + CRLF + n octets.
    fn literal(&mut self) -> R<Vec<u8>> {
        self.expect(b'{')?;
        let n = self.number()? as usize;
        if self.peek() == Some(b'+') {
            self.i += 1;
        }
        self.expect(b'}')?;
        if self.peek() == Some(b'\r') {
            self.i += 1;
        }
        self.expect(b'\n')?;
        let end = self
            .i
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| ParseError("truncated literal".into()))?;
        let v = self.b[self.i..end].to_vec();
        self.i = end;
        Ok(v)
    }

    fn quoted(&mut self) -> R<Vec<u8>> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return err("unterminated quoted string"),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => {
                            out.push(c);
                            self.i += 1;
                        }
                        _ => return err("invalid escape in quoted string"),
                    }
                }
                Some(b'\r' | b'\n' | 0) => return err("CR, LF or NUL in quoted string"),
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }

    pub fn string(&mut self) -> R<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            _ => err("expected a string"),
        }
    }

    pub fn astring(&mut self) -> R<Vec<u8>> {
        match self.peek() {
            Some(b'"') | Some(b'{') => self.string(),
            _ => {
                // 8-bit octets are not ATOM-CHARs, but clients send raw UTF-8 search
                // strings; accepted as Dovecot does (mailbox names still refuse them).
                let a = self.take_while(|c| is_atom_char(c) || c == b']' || c >= 0x80);
                if a.is_empty() {
                    err("expected a string or atom")
                } else {
                    Ok(a.to_vec())
                }
            }
        }
    }

    pub fn seq_set(&mut self) -> R<SeqSet> {
        let mut ranges = Vec::new();
        loop {
            let a = self.seq_number()?;
            let b = if self.peek() == Some(b':') {
                self.i += 1;
                self.seq_number()?
            } else {
                a
            };
            ranges.push((a, b));
            if self.peek() == Some(b',') {
                self.i += 1;
            } else {
                break;
            }
        }
        Ok(SeqSet(ranges))
    }

    fn seq_number(&mut self) -> R<SeqNum> {
        if self.peek() == Some(b'*') {
            self.i += 1;
            Ok(SeqNum::Star)
        } else {
            self.nz_number()
                .map(SeqNum::Num)
                .map_err(|_| ParseError("invalid sequence set".into()))
        }
    }

    fn flag(&mut self) -> R<Flag> {
        if self.peek() == Some(b'\\') {
            self.i += 1;
            let a = self.atom()?;
            let name = String::from_utf8_lossy(a).to_ascii_lowercase();
            return Ok(match name.as_str() {
                "seen" => Flag::System(Flags::SEEN),
                "answered" => Flag::System(Flags::ANSWERED),
                "flagged" => Flag::System(Flags::FLAGGED),
                "deleted" => Flag::System(Flags::DELETED),
                "draft" => Flag::System(Flags::DRAFT),
                "recent" => Flag::Recent,
                _ => {
                    return err(format!(
                        "unknown system flag \\{}",
                        String::from_utf8_lossy(a)
                    ));
                }
            });
        }
        Ok(Flag::Keyword(
            String::from_utf8_lossy(self.atom()?).into_owned(),
        ))
    }

    /// RFC 3501's parenthesised lists: `(item SP item ...)`; `()` only if `allow_empty`.
    fn paren_list<T>(
        &mut self,
        what: &str,
        allow_empty: bool,
        mut item: impl FnMut(&mut Self) -> R<T>,
    ) -> R<Vec<T>> {
        self.expect(b'(')?;
        let mut v = Vec::new();
        if allow_empty && self.peek() == Some(b')') {
            self.i += 1;
            return Ok(v);
        }
        loop {
            v.push(item(self)?);
            match self.peek() {
                Some(b' ') => self.i += 1,
                Some(b')') => {
                    self.i += 1;
                    return Ok(v);
                }
                _ => return err(format!("malformed {what}")),
            }
        }
    }

    fn flag_list(&mut self) -> R<Vec<Flag>> {
        self.paren_list("flag list", true, Self::flag)
    }

    fn date(&mut self) -> R<i64> {
        let quoted = self.peek() == Some(b'"');
        if quoted {
            self.i += 1;
        }
        let d = self.take_while(|c| c.is_ascii_alphanumeric() || c == b'-');
        let days = crate::util::date::parse_imap_date(d)
            .ok_or_else(|| ParseError("invalid date".into()))?;
        if quoted {
            self.expect(b'"')?;
        }
        Ok(days)
    }

    /// Everything after the tag.
    pub fn command(&mut self) -> R<Command> {
        self.sp()?;
        let word = String::from_utf8_lossy(self.atom()?).to_ascii_uppercase();
        let mut uid = false;
        let word = if word == "UID" {
            uid = true;
            self.sp()?;
            String::from_utf8_lossy(self.atom()?).to_ascii_uppercase()
        } else {
            word
        };
        let cmd = match (uid, word.as_str()) {
            (false, "CAPABILITY") => Command::Capability,
            (false, "NOOP") => Command::Noop,
            (false, "LOGOUT") => Command::Logout,
            (false, "STARTTLS") => Command::StartTls,
            (false, "NAMESPACE") => Command::Namespace,
            (false, "CHECK") => Command::Check,
            (false, "CLOSE") => Command::Close,
            (false, "UNSELECT") => Command::Unselect,
            (false, "EXPUNGE") => Command::Expunge,
            (false, "IDLE") => Command::Idle,
            // RFC 5161 4: "ENABLE" 1*(SP capability)
            (false, "ENABLE") => {
                let mut names = Vec::new();
                while self.peek() == Some(b' ') {
                    self.i += 1;
                    names.push(String::from_utf8_lossy(self.atom()?).to_ascii_uppercase());
                }
                if names.is_empty() {
                    return err("ENABLE needs a capability name");
                }
                Command::Enable(names)
            }
            (false, "ID") => {
                // RFC 2971: we accept and ignore the client's parameters.
                self.sp()?;
                self.i = self.b.len();
                Command::Id
            }
            (false, "LOGIN") => {
                self.sp()?;
                let u = self.astring()?;
                self.sp()?;
                let p = self.astring()?;
                Command::Login(u, p)
            }
            (false, "AUTHENTICATE") => {
                self.sp()?;
                let mech = String::from_utf8_lossy(self.atom()?).to_ascii_uppercase();
                let initial = if self.peek() == Some(b' ') {
                    self.i += 1;
                    // RFC 4959 SASL-IR: base64 or "=" for empty.
                    Some(
                        self.take_while(|c| {
                            c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=')
                        })
                        .to_vec(),
                    )
                } else {
                    None
                };
                Command::Authenticate(mech, initial)
            }
            (false, "SELECT" | "EXAMINE") => {
                self.sp()?;
                let args = SelectArgs {
                    mailbox: self.astring()?,
                    params: self.select_params()?,
                };
                if word == "SELECT" {
                    Command::Select(args)
                } else {
                    Command::Examine(args)
                }
            }
            (false, "CREATE" | "DELETE" | "SUBSCRIBE" | "UNSUBSCRIBE") => {
                self.sp()?;
                let m = self.astring()?;
                match word.as_str() {
                    "CREATE" => Command::Create(m),
                    "DELETE" => Command::Delete(m),
                    "SUBSCRIBE" => Command::Subscribe(m),
                    _ => Command::Unsubscribe(m),
                }
            }
            (false, "RENAME") => {
                self.sp()?;
                let a = self.astring()?;
                self.sp()?;
                let b = self.astring()?;
                Command::Rename(a, b)
            }
            (false, "LIST" | "LSUB") => {
                self.sp()?;
                let r = self.astring().or_else(|_| {
                    if self.peek() == Some(b' ') {
                        Ok(Vec::new())
                    } else {
                        err("bad reference")
                    }
                })?;
                self.sp()?;
                let p = self.list_mailbox()?;
                if word == "LIST" {
                    Command::List(r, p)
                } else {
                    Command::Lsub(r, p)
                }
            }
            (false, "STATUS") => {
                self.sp()?;
                let m = self.astring()?;
                self.sp()?;
                Command::Status(m, self.status_atts()?)
            }
            (false, "APPEND") => {
                self.sp()?;
                Command::Append(self.append_args()?)
            }
            (_, "SEARCH") => {
                self.sp()?;
                let mut ret = None;
                if self.keyword("RETURN") {
                    self.sp()?;
                    ret = Some(self.search_return()?);
                    self.sp()?;
                }
                let save = self.i;
                let mut charset = None;
                if self.keyword("CHARSET") {
                    self.sp()?;
                    let cs = self.astring()?;
                    charset = Some(String::from_utf8_lossy(&cs).to_ascii_uppercase());
                    self.sp()?;
                } else {
                    self.i = save;
                }
                let mut keys = vec![self.search_key()?];
                while self.peek() == Some(b' ') {
                    self.i += 1;
                    keys.push(self.search_key()?);
                }
                Command::Search {
                    uid,
                    ret,
                    charset,
                    key: if keys.len() == 1 {
                        keys.pop().unwrap()
                    } else {
                        SearchKey::And(keys)
                    },
                }
            }
            (_, "FETCH") => {
                self.sp()?;
                let set = self.seq_set()?;
                self.sp()?;
                let mut atts = Vec::new();
                if self.peek() == Some(b'(') {
                    self.paren_list("FETCH attribute list", false, |p| p.fetch_att(&mut atts))?;
                } else {
                    self.fetch_att(&mut atts)?;
                }
                let modifiers = self.fetch_modifiers()?;
                Command::Fetch {
                    uid,
                    set,
                    atts,
                    modifiers,
                }
            }
            (_, "STORE") => {
                self.sp()?;
                let set = self.seq_set()?;
                let modifiers = self.store_modifiers()?;
                self.sp()?;
                let item =
                    String::from_utf8_lossy(self.take_while(is_atom_char)).to_ascii_uppercase();
                let (mode, rest) = match item.as_bytes().first() {
                    Some(b'+') => (StoreMode::Add, &item[1..]),
                    Some(b'-') => (StoreMode::Remove, &item[1..]),
                    _ => (StoreMode::Replace, &item[..]),
                };
                let silent = match rest {
                    "FLAGS" => false,
                    "FLAGS.SILENT" => true,
                    _ => return err("expected FLAGS, +FLAGS or -FLAGS (optionally .SILENT)"),
                };
                self.sp()?;
                let flags = if self.peek() == Some(b'(') {
                    self.flag_list()?
                } else {
                    let mut v = vec![self.flag()?];
                    while self.peek() == Some(b' ') {
                        self.i += 1;
                        v.push(self.flag()?);
                    }
                    v
                };
                Command::Store {
                    uid,
                    set,
                    modifiers,
                    mode,
                    silent,
                    flags,
                }
            }
            (_, "COPY" | "MOVE") => {
                self.sp()?;
                let set = self.seq_set()?;
                self.sp()?;
                let mailbox = self.astring()?;
                if word == "COPY" {
                    Command::Copy { uid, set, mailbox }
                } else {
                    Command::Move { uid, set, mailbox }
                }
            }
            (true, "EXPUNGE") => {
                self.sp()?;
                Command::UidExpunge(self.seq_set()?)
            }
            _ => {
                return err(format!(
                    "unknown command {}{word}",
                    if uid { "UID " } else { "" }
                ));
            }
        };
        self.end()?;
        Ok(cmd)
    }
}

/// Parse one whole command: (tag, command). The tag is returned even when the rest is
/// malformed, so the BAD can be tagged.
pub fn parse(line: &[u8]) -> (Option<String>, R<Command>) {
    let mut p = Parser::new(line);
    let tag = match p.tag() {
        Ok(t) => t,
        Err(e) => return (None, Err(e)),
    };
    (Some(tag), p.command())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn cmd(s: &str) -> Command {
        let (tag, c) = parse(s.as_bytes());
        assert!(tag.is_some());
        c.unwrap_or_else(|e| panic!("{s}: {}", e.0))
    }

    pub(super) fn bad(s: &[u8]) {
        let (_, c) = parse(s);
        assert!(c.is_err(), "{:?} parsed", String::from_utf8_lossy(s));
    }

    #[test]
    fn enable_takes_capability_names() {
        match cmd("a ENABLE condstore QRESYNC") {
            Command::Enable(v) => assert_eq!(v, ["CONDSTORE", "QRESYNC"]),
            other => panic!("{other:?}"),
        }
        bad(b"a ENABLE");
        bad(b"a ENABLE ");
        bad(b"a ENABLE (CONDSTORE)");
        bad(b"a UID ENABLE CONDSTORE");
    }

    #[test]
    fn basic_commands() {
        assert!(matches!(cmd("a1 CAPABILITY"), Command::Capability));
        match cmd("a LOGIN \"fred\" {5}\r\nfoo\"b") {
            Command::Login(u, p) => {
                assert_eq!(u, b"fred");
                assert_eq!(p, b"foo\"b");
            }
            _ => panic!(),
        }
        match cmd("a LIST \"\" %") {
            Command::List(r, p) => {
                assert!(r.is_empty());
                assert_eq!(p, b"%");
            }
            _ => panic!(),
        }
        assert!(matches!(
            cmd("a uid fetch 1:* (FLAGS)"),
            Command::Fetch { uid: true, .. }
        ));
    }

    #[test]
    fn star_is_not_the_largest_number() {
        // RFC 3501 9: `*` is the largest number in use; 4294967295 is only itself.
        match cmd("a UID FETCH 4294967295,3:*,*:1 FLAGS") {
            Command::Fetch { set, .. } => assert_eq!(
                set.ranges(12).collect::<Vec<_>>(),
                vec![(4294967295, 4294967295), (3, 12), (1, 12)]
            ),
            _ => panic!(),
        }
    }

    #[test]
    fn store_and_append() {
        match cmd("a UID STORE 1:4294967295 +FLAGS.SILENT (\\Seen $Junk)") {
            Command::Store {
                uid: true,
                set,
                mode: StoreMode::Add,
                silent: true,
                flags,
                ..
            } => {
                assert_eq!(set.ranges(7).collect::<Vec<_>>(), vec![(1, 4294967295)]);
                assert_eq!(
                    flags,
                    vec![Flag::System(Flags::SEEN), Flag::Keyword("$Junk".into())]
                );
            }
            other => panic!("{other:?}"),
        }
        let mut p = Parser::new(b"INBOX (\\Seen) \" 7-Feb-1994 21:52:25 -0800\" ");
        let a = p.append_args().unwrap();
        assert_eq!(a.mailbox, b"INBOX");
        assert_eq!(a.date, Some(760686745));
        bad(b"a STORE 1 FLAGS (\\Bogus)");
        bad(b"a STORE 1 XFLAGS (\\Seen)");
    }

    #[test]
    fn garbage_never_panics() {
        let samples: [&[u8]; 12] = [
            b"",
            b" ",
            b"*",
            b"a",
            b"a ",
            b"a {",
            b"a LOGIN {99999999999999999999}\r\n",
            b"a LOGIN {5}\r\nab",
            b"a FETCH 1 BODY[1.",
            b"a UID",
            b"\xff\xfe FETCH",
            b"a SEARCH (((",
        ];
        for s in samples {
            let _ = parse(s);
        }
        // Every prefix of a complex command.
        let full = b"a1 UID FETCH 1:*,5 (BODY.PEEK[1.2.HEADER.FIELDS.NOT (X Y)]<0.100> ENVELOPE)";
        for n in 0..full.len() {
            let _ = parse(&full[..n]);
        }
    }
}
