//! One login flow for every front end (IMAP LOGIN/AUTHENTICATE, POP3 USER/PASS, APOP,
//! AUTH): check the credentials, log the outcome in the fail2ban form of `log.rs`, and
//! hold a refusal back for the same delay whatever went wrong (`auth::held_reply`).
//! The engine words its own replies; where an accepted login goes on is `net::privsep`'s
//! business (the engine hands it over through `Protocol::take_login`).

use super::LoggedIn;
use crate::auth::held_reply::HeldReply;
use crate::auth::{self, AuthError};
use std::path::PathBuf;
use std::time::Instant;

/// What the client proved who it is with.
pub enum Credentials<'a> {
    Password {
        user: &'a [u8],
        password: &'a [u8],
        protocol: auth::Protocol,
    },
    /// RFC 1939 7: the MD5 digest of the greeting's challenge and the shared secret.
    Apop {
        user: &'a [u8],
        challenge: &'a str,
        digest: &'a [u8],
    },
}

impl Credentials<'_> {
    fn user(&self) -> &[u8] {
        match self {
            Credentials::Password { user, .. } | Credentials::Apop { user, .. } => user,
        }
    }
}

/// How the engine answers a refused login: the reply, and what follows it when the
/// refusal was one too many and the connection ends (IMAP's `* BYE`; nothing for POP3).
pub struct RefusalText {
    pub reply: Vec<u8>,
    pub last_words: &'static [u8],
}

/// The outcome, for the engine to answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Waiting in `take_accepted` for the driver; the engine reads no more input.
    Accepted,
    /// The refusal is held back (`release` lets it out when due).
    Refused,
    /// The user database could not be read: answer at once with a temporary failure.
    Unavailable,
}

/// A connection's logins: its users file, failures so far, the refusal being held back
/// and the login waiting for the driver.
pub struct LoginGate {
    users_file: PathBuf,
    failures: u32,
    held: Option<HeldReply>,
    accepted: Option<LoggedIn>,
}

impl LoginGate {
    pub fn new(users_file: PathBuf) -> LoginGate {
        LoginGate {
            users_file,
            failures: 0,
            held: None,
            accepted: None,
        }
    }

    /// Check `credentials`; `method` and `tag` go into the `LoggedIn` (the log line,
    /// the reply to answer once the store is open).
    pub fn check(
        &mut self,
        credentials: Credentials<'_>,
        method: &str,
        tag: &str,
        peer: &str,
        refused: RefusalText,
    ) -> Verdict {
        // What the client sent, as a log token that cannot forge another field.
        let shown = crate::log::value(credentials.user());
        let started = Instant::now();
        let result = match credentials {
            Credentials::Password {
                user,
                password,
                protocol,
            } => auth::authenticate(&self.users_file, user, password, protocol),
            Credentials::Apop {
                user,
                challenge,
                digest,
            } => auth::authenticate_apop(&self.users_file, user, challenge, digest),
        };
        match result {
            Ok(user) => {
                self.accepted = Some(LoggedIn {
                    user,
                    method: method.to_string(),
                    tag: tag.to_string(),
                    peer: peer.to_string(),
                });
                Verdict::Accepted
            }
            Err(AuthError::Rejected(reason)) => {
                self.failures += 1;
                crate::log::notice(&format!(
                    "login failed user={shown} peer={peer} reason={reason}"
                ));
                // Same text and delay for an unknown user and a wrong password.
                self.held = Some(HeldReply::failed_login(
                    refused.reply,
                    self.failures,
                    refused.last_words,
                    peer,
                    started,
                ));
                Verdict::Refused
            }
            Err(AuthError::Unavailable(why)) => {
                crate::log::error(&format!(
                    "login failed user={shown} peer={peer} reason=userdb unavailable: {why}"
                ));
                Verdict::Unavailable
            }
        }
    }

    /// A login accepted without credentials: PREAUTH (RFC 3501 7.1.4), or a login the
    /// root daemon handed to this process to answer.
    pub fn accept(&mut self, login: LoggedIn) {
        self.accepted = Some(login);
    }

    /// The accepted login, for the driver (`Protocol::take_login`).
    pub fn take_accepted(&mut self) -> Option<LoggedIn> {
        self.accepted.take()
    }

    /// Is a login or a refusal in flight? Then the engine reads no more input.
    pub fn busy(&self) -> bool {
        self.accepted.is_some() || self.held.is_some()
    }

    /// When a held refusal is due.
    pub fn held_until(&self) -> Option<Instant> {
        self.held.as_ref().map(HeldReply::until)
    }

    /// Move a due refusal into `out`: Err(time) while it must still wait, Ok(true) if the
    /// connection must end now (too many failures), Ok(false) otherwise.
    pub fn release(&mut self, now: Instant, out: &mut Vec<u8>) -> Result<bool, Instant> {
        HeldReply::release(&mut self.held, now, out)
    }
}

/// The log line of a login refused for a reason other than the credentials (plaintext
/// on an unencrypted connection, a maildrop in use...).
pub fn log_refused(user: &str, peer: &str, reason: &str) {
    crate::log::notice(&format!(
        "login refused user={user} peer={peer} reason={reason}"
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal() -> RefusalText {
        RefusalText {
            reply: b"a NO refused\r\n".to_vec(),
            last_words: b"* BYE enough\r\n",
        }
    }

    fn password<'a>(user: &'a [u8], password: &'a [u8]) -> Credentials<'a> {
        Credentials::Password {
            user,
            password,
            protocol: auth::Protocol::Imap,
        }
    }

    #[test]
    fn refusals_are_held_then_end_the_connection_and_a_login_waits_for_the_driver() {
        let dir = std::env::temp_dir().join(format!("imapd-login-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let users = dir.join("passwd");
        std::fs::write(&users, "alice:{PLAIN}secret:1000:1000::/home/alice::\n").unwrap();
        let peer = "192.0.2.201";
        let mut gate = LoginGate::new(users.clone());
        assert!(!gate.busy());

        let mut out = Vec::new();
        for n in 1..=crate::config::MAX_AUTH_FAILURES {
            let v = gate.check(password(b"alice", b"wrong"), "LOGIN", "a", peer, refusal());
            assert_eq!(v, Verdict::Refused);
            assert!(gate.busy(), "no input is read while a refusal is held");
            let until = gate.held_until().expect("held");
            // Not a moment early: the delay is the same whatever went wrong.
            assert_eq!(
                gate.release(until - std::time::Duration::from_millis(1), &mut out),
                Err(until)
            );
            assert!(out.is_empty());
            let last = n == crate::config::MAX_AUTH_FAILURES;
            assert_eq!(gate.release(until, &mut out), Ok(last));
            let want: &[u8] = if last {
                b"a NO refused\r\n* BYE enough\r\n"
            } else {
                b"a NO refused\r\n"
            };
            assert_eq!(out, want);
            out.clear();
            assert!(!gate.busy());
        }

        // An unknown user is refused the same way.
        let mut gate = LoginGate::new(users.clone());
        let v = gate.check(
            password(b"nobody-here", b"x"),
            "LOGIN",
            "a",
            peer,
            refusal(),
        );
        assert_eq!(v, Verdict::Refused);

        let mut gate = LoginGate::new(users);
        let v = gate.check(
            password(b"alice", b"secret"),
            "AUTHENTICATE",
            "t1",
            peer,
            refusal(),
        );
        assert_eq!(v, Verdict::Accepted);
        assert!(
            gate.busy(),
            "no input is read until the driver has taken the login"
        );
        let login = gate.take_accepted().expect("accepted");
        assert_eq!(
            (login.user.name.as_str(), login.method.as_str()),
            ("alice", "AUTHENTICATE")
        );
        assert_eq!((login.tag.as_str(), login.peer.as_str()), ("t1", peer));
        assert!(!gate.busy() && gate.take_accepted().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
