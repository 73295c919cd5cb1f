//! System accounts: names and homes from NSS (getpwnam_r), password hashes from
//! /etc/shadow (getspnam_r), verified by the system's crypt(3) like virtual users, so
//! yescrypt (`$y$`, Debian's default), SHA-512 and the rest verify. Locked (`!`, `*`)
//! and expired accounts, and accounts below FIRST_VALID_UID (root, daemons), are
//! refused with the same answer as a wrong password.

#[cfg(not(feature = "pam"))]
use super::passwd_file;
use super::{AuthError, Protocol, User, valid_user_name};

/// Days since the epoch (shadow's unit).
#[cfg(not(feature = "pam"))]
fn today() -> i64 {
    crate::util::date::now().div_euclid(86400)
}

pub fn authenticate(user: &[u8], password: &[u8], protocol: Protocol) -> Result<User, AuthError> {
    // Every refusal costs one password hash, as a wrong password does.
    if !valid_user_name(user) {
        super::equalise(password);
        return Err(AuthError::Rejected("invalid user name"));
    }
    let name = String::from_utf8_lossy(user).into_owned();
    let Some(acct) = crate::sys::account(&name) else {
        super::equalise(password);
        return Err(AuthError::Rejected("unknown user"));
    };
    if acct.uid < crate::config::FIRST_VALID_UID {
        super::equalise(password);
        return Err(AuthError::Rejected("system account below FIRST_VALID_UID"));
    }
    check_password(&name, &acct, password, protocol)?;
    user_of(name, &acct)
}

/// The built-in check: the shadow hash by crypt(3), locked and expired refused.
#[cfg(not(feature = "pam"))]
fn check_password(
    _name: &str,
    acct: &crate::sys::Account,
    password: &[u8],
    _protocol: Protocol,
) -> Result<(), AuthError> {
    let hash = match &acct.shadow {
        Some(s) => s.hash.clone(),
        // No shadow entry: the hash may be in passwd itself (old systems, NIS).
        None => acct.passwd_hash.clone(),
    };
    if hash.starts_with('!') || hash.starts_with('*') || hash.is_empty() || hash == "x" {
        super::equalise(password);
        return Err(AuthError::Rejected("account locked or without password"));
    }
    // The hash is checked even for an expired account: the same work either way.
    let matches = passwd_file::verify(&hash, password);
    if let Some(s) = &acct.shadow {
        // sp_expire: the day the account stops working (-1: never).
        if s.expire >= 0 && today() >= s.expire {
            return Err(AuthError::Rejected("account expired"));
        }
    }
    if !matches {
        return Err(AuthError::Rejected("wrong password"));
    }
    Ok(())
}

/// PAM decides (the site's modules: unix, LDAP, SSSD...), expiry and locks included.
#[cfg(feature = "pam")]
fn check_password(
    name: &str,
    _acct: &crate::sys::Account,
    password: &[u8],
    protocol: Protocol,
) -> Result<(), AuthError> {
    let service = match protocol {
        Protocol::Imap => crate::config::PAM_SERVICE_IMAP,
        Protocol::Pop3 => crate::config::PAM_SERVICE_POP3,
    };
    super::pam::check(service, name, password).map_err(|why| {
        crate::log::info(&format!(
            "PAM refused user={}: {why}",
            crate::log::value(name.as_bytes())
        ));
        AuthError::Rejected("refused by PAM")
    })
}

fn user_of(name: String, acct: &crate::sys::Account) -> Result<User, AuthError> {
    let mail =
        crate::store::location::expand(crate::config::MAIL_LOCATION, &name, Some(&acct.home))
            .ok_or_else(|| AuthError::Unavailable(format!("no usable mail location for {name}")))?;
    Ok(User {
        name,
        uid: Some(acct.uid),
        gid: Some(acct.gid),
        mail,
    })
}
