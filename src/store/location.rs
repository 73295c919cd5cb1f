//! Where and in which format a user's mail is: the one place that names Maildir and mbox
//! outside their drivers. A location is read from a user database (Dovecot's syntax,
//! `expand`), written and read back in its canonical form (`Display`, `parse`: logs,
//! and the root daemon's hand-off to the user's process), and opened as a `Store`.

use super::Store;
use super::maildir::MaildirStore;
use super::mbox::MboxStore;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MailLocation {
    /// A Maildir++ root (INBOX), folders as `.Name` inside it.
    Maildir(PathBuf),
    /// INBOX an mbox file (the spool), folders mbox files under a directory.
    Mbox { inbox: PathBuf, folders: PathBuf },
}

impl MailLocation {
    /// Open the store (after the session has become the mail user).
    pub fn open(&self) -> std::io::Result<Box<dyn Store>> {
        Ok(match self {
            MailLocation::Maildir(root) => Box::new(MaildirStore::open(root.clone())?),
            MailLocation::Mbox { inbox, folders } => {
                Box::new(MboxStore::open(inbox.clone(), folders.clone())?)
            }
        })
    }

    /// The INBOX an MTA delivers into a shared spool directory (mbox), whose lock may
    /// need the spool's group.
    pub fn spool_inbox(&self) -> Option<&Path> {
        match self {
            MailLocation::Mbox { inbox, .. } => Some(inbox),
            MailLocation::Maildir(_) => None,
        }
    }

    /// The canonical form `Display` writes: `maildir:PATH` or `mbox:FOLDERS:INBOX=PATH`,
    /// a `:` inside a path written `::`.
    pub fn parse(text: &str) -> Option<MailLocation> {
        let fields = split_colons(text);
        match fields.as_slice() {
            [kind, path] if kind == "maildir" && path.starts_with('/') => {
                Some(MailLocation::Maildir(path.into()))
            }
            [kind, folders, inbox] if kind == "mbox" && folders.starts_with('/') => {
                let inbox = inbox
                    .strip_prefix("INBOX=")
                    .filter(|p| p.starts_with('/'))?;
                Some(MailLocation::Mbox {
                    inbox: inbox.into(),
                    folders: folders.into(),
                })
            }
            _ => None,
        }
    }
}

impl fmt::Display for MailLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let esc = |p: &Path| p.to_string_lossy().replace(':', "::");
        match self {
            MailLocation::Maildir(p) => write!(f, "maildir:{}", esc(p)),
            MailLocation::Mbox { inbox, folders } => {
                write!(f, "mbox:{}:INBOX={}", esc(folders), esc(inbox))
            }
        }
    }
}

/// Split at single colons; `::` is a colon inside a field.
fn split_colons(text: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != ':' {
            fields.last_mut().expect("one field at least").push(c);
        } else if chars.peek() == Some(&':') {
            chars.next();
            fields.last_mut().expect("one field at least").push(':');
        } else {
            fields.push(String::new());
        }
    }
    fields
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

/// A user database's mail location in Dovecot's syntax, for `user` with `home`: `~/Maildir` or `maildir:PATH` (Maildir),
/// `mbox:FOLDERS[:INBOX=PATH]` (mbox; INBOX defaults to the spool, SPOOL_DIR/USER), or
/// a bare `mbox` (folders in ~/MBOX_FOLDER_DIR). Other `:KEY=VALUE` parameters of
/// Dovecot's are ignored.
pub fn expand(location: &str, user: &str, home: Option<&str>) -> Option<MailLocation> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion() {
        assert_eq!(
            expand("maildir:~/Mail", "alice", Some("/home/alice")),
            Some(MailLocation::Maildir("/home/alice/Mail".into()))
        );
        assert_eq!(
            expand("/var/vmail/%d/%n", "bob@example.org", None).unwrap(),
            MailLocation::Maildir("/var/vmail/example.org/bob".into())
        );
        assert!(expand("~/Maildir", "bob", None).is_none());
        assert!(expand("relative/%u", "bob", None).is_none());
        assert_eq!(
            expand("mbox:~/mail:INBOX=/var/mail/%u", "bob", Some("/home/bob")),
            Some(MailLocation::Mbox {
                inbox: "/var/mail/bob".into(),
                folders: "/home/bob/mail".into()
            })
        );
        assert_eq!(
            expand("mbox", "bob", Some("/home/bob")),
            Some(MailLocation::Mbox {
                inbox: Path::new(crate::config::SPOOL_DIR).join("bob"),
                folders: Path::new("/home/bob").join(crate::config::MBOX_FOLDER_DIR)
            })
        );
    }

    #[test]
    fn canonical_form_round_trips_colons_and_all() {
        for loc in [
            MailLocation::Maildir("/home/a:b/Maildir".into()),
            MailLocation::Maildir("/x".into()),
            MailLocation::Mbox {
                inbox: "/var/mail/bob".into(),
                folders: "/home/bob/mail::x".into(),
            },
        ] {
            assert_eq!(
                MailLocation::parse(&loc.to_string()),
                Some(loc.clone()),
                "{loc}"
            );
        }
        assert_eq!(MailLocation::parse("maildir:relative"), None);
        assert_eq!(MailLocation::parse("mbox:/f:/no-inbox-key"), None);
        assert_eq!(MailLocation::parse("other:/x"), None);
    }
}
