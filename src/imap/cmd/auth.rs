//! LOGIN (RFC 3501 6.2.3) and AUTHENTICATE PLAIN (RFC 3501 6.2.2, RFC 4616, SASL-IR
//! RFC 4959). A failure is answered after the same delay whatever went wrong, and
//! logged in the fail2ban-friendly form of `log.rs`.

use super::super::session::{Frame, Mode, Session};
use crate::auth::{self, AuthError, User};
use crate::config;
use crate::store::maildir::MaildirStore;
use std::time::{Duration, Instant};

impl Session {
    pub(super) fn cmd_login(&mut self, tag: &str, user: &[u8], pass: &[u8]) {
        self.try_login(tag, user, pass, "LOGIN");
    }

    pub(super) fn cmd_authenticate(
        &mut self,
        tag: &str,
        mechanism: &str,
        initial: Option<Vec<u8>>,
    ) {
        if mechanism != "PLAIN" {
            return self.no(tag, "[CANNOT] Unsupported authentication mechanism");
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
        let b64 = if line == b"=" { &b""[..] } else { line };
        if !b64
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='))
        {
            return self.bad(tag, "Invalid base64 in AUTHENTICATE response");
        }
        let decoded = crate::imap::fetch::mime::decode_base64(b64);
        // RFC 4616: [authzid] NUL authcid NUL passwd
        let parts: Vec<&[u8]> = decoded.split(|&c| c == 0).collect();
        if parts.len() != 3 {
            return self.bad(tag, "Malformed PLAIN response");
        }
        if !parts[0].is_empty() && parts[0] != parts[1] {
            return self.no(
                tag,
                "[AUTHORIZATIONFAILED] Logging in as another user is not supported",
            );
        }
        let (user, pass) = (parts[1].to_vec(), parts[2].to_vec());
        self.try_login(tag, &user, &pass, "AUTHENTICATE");
    }

    fn try_login(&mut self, tag: &str, user: &[u8], pass: &[u8], method: &str) {
        let shown = String::from_utf8_lossy(user)
            .chars()
            .take(64)
            .collect::<String>();
        match auth::authenticate(&self.users_file, user, pass) {
            Ok(u) => match self.enter_user(u, method) {
                Ok(()) => {
                    let caps = self.capabilities();
                    self.ok(tag, &format!("[CAPABILITY {caps}] Logged in"));
                }
                Err(()) => self.no(
                    tag,
                    "[UNAVAILABLE] This account cannot be served now; see the server log",
                ),
            },
            Err(AuthError::Rejected(reason)) => {
                self.auth_failures += 1;
                crate::log::notice(&format!(
                    "login failed user={shown} peer={} reason={reason}",
                    self.peer
                ));
                // Same text and delay for an unknown user and a wrong password.
                let mut text = format!("{tag} NO [AUTHENTICATIONFAILED] Authentication failed\r\n")
                    .into_bytes();
                let close = self.auth_failures >= config::MAX_AUTH_FAILURES;
                if close {
                    text.extend_from_slice(b"* BYE Too many failed logins\r\n");
                }
                let until = Instant::now() + Duration::from_millis(config::AUTH_FAIL_DELAY_MS);
                self.delayed = Some((until, text, close));
            }
            Err(AuthError::Unavailable(why)) => {
                crate::log::error(&format!(
                    "login failed user={shown} peer={} reason=userdb unavailable: {why}",
                    self.peer
                ));
                self.no(
                    tag,
                    "[UNAVAILABLE] Authentication is temporarily unavailable",
                );
            }
        }
    }

    /// Become the user (inetd mode as root: drop privileges first), then open the store.
    pub(in crate::imap) fn enter_user(&mut self, user: User, method: &str) -> Result<(), ()> {
        let fail = |why: String| {
            crate::log::error(&format!(
                "login refused user={} peer={} reason={why}",
                user.name, self.peer
            ));
        };
        let euid = crate::sys::euid();
        if euid == 0 {
            match (self.mode, user.uid) {
                (Mode::Inetd, Some(uid)) if uid != 0 => {
                    if let Err(e) = crate::sys::drop_privileges(uid, user.gid.unwrap_or(uid)) {
                        fail(format!("cannot switch to uid {uid}: {e}"));
                        // Half-dropped privileges must not serve anyone: end the process.
                        crate::log::error("ending session after failed privilege drop");
                        std::process::exit(1);
                    }
                }
                (Mode::Inetd, _) => {
                    fail("no mail uid for this user; refusing to serve mail as root".into());
                    return Err(());
                }
                (Mode::Daemon, _) => {
                    fail("the daemon runs as root; until per-user session processes exist, run it as the mail owner".into());
                    return Err(());
                }
            }
        } else if let Some(uid) = user.uid {
            if uid != euid {
                fail(format!(
                    "user's uid {uid} differs from the server's uid {euid}"
                ));
                return Err(());
            }
        }
        // Files the session creates are private to the user.
        crate::sys::set_umask(0o077);
        match MaildirStore::open(user.mail_root.clone()) {
            Ok(store) => {
                crate::log::info(&format!(
                    "login user={} peer={} method={method}",
                    user.name, self.peer
                ));
                self.store = Some(Box::new(store));
                self.user = Some(user);
                Ok(())
            }
            Err(e) => {
                fail(format!(
                    "cannot open mail store {}: {e}",
                    user.mail_root.display()
                ));
                Err(())
            }
        }
    }
}
