//! LOGIN (RFC 3501 6.2.3) and AUTHENTICATE PLAIN (RFC 3501 6.2.2, RFC 4616, SASL-IR
//! RFC 4959). A failure is answered after the same delay whatever went wrong, and
//! logged in the fail2ban-friendly form of `log.rs`.

use super::super::response::{self, Code, Status};
use super::super::state::{Frame, Session};
use crate::auth::{self, sasl::PlainError};
use crate::session::login::{self, Credentials, RefusalText, Verdict};
use crate::session::{LoggedIn, Refusal};
use crate::store::Store;

impl Session {
    pub(super) fn cmd_login(&mut self, tag: &str, user: &[u8], pass: &[u8]) {
        if self.refuse_plaintext(tag, user) {
            return;
        }
        self.try_login(tag, user, pass, "LOGIN");
    }

    /// RFC 3501 6.2.3 / RFC 5530: no password in the clear where the policy forbids it.
    fn refuse_plaintext(&mut self, tag: &str, user: &[u8]) -> bool {
        if self.plaintext_allowed {
            return false;
        }
        login::log_refused(
            &crate::log::value(user),
            &self.peer,
            "plaintext password on an unencrypted connection",
        );
        self.no_code(
            tag,
            Code::PrivacyRequired,
            "Plaintext passwords are not accepted on an unencrypted connection",
        );
        true
    }

    pub(super) fn cmd_authenticate(
        &mut self,
        tag: &str,
        mechanism: &str,
        initial: Option<Vec<u8>>,
    ) {
        if mechanism != "PLAIN" {
            return self.no_code(tag, Code::Cannot, "Unsupported authentication mechanism");
        }
        if self.refuse_plaintext(tag, b"") {
            return;
        }
        match initial {
            Some(ir) => self.sasl_response(tag, mechanism, &ir),
            None => {
                self.out("+ \r\n");
                self.set_frame(Frame::SaslResponse {
                    tag: tag.to_string(),
                    mechanism: mechanism.to_string(),
                });
            }
        }
    }

    /// The client's SASL response line (base64; `*` cancels; `=` is empty).
    pub(in crate::imap) fn sasl_response(&mut self, tag: &str, _mechanism: &str, line: &[u8]) {
        if line == b"*" {
            return self.bad(tag, "AUTHENTICATE cancelled");
        }
        let (user, pass) = match auth::sasl::decode_plain(line) {
            Ok(up) => up,
            Err(e @ PlainError::Authorization) => {
                return self.no_code(tag, Code::AuthorizationFailed, e.text());
            }
            Err(e) => return self.bad(tag, e.text()),
        };
        self.try_login(tag, &user, &pass, "AUTHENTICATE");
    }

    fn try_login(&mut self, tag: &str, user: &[u8], pass: &[u8], method: &str) {
        let credentials = Credentials::Password {
            user,
            password: pass,
            protocol: auth::Protocol::Imap,
        };
        let refused = RefusalText {
            reply: {
                let mut reply = Vec::new();
                let code = Code::AuthenticationFailed;
                response::status(
                    &mut reply,
                    tag,
                    Status::No,
                    Some(&code),
                    "Authentication failed",
                );
                reply
            },
            last_words: b"* BYE Too many failed logins\r\n",
        };
        // Accepted: the driver opens the store here or hands the session off (`enter`).
        if self
            .logins
            .check(credentials, method, tag, &self.peer, refused)
            == Verdict::Unavailable
        {
            self.no_code(
                tag,
                Code::Unavailable,
                "Authentication is temporarily unavailable",
            );
        }
    }

    /// The driver opened the store of a login (or could not): answer it. PREAUTH (tag
    /// `*`) is answered by the greeting.
    pub(in crate::imap) fn enter_logged_in(
        &mut self,
        login: LoggedIn,
        store: Result<Box<dyn Store>, Refusal>,
    ) {
        let LoggedIn {
            user, method, tag, ..
        } = login;
        let Ok(store) = store else {
            if tag == "*" {
                self.untagged(
                    Status::Bye,
                    None,
                    "Cannot open your mailbox; see the server log",
                );
                return self.close("mailbox unavailable");
            }
            return self.no_code(
                &tag,
                Code::Unavailable,
                "This account cannot be served now; see the server log",
            );
        };
        crate::log::info(&format!(
            "login user={} peer={} method={method}",
            user.name, self.peer
        ));
        let name = user.name.clone();
        self.authenticated(user, store);
        let caps = Code::Capability(self.capabilities());
        if tag == "*" {
            self.untagged(Status::Preauth, Some(caps), &format!("Logged in as {name}"));
        } else {
            self.ok_code(&tag, caps, "Logged in");
        }
    }
}
