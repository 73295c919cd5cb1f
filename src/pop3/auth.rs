//! The AUTHORIZATION state (RFC 1939 4, 7): USER/PASS, APOP, and AUTH PLAIN (RFC 5034),
//! then the maildrop lock. Failures carry RFC 2449/3206 response codes: [AUTH] for
//! wrong credentials, [SYS/TEMP] and [SYS/PERM] for the server's side, [IN-USE] for a
//! maildrop another POP3 session holds, [LOGIN-DELAY] for logins too close together.
//! A failed login is answered after the same delay whatever went wrong, and logged in
//! the fail2ban-friendly form of `log.rs`.

use super::maildrop::Maildrop;
use super::session::{Frame, Job, Session, State};
use crate::auth::{self, User};
use crate::config;
use crate::session::login::{self, Credentials, RefusalText, Verdict};
use crate::session::{LoggedIn, Refusal};
use crate::store::{Store, StoreError, filelock};
use std::time::Duration;

use super::parser::Command;

impl Session {
    pub(super) fn authorization(&mut self, cmd: Command) {
        let plaintext = matches!(
            cmd,
            Command::User(_)
                | Command::Pass(_)
                | Command::Auth {
                    mechanism: Some(_),
                    ..
                }
        );
        if plaintext && !self.plaintext_allowed {
            // RFC 2595 / UW's SSLTYPE: no password in the clear here (APOP still works).
            login::log_refused(
                "",
                &self.peer,
                "plaintext password on an unencrypted connection",
            );
            return self
                .err("Plaintext authentication is not accepted on an unencrypted connection");
        }
        match cmd {
            Command::User(name) => {
                // The same answer for every name: USER must not tell who exists.
                self.state = State::Authorization { user: Some(name) };
                self.ok("Send PASS");
            }
            Command::Pass(pass) => {
                let State::Authorization { user: Some(user) } =
                    std::mem::replace(&mut self.state, State::Authorization { user: None })
                else {
                    return self.bad("Send USER first");
                };
                self.check(password(&user, &pass), "USER");
            }
            Command::Apop { user, digest } => {
                let Some(challenge) = self.apop_challenge.clone() else {
                    return self.bad("APOP is not available on this server");
                };
                let apop = Credentials::Apop {
                    user: &user,
                    challenge: &challenge,
                    digest: &digest,
                };
                self.check(apop, "APOP");
            }
            Command::Auth {
                mechanism: None, ..
            } => {
                // The mechanism list of the pre-RFC 5034 AUTH (still sent by some clients).
                self.out("+OK Mechanisms follow\r\nPLAIN\r\n.\r\n");
            }
            Command::Auth {
                mechanism: Some(m),
                initial,
            } => {
                if m != "PLAIN" {
                    return self.bad("Unsupported authentication mechanism");
                }
                match initial {
                    Some(ir) => self.sasl_response(&ir),
                    None => {
                        self.out("+ \r\n");
                        self.set_frame(Frame::SaslResponse);
                    }
                }
            }
            _ => self.bad("Log in first (USER and PASS, APOP or AUTH)"),
        }
    }

    /// The client's AUTH PLAIN response (RFC 5034 4: `*` cancels).
    pub(super) fn sasl_response(&mut self, line: &[u8]) {
        if line == b"*" {
            return self.bad("Authentication cancelled");
        }
        match auth::sasl::decode_plain(line) {
            Ok((user, pass)) => self.check(password(&user, &pass), "AUTH"),
            Err(e) => self.bad(e.text()),
        }
    }

    fn check(&mut self, credentials: Credentials<'_>, method: &str) {
        let refused = RefusalText {
            reply: b"-ERR [AUTH] Authentication failed\r\n".to_vec(),
            last_words: b"",
        };
        // Accepted: the driver opens the store here or hands the session off (`enter`).
        if self
            .logins
            .check(credentials, method, "", &self.peer, refused)
            == Verdict::Unavailable
        {
            self.err("[SYS/TEMP] Authentication is temporarily unavailable");
        }
    }

    /// The driver opened the store of a login (or could not): lock and number the
    /// maildrop: TRANSACTION. Whatever fails now ends the connection: under inetd the
    /// process already belongs to the user.
    pub(super) fn enter_maildrop(
        &mut self,
        login: LoggedIn,
        store: Result<Box<dyn Store>, Refusal>,
    ) {
        let LoggedIn { user, method, .. } = login;
        let store = match store {
            Ok(s) => s,
            Err(Refusal::Temporary) => {
                self.err("[SYS/TEMP] Your mailbox can't be opened now; see the server log");
                return self.close("mailbox unavailable");
            }
            Err(Refusal::Permanent) => {
                self.err("[SYS/PERM] This account can't be served; see the server log");
                return self.close("account refused");
            }
        };
        self.open_maildrop(user, method, store);
    }

    /// Lock and number the maildrop, or park the login on a lock another program
    /// holds (the driver calls `enter` outside a step: it yields here all the same).
    pub(super) fn open_maildrop(&mut self, user: User, method: String, mut store: Box<dyn Store>) {
        let opened = filelock::yielding(|| Maildrop::open(store.as_mut()));
        let refuse = |why: &str| login::log_refused(&user.name, &self.peer, why);
        let drop = match opened {
            Ok(d) => d,
            Err(e) if self.waits_for_lock(&e) => {
                return self.park(Job::Enter {
                    user,
                    method,
                    store,
                });
            }
            Err(StoreError::InUse) => {
                refuse("maildrop in use by another POP3 session");
                self.err("[IN-USE] Your mailbox is in use by another POP3 session");
                return self.close("maildrop in use");
            }
            Err(e @ StoreError::Locked { .. }) => {
                refuse(&format!("cannot open maildrop: {e}"));
                self.err("[IN-USE] Your mailbox is locked by another program; try again later");
                return self.close("maildrop locked");
            }
            Err(e) => {
                refuse(&format!("cannot open maildrop: {e}"));
                self.err("[SYS/TEMP] Your mailbox can't be opened now; see the server log");
                return self.close("mailbox unavailable");
            }
        };
        // RFC 2449 8.1.1: logins closer together than the advertised delay.
        let delay = Duration::from_secs(config::POP3_LOGIN_DELAY_SECS);
        if !delay.is_zero() {
            let since = drop.lock().previous_login().and_then(|t| t.elapsed().ok());
            if since.is_some_and(|s| s < delay) {
                refuse("logged in again within LOGIN-DELAY");
                drop.abandon();
                self.err(&format!(
                    "[LOGIN-DELAY] Log in at most once every {} seconds",
                    delay.as_secs()
                ));
                return self.close("login delay");
            }
        }
        if let Err(e) = drop.lock().record_login() {
            crate::log::warning(&format!(
                "cannot record login time user={} error={e}",
                user.name
            ));
        }
        let (n, size) = drop.totals();
        crate::log::info(&format!(
            "login user={} peer={} method={method} messages={n} octets={size}",
            user.name, self.peer
        ));
        self.user_name = Some(user.name);
        self.state = State::Transaction(Box::new(drop));
        self.ok(&format!("Logged in; {n} messages ({size} octets)"));
    }
}

fn password<'a>(user: &'a [u8], password: &'a [u8]) -> Credentials<'a> {
    Credentials::Password {
        user,
        password,
        protocol: auth::Protocol::Pop3,
    }
}
