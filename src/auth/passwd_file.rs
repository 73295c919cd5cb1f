//! Dovecot passwd-file: `user:{SCHEME}hash:uid:gid:gecos:home:shell:extra fields`.
//! Schemes: {PLAIN}/{CLEARTEXT} for tests and demos; {CRYPT}, {SHA512-CRYPT},
//! {SHA256-CRYPT}, {MD5-CRYPT}, {BLF-CRYPT} and unprefixed hashes go to the system's
//! crypt(3), so yescrypt ($y$), $6$, $5$, $1$ and $2b$ all verify.
//! Extra fields: `userdb_mail=` (or `mail=`) overrides the mail location.

use super::{AuthError, User, constant_time_eq, valid_user_name};
use crate::store::location;
use std::path::Path;

/// One line of the file.
#[derive(Debug, Clone)]
pub struct Entry {
    pub user: String,
    pub password: String,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub home: Option<String>,
    pub mail: Option<String>,
}

pub fn parse_line(line: &str) -> Option<Entry> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let f: Vec<&str> = line.splitn(8, ':').collect();
    let get = |i: usize| f.get(i).copied().filter(|s| !s.is_empty());
    let mut mail = None;
    if let Some(extra) = get(7) {
        for kv in extra.split_whitespace() {
            if let Some(v) = kv
                .strip_prefix("userdb_mail=")
                .or_else(|| kv.strip_prefix("mail="))
            {
                mail = Some(v.to_string());
            }
        }
    }
    Some(Entry {
        user: f[0].to_string(),
        password: get(1).unwrap_or("").to_string(),
        uid: get(2).and_then(|s| s.parse().ok()),
        gid: get(3).and_then(|s| s.parse().ok()),
        home: get(5).map(str::to_string),
        mail,
    })
}

/// A users file as last read, by name, kept until the file changes (its inode, size,
/// mtime or ctime): a 200,000-line file is parsed once, not once per connection and login.
struct Parsed {
    path: std::path::PathBuf,
    stamp: (u64, u64, u64, i64, i64, i64, i64),
    by_name: std::collections::HashMap<String, Entry>,
    plaintext: bool,
}

static CACHE: std::sync::Mutex<Option<std::sync::Arc<Parsed>>> = std::sync::Mutex::new(None);

fn stamp_of(m: &std::fs::Metadata) -> (u64, u64, u64, i64, i64, i64, i64) {
    use std::os::unix::fs::MetadataExt;
    let (c, cn) = (m.ctime(), m.ctime_nsec());
    (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec(), c, cn)
}

/// The file parsed, from the cache when it has not changed since (one stat).
fn parsed(path: &Path) -> std::io::Result<std::sync::Arc<Parsed>> {
    let stamp = stamp_of(&std::fs::metadata(path)?);
    {
        let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cache
            .as_ref()
            .filter(|p| p.path == path && p.stamp == stamp)
        {
            return Ok(p.clone());
        }
    }
    let file = std::fs::File::open(path)?;
    // The stamp of what is read (a change during the read shows as a newer stamp).
    let stamp = stamp_of(&file.metadata()?);
    let text = std::io::read_to_string(file)?;
    let mut by_name = std::collections::HashMap::new();
    let mut plaintext_seen = false;
    for e in text.lines().filter_map(parse_line) {
        plaintext_seen |= plaintext(&e.password).is_some();
        // The first line of a name counts, as the file was always searched.
        by_name.entry(e.user.clone()).or_insert(e);
    }
    let p = std::sync::Arc::new(Parsed {
        path: path.to_path_buf(),
        stamp,
        by_name,
        plaintext: plaintext_seen,
    });
    *CACHE.lock().unwrap_or_else(|e| e.into_inner()) = Some(p.clone());
    Ok(p)
}

pub fn lookup(path: &Path, user: &str) -> Result<Option<Entry>, AuthError> {
    let file = match parsed(path) {
        Ok(t) => t,
        // No users file at the built-in path: a site with system accounts only. A file
        // named with --users that is missing is an error (being edited, mistyped).
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && crate::config::SYSTEM_ACCOUNTS
                && path == Path::new(crate::config::USERS_FILE) =>
        {
            return Ok(None);
        }
        Err(e) => {
            return Err(AuthError::Unavailable(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    Ok(file.by_name.get(user).cloned())
}

/// Does `password` match the stored `{SCHEME}hash`?
pub fn verify(stored: &str, password: &[u8]) -> bool {
    let (scheme, hash) = match stored.strip_prefix('{').and_then(|s| s.split_once('}')) {
        Some((s, h)) => (s.to_ascii_uppercase(), h),
        None => ("CRYPT".to_string(), stored),
    };
    match scheme.as_str() {
        "PLAIN" | "CLEARTEXT" => !hash.is_empty() && constant_time_eq(hash.as_bytes(), password),
        "CRYPT" | "SHA512-CRYPT" | "SHA256-CRYPT" | "MD5-CRYPT" | "BLF-CRYPT" | "DES-CRYPT" => {
            // Locked or empty hashes (`!`, `*`, ``) never verify.
            if hash.is_empty() || hash.starts_with('!') || hash.starts_with('*') {
                return false;
            }
            match crate::sys::crypt(password, hash) {
                Some(computed) => constant_time_eq(computed.as_bytes(), hash.as_bytes()),
                None => false,
            }
        }
        _ => false,
    }
}

pub fn authenticate(path: &Path, user: &[u8], password: &[u8]) -> Result<User, AuthError> {
    if !valid_user_name(user) {
        super::equalise(password);
        return Err(AuthError::Rejected("invalid user name"));
    }
    let name = String::from_utf8_lossy(user).into_owned();
    let entry = lookup(path, &name)?;
    let Some(entry) = entry else {
        // Unknown here; system accounts (if enabled) are asked next, and equalise.
        return Err(AuthError::Rejected("unknown user"));
    };
    if !verify(&entry.password, password) {
        return Err(AuthError::Rejected("wrong password"));
    }
    user_of(entry)
}

/// The secret of a `{PLAIN}`/`{CLEARTEXT}` entry: what APOP needs the server to hold.
fn plaintext(stored: &str) -> Option<&str> {
    let (scheme, secret) = stored.strip_prefix('{')?.split_once('}')?;
    (matches!(scheme.to_ascii_uppercase().as_str(), "PLAIN" | "CLEARTEXT") && !secret.is_empty())
        .then_some(secret)
}

/// Does the file hold any secret APOP could check? (Hashed passwords can't serve APOP.)
pub fn has_plaintext_secret(path: &Path) -> bool {
    parsed(path).is_ok_and(|p| p.plaintext)
}

/// APOP (RFC 1939 7): `digest` must be the hex MD5 of the greeting's `challenge`
/// followed by the user's secret.
pub fn authenticate_apop(
    path: &Path,
    user: &[u8],
    challenge: &str,
    digest: &[u8],
) -> Result<User, AuthError> {
    if !valid_user_name(user) {
        return Err(AuthError::Rejected("invalid user name"));
    }
    let name = String::from_utf8_lossy(user).into_owned();
    let Some(entry) = lookup(path, &name)? else {
        return Err(AuthError::Rejected("unknown user"));
    };
    let Some(secret) = plaintext(&entry.password) else {
        return Err(AuthError::Rejected("APOP needs a plaintext secret"));
    };
    let want = crate::util::md5::hex_digest(format!("{challenge}{secret}").as_bytes());
    if !constant_time_eq(want.as_bytes(), &digest.to_ascii_lowercase()) {
        return Err(AuthError::Rejected("wrong APOP digest"));
    }
    user_of(entry)
}

fn user_of(entry: Entry) -> Result<User, AuthError> {
    let location = entry
        .mail
        .as_deref()
        .unwrap_or(crate::config::MAIL_LOCATION);
    let mail = location::expand(location, &entry.user, entry.home.as_deref()).ok_or_else(|| {
        AuthError::Unavailable(format!("no usable mail location for {}", entry.user))
    })?;
    Ok(User {
        name: entry.user,
        uid: entry.uid,
        gid: entry.gid,
        mail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dovecot_lines() {
        let e =
            parse_line("alice:{PLAIN}secret:1000:1000::/home/alice::userdb_mail=maildir:~/Mail")
                .unwrap();
        assert_eq!(e.user, "alice");
        assert_eq!((e.uid, e.gid), (Some(1000), Some(1000)));
        assert_eq!(e.mail.as_deref(), Some("maildir:~/Mail"));
        assert!(parse_line("# comment").is_none());
        assert!(verify("{PLAIN}secret", b"secret"));
        assert!(!verify("{PLAIN}secret", b"Secret"));
        assert!(!verify("{PLAIN}", b""));
        assert!(!verify("{CRYPT}!locked", b"x"));
        assert!(!verify("{MD4}abc", b"abc"));
    }

    #[test]
    fn sha512_crypt_verifies() {
        let h = "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1";
        assert!(verify(&format!("{{SHA512-CRYPT}}{h}"), b"Hello world!"));
        assert!(verify(h, b"Hello world!"));
        assert!(!verify(h, b"Hello world"));
    }
}
