//! Who the client is: virtual users from a Dovecot-format passwd-file today; system
//! accounts and PAM come with their own issue and plug in beside `passwd_file`.

pub mod held_reply;
pub mod login;
#[cfg(feature = "pam")]
pub mod pam;
pub mod passwd_file;
pub mod sasl;
pub mod system;

use std::path::{Path, PathBuf};

/// An authenticated mail user: who to run as and where the mail is.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    /// Identity to switch to after login (None: keep the process's own).
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub mail: MailLocation,
}

/// Where and in which format a user's mail is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MailLocation {
    /// A Maildir++ root (INBOX), folders as `.Name` inside it.
    Maildir(PathBuf),
    /// INBOX an mbox file (the spool), folders mbox files under a directory.
    Mbox { inbox: PathBuf, folders: PathBuf },
}

impl MailLocation {
    pub fn describe(&self) -> String {
        match self {
            MailLocation::Maildir(p) => format!("maildir:{}", p.display()),
            MailLocation::Mbox { inbox, folders } => {
                format!("mbox:{}:INBOX={}", folders.display(), inbox.display())
            }
        }
    }
}

#[derive(Debug)]
pub enum AuthError {
    /// Unknown user or wrong password: the client sees one answer for both.
    Rejected(&'static str),
    /// The user database could not be read; logged, client told to try later.
    Unavailable(String),
}

/// Expand `~`, `%u`, `%n`, `%d`, `%h`, `%%` in one path of a mail location; absolute only.
fn expand_path(loc: &str, user: &str, home: Option<&str>) -> Option<PathBuf> {
    let mut out = String::new();
    let mut chars = loc.chars().peekable();
    if loc.starts_with('~') {
        out.push_str(home.filter(|h| !h.is_empty())?);
        chars.next();
    }
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some('u') => out.push_str(user),
                Some('n') => out.push_str(user.split('@').next().unwrap_or(user)),
                Some('d') => out.push_str(user.split_once('@').map(|x| x.1).unwrap_or("")),
                Some('h') => out.push_str(home?),
                Some('%') => out.push('%'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    let p = PathBuf::from(out);
    p.is_absolute().then_some(p)
}

/// Expand a mail location in Dovecot's syntax: `~/Maildir` or `maildir:PATH` (Maildir),
/// `mbox:FOLDERS[:INBOX=PATH]` (mbox; INBOX defaults to the spool, SPOOL_DIR/USER), or
/// a bare `mbox` (folders in ~/MBOX_FOLDER_DIR). Other `:KEY=VALUE` parameters of
/// Dovecot's are ignored.
pub fn expand_mail_location(
    location: &str,
    user: &str,
    home: Option<&str>,
) -> Option<MailLocation> {
    let mut parts = location.split(':');
    let first = parts.next()?;
    let (kind, path) = match first {
        "maildir" | "mbox" => (first, parts.next()),
        _ => ("maildir", Some(first)),
    };
    let params: Vec<&str> = parts.collect();
    if kind == "maildir" {
        return Some(MailLocation::Maildir(expand_path(path?, user, home)?));
    }
    let folders = match path.filter(|p| !p.is_empty()) {
        Some(p) => expand_path(p, user, home)?,
        None => expand_path(&format!("~/{}", crate::config::MBOX_FOLDER_DIR), user, home)?,
    };
    let inbox = match params.iter().find_map(|p| p.strip_prefix("INBOX=")) {
        Some(p) => expand_path(p, user, home)?,
        None => {
            // The spool file is named after the login name, never a path.
            let name = user.split('@').next().unwrap_or(user);
            if name.contains('/') || name.starts_with('.') {
                return None;
            }
            PathBuf::from(crate::config::SPOOL_DIR).join(name)
        }
    };
    Some(MailLocation::Mbox { inbox, folders })
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
    let mail = expand_mail_location(crate::config::MAIL_LOCATION, &name, Some(&home))?;
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
