//! Every IMAP command in one table: its name, the state it is valid in (RFC 3501 6),
//! whether untagged EXPUNGE may go out with its answer (RFC 3501 7.4.1), and the
//! capability that announces it. The parser makes the typed `Command`; the dispatcher
//! (`cmd::execute`) finds its row here. A new command is a row, its grammar in
//! `parser.rs`, and its file in `cmd/`.

/// The state a command needs.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum Needs {
    Any,
    NotAuthenticated,
    Authenticated,
    Selected,
}

/// May untagged EXPUNGE responses go out before the command's tagged answer?
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum Expunges {
    Reported,
    /// Not for the sequence-number form: the client's numbers must stay as it sent
    /// them (FETCH, STORE, SEARCH); the UID form may.
    OnlyUidForm,
}

#[derive(Debug)]
pub struct Spec {
    pub name: &'static str,
    pub needs: Needs,
    pub expunges: Expunges,
    /// The capability that announces it (None: IMAP4rev1 itself).
    pub capability: Option<&'static str>,
}

const fn row(
    name: &'static str,
    needs: Needs,
    expunges: Expunges,
    capability: Option<&'static str>,
) -> Spec {
    Spec {
        name,
        needs,
        expunges,
        capability,
    }
}

use Expunges::*;
use Needs::*;

pub const COMMANDS: &[Spec] = &[
    row("CAPABILITY", Any, Reported, None),
    row("NOOP", Any, Reported, None),
    row("LOGOUT", Any, Reported, None),
    row("ID", Any, Reported, Some("ID")), // RFC 2971
    row("STARTTLS", NotAuthenticated, Reported, None),
    row("LOGIN", NotAuthenticated, Reported, None),
    row("AUTHENTICATE", NotAuthenticated, Reported, None),
    row("SELECT", Authenticated, Reported, None),
    row("EXAMINE", Authenticated, Reported, None),
    row("CREATE", Authenticated, Reported, None),
    row("DELETE", Authenticated, Reported, None),
    row("RENAME", Authenticated, Reported, None),
    row("SUBSCRIBE", Authenticated, Reported, None),
    row("UNSUBSCRIBE", Authenticated, Reported, None),
    row("LIST", Authenticated, Reported, None),
    row("LSUB", Authenticated, Reported, None),
    row("STATUS", Authenticated, Reported, None),
    row("APPEND", Authenticated, Reported, None),
    row("NAMESPACE", Authenticated, Reported, Some("NAMESPACE")), // RFC 2342
    row("ENABLE", Authenticated, Reported, Some("ENABLE")),       // RFC 5161
    row("IDLE", Authenticated, Reported, Some("IDLE")),           // RFC 2177
    row("CHECK", Selected, Reported, None),
    row("CLOSE", Selected, Reported, None),
    row("UNSELECT", Selected, Reported, Some("UNSELECT")), // RFC 3691
    row("EXPUNGE", Selected, Reported, None),
    row("UID EXPUNGE", Selected, Reported, Some("UIDPLUS")), // RFC 4315
    row("SEARCH", Selected, OnlyUidForm, None),
    row("FETCH", Selected, OnlyUidForm, None),
    row("STORE", Selected, OnlyUidForm, None),
    row("COPY", Selected, Reported, None),
    row("MOVE", Selected, Reported, Some("MOVE")), // RFC 6851
];

/// Capabilities of the protocol rather than of one command.
const PROTOCOL_CAPABILITIES: &[&str] = &[
    "IMAP4rev1",
    "LITERAL+", // RFC 7888
    "SASL-IR",  // RFC 4959
    "CHILDREN", // RFC 3348
    "ESEARCH",  // RFC 4731: SEARCH RETURN (MIN MAX ALL COUNT), answered as ESEARCH
];

/// Extensions a client turns on with ENABLE (RFC 5161 3.1), as it names them; others
/// it names are ignored. CONDSTORE and QRESYNC (RFC 7162) go here when they land.
pub const ENABLEABLE: &[&str] = &[];

pub fn spec(name: &str) -> &'static Spec {
    COMMANDS
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("{name} has no row in the command registry"))
}

/// The capabilities every connection has: the protocol's, then the commands'.
pub fn capabilities() -> Vec<&'static str> {
    let mut caps: Vec<&'static str> = PROTOCOL_CAPABILITIES.to_vec();
    for c in COMMANDS.iter().filter_map(|s| s.capability) {
        if !caps.contains(&c) {
            caps.push(c);
        }
    }
    caps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_capabilities_listed_once() {
        for (i, a) in COMMANDS.iter().enumerate() {
            assert!(
                COMMANDS[i + 1..].iter().all(|b| b.name != a.name),
                "{}",
                a.name
            );
        }
        let caps = capabilities();
        assert_eq!(caps[0], "IMAP4rev1");
        for c in [
            "ID",
            "IDLE",
            "NAMESPACE",
            "UIDPLUS",
            "MOVE",
            "UNSELECT",
            "LITERAL+",
            "ESEARCH",
            "ENABLE",
        ] {
            assert_eq!(caps.iter().filter(|&&x| x == c).count(), 1, "{c}");
        }
    }

    #[test]
    fn every_command_the_parser_makes_has_a_row() {
        let lines = [
            "CAPABILITY",
            "NOOP",
            "LOGOUT",
            "ID NIL",
            "STARTTLS",
            "LOGIN a b",
            "AUTHENTICATE PLAIN",
            "SELECT INBOX",
            "EXAMINE INBOX",
            "CREATE a",
            "DELETE a",
            "RENAME a b",
            "SUBSCRIBE a",
            "UNSUBSCRIBE a",
            "LIST \"\" *",
            "LSUB \"\" *",
            "STATUS a (MESSAGES)",
            "APPEND a {1}",
            "NAMESPACE",
            "ENABLE CONDSTORE",
            "IDLE",
            "CHECK",
            "CLOSE",
            "UNSELECT",
            "EXPUNGE",
            "UID EXPUNGE 1",
            "SEARCH ALL",
            "FETCH 1 FLAGS",
            "STORE 1 +FLAGS (\\Seen)",
            "COPY 1 a",
            "MOVE 1 a",
        ];
        let mut seen = Vec::new();
        for l in lines {
            let (_, cmd) = crate::imap::parser::parse(format!("t {l}").as_bytes());
            let Ok(cmd) = cmd else {
                // APPEND's message literal is not part of its line.
                assert!(l.starts_with("APPEND"), "{l}");
                seen.push("APPEND");
                continue;
            };
            seen.push(spec(cmd.name()).name);
        }
        for s in COMMANDS {
            assert!(seen.contains(&s.name), "no example of {}", s.name);
        }
    }
}
