//! Who the client is: virtual users from a Dovecot-format passwd-file today; system
//! accounts and PAM come with their own issue and plug in beside `passwd_file`.

pub mod held_reply;
#[cfg(feature = "pam")]
pub mod pam;
pub mod passwd_file;
pub mod sasl;
pub mod system;

use std::path::Path;

/// An authenticated mail user: who to run as and where the mail is.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    /// Identity to switch to after login (None: keep the process's own).
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub mail: crate::store::MailLocation,
}

#[derive(Debug)]
pub enum AuthError {
    /// Unknown user or wrong password: the client sees one answer for both.
    Rejected(&'static str),
    /// The user database could not be read; logged, client told to try later.
    Unavailable(String),
}

/// A user name a client may send: printable, no path or field separators.
pub fn valid_user_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .iter()
            .all(|&c| c > b' ' && c < 0x7f && c != b':' && c != b'/' && c != b'%')
        && name[0] != b'.'
        && name[0] != b'-'
}

/// Compare two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() != b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// The account a non-root imapd started from a shell or `ssh host imapd` serves (PREAUTH).
pub fn invoking_user() -> Option<User> {
    let uid = crate::sys::euid();
    let (name, home) = crate::sys::user_of_uid(uid)?;
    let mail = crate::store::location::expand(crate::config::MAIL_LOCATION, &name, Some(&home))?;
    Some(User {
        name,
        uid: None,
        gid: None,
        mail,
    })
}

/// Which protocol asks (PAM service names differ).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Imap,
    Pop3,
}

/// Spend on a login that cannot succeed (unknown user, locked, expired or system account)
/// the work of checking a real password: a hash of the system's default method and
/// cost, made once. With the failure delay counted from the start of the check
/// (held_reply.rs), an unknown name and a wrong password cost the same time.
pub fn equalise(password: &[u8]) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash = DUMMY.get_or_init(|| {
        crate::sys::default_setting()
            .and_then(|setting| crate::sys::crypt(b"no password matches this", &setting))
            .unwrap_or_else(|| "$6$rounds=5000$timingequaliser$".to_string())
    });
    let _ = crate::sys::crypt(password, hash);
}

/// The users file first (virtual users, and overrides of system ones), then, if the
/// name is not there, system accounts.
pub fn authenticate(
    users_file: &Path,
    user: &[u8],
    password: &[u8],
    protocol: Protocol,
) -> Result<User, AuthError> {
    match passwd_file::authenticate(users_file, user, password) {
        Err(AuthError::Rejected("unknown user")) if crate::config::SYSTEM_ACCOUNTS => {
            system::authenticate(user, password, protocol)
        }
        Err(AuthError::Rejected("unknown user")) => {
            equalise(password);
            Err(AuthError::Rejected("unknown user"))
        }
        other => other,
    }
}

/// Can APOP work at all here (enabled, and some secret kept in the clear)?
pub fn apop_available(users_file: &Path) -> bool {
    crate::config::POP3_APOP && passwd_file::has_plaintext_secret(users_file)
}

pub fn authenticate_apop(
    users_file: &Path,
    user: &[u8],
    challenge: &str,
    digest: &[u8],
) -> Result<User, AuthError> {
    passwd_file::authenticate_apop(users_file, user, challenge, digest)
}

/// Switch the whole process to a system account (daemon `--user`, the demo as root).
pub fn become_account(name: &str) -> std::io::Result<()> {
    let (uid, gid, _) = crate::sys::lookup_user(name)
        .ok_or_else(|| std::io::Error::other(format!("no such account {name:?}")))?;
    if crate::sys::euid() == uid {
        return Ok(());
    }
    crate::sys::drop_privileges(uid, gid)
}
