//! POP3 commands: RFC 1939 (3, 5, 6, 7), RFC 2449 5 (CAPA), RFC 5034 4 (AUTH).
//!
//! RFC 1939 3: "Commands in the POP3 consist of a case-insensitive keyword, possibly
//! followed by one or more arguments. ... Keywords and arguments are each separated by
//! a single SPACE character." Message numbers are decimal and start at 1 (the session
//! checks the range).

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `USER name`
    User(Vec<u8>),
    /// `PASS string`: the rest of the line, spaces included (RFC 1939 7 allows a
    /// server to treat spaces as part of the password).
    Pass(Vec<u8>),
    /// `APOP name digest`
    Apop {
        user: Vec<u8>,
        digest: Vec<u8>,
    },
    /// `AUTH [mechanism [initial-response]]` (RFC 5034 4); no mechanism lists them.
    Auth {
        mechanism: Option<String>,
        initial: Option<Vec<u8>>,
    },
    Capa,
    /// `STLS` (RFC 2595 4): comes with TLS; answered -ERR until then.
    Stls,
    Stat,
    List(Option<u32>),
    Retr(u32),
    Dele(u32),
    Noop,
    Rset,
    Quit,
    /// `TOP msg n`: headers and the first n lines of the body.
    Top(u32, u64),
    Uidl(Option<u32>),
}

/// Why a line is not a command; the text goes into `-ERR`.
pub type Error = &'static str;

pub fn parse(line: &[u8]) -> Result<Command, Error> {
    let (keyword, rest) = match line.iter().position(|&c| c == b' ') {
        Some(i) => (&line[..i], Some(&line[i + 1..])),
        None => (line, None),
    };
    let keyword = keyword.to_ascii_uppercase();
    let args: Vec<&[u8]> = match rest {
        Some(r) => r.split(|&c| c == b' ').collect(),
        None => Vec::new(),
    };
    let none = |cmd: Command| {
        if args.is_empty() {
            Ok(cmd)
        } else {
            Err("This command takes no arguments")
        }
    };
    match keyword.as_slice() {
        b"USER" => match args.as_slice() {
            [name] if !name.is_empty() => Ok(Command::User(name.to_vec())),
            _ => Err("USER takes one argument: the user name"),
        },
        b"PASS" => match rest {
            Some(p) if !p.is_empty() => Ok(Command::Pass(p.to_vec())),
            _ => Err("PASS takes one argument: the password"),
        },
        b"APOP" => match args.as_slice() {
            [user, digest]
                if !user.is_empty()
                    && digest.len() == 32
                    && digest.iter().all(u8::is_ascii_hexdigit) =>
            {
                Ok(Command::Apop {
                    user: user.to_vec(),
                    digest: digest.to_vec(),
                })
            }
            _ => Err("APOP takes a user name and a 32-digit hex digest"),
        },
        b"AUTH" => match args.as_slice() {
            [] => Ok(Command::Auth {
                mechanism: None,
                initial: None,
            }),
            [mech] if !mech.is_empty() => Ok(Command::Auth {
                mechanism: Some(String::from_utf8_lossy(mech).to_ascii_uppercase()),
                initial: None,
            }),
            [mech, ir] if !mech.is_empty() && !ir.is_empty() => Ok(Command::Auth {
                mechanism: Some(String::from_utf8_lossy(mech).to_ascii_uppercase()),
                initial: Some(ir.to_vec()),
            }),
            _ => Err("AUTH takes a mechanism and an optional initial response"),
        },
        b"CAPA" => none(Command::Capa),
        b"STLS" => none(Command::Stls),
        b"STAT" => none(Command::Stat),
        b"NOOP" => none(Command::Noop),
        b"RSET" => none(Command::Rset),
        b"QUIT" => none(Command::Quit),
        b"LIST" => match args.as_slice() {
            [] => Ok(Command::List(None)),
            [n] => Ok(Command::List(Some(msg_number(n)?))),
            _ => Err("LIST takes at most one message number"),
        },
        b"UIDL" => match args.as_slice() {
            [] => Ok(Command::Uidl(None)),
            [n] => Ok(Command::Uidl(Some(msg_number(n)?))),
            _ => Err("UIDL takes at most one message number"),
        },
        b"RETR" => match args.as_slice() {
            [n] => Ok(Command::Retr(msg_number(n)?)),
            _ => Err("RETR takes one message number"),
        },
        b"DELE" => match args.as_slice() {
            [n] => Ok(Command::Dele(msg_number(n)?)),
            _ => Err("DELE takes one message number"),
        },
        b"TOP" => match args.as_slice() {
            [n, lines] => Ok(Command::Top(msg_number(n)?, line_count(lines)?)),
            _ => Err("TOP takes a message number and a number of lines"),
        },
        _ => Err("Unknown command"),
    }
}

/// A message number: decimal digits, no sign (0 and numbers past the end are the
/// session's "No such message").
fn msg_number(s: &[u8]) -> Result<u32, Error> {
    if s.is_empty() || s.len() > 10 || !s.iter().all(u8::is_ascii_digit) {
        return Err("Invalid message number");
    }
    std::str::from_utf8(s)
        .ok()
        .and_then(|t| t.parse::<u64>().ok())
        .map(|n| n.min(u32::MAX as u64) as u32)
        .ok_or("Invalid message number")
}

/// TOP's line count: any non-negative decimal number (a huge one means "all").
fn line_count(s: &[u8]) -> Result<u64, Error> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return Err("Invalid number of lines");
    }
    Ok(std::str::from_utf8(s)
        .ok()
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::{Command, parse};

    #[test]
    fn commands() {
        assert_eq!(parse(b"stat"), Ok(Command::Stat));
        assert_eq!(parse(b"LiSt 3"), Ok(Command::List(Some(3))));
        assert_eq!(parse(b"TOP 1 10"), Ok(Command::Top(1, 10)));
        assert_eq!(
            parse(b"TOP 1 99999999999999999999999"),
            Ok(Command::Top(1, u64::MAX))
        );
        assert_eq!(
            parse(b"PASS secret with spaces"),
            Ok(Command::Pass(b"secret with spaces".to_vec()))
        );
        assert_eq!(
            parse(b"APOP mrose c4c9334bac560ecc979e58001b3e22fb"),
            Ok(Command::Apop {
                user: b"mrose".to_vec(),
                digest: b"c4c9334bac560ecc979e58001b3e22fb".to_vec()
            })
        );
        assert_eq!(
            parse(b"AUTH plain dGVzdAB0ZXN0AHRlc3Q="),
            Ok(Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial: Some(b"dGVzdAB0ZXN0AHRlc3Q=".to_vec())
            })
        );
        assert_eq!(parse(b"RETR 4294967296"), Ok(Command::Retr(u32::MAX)));
    }

    #[test]
    fn bad_commands() {
        assert!(parse(b"").is_err());
        assert!(parse(b"RETR").is_err());
        assert!(parse(b"RETR -1").is_err());
        assert!(parse(b"RETR +1").is_err());
        assert!(parse(b"RETR 1 2").is_err());
        assert!(parse(b"RETR  1").is_err());
        assert!(parse(b"STAT 1").is_err());
        assert!(parse(b"PASS").is_err());
        assert!(parse(b"APOP mrose xyz").is_err());
        assert!(parse(b"TOP 1").is_err());
        assert!(parse(b"LAST").is_err());
        assert!(parse(b"RETR 99999999999").is_err());
    }
}
