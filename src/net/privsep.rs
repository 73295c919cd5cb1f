//! Privilege separation, in one place: the only code that acts on a login an engine
//! accepted (`session::LoggedIn`). A daemon running as root hands the session to a
//! process of the user (`handoff`); a process serving the user here (inetd as root:
//! drop privileges first, for good; a `--user` daemon: check it is the user's) opens
//! the mail store for the engine. Nothing here runs before the password was checked.

use crate::auth::User;
use crate::session::{Mode, Refusal};
use crate::store::{MailLocation, Store};

/// Does a login in this process leave for a process of the user (a daemon running as
/// root never opens mail)?
pub fn hands_off(mode: Mode) -> bool {
    mode == Mode::Daemon && crate::sys::euid() == 0
}

/// Become `user` and open their store; refusals are logged here
/// (`login refused user= peer= reason=`).
pub fn open_here(user: &User, mode: Mode, peer: &str) -> Result<Box<dyn Store>, Refusal> {
    let refuse = |why: String, kind: Refusal| {
        crate::log::error(&format!(
            "login refused user={} peer={peer} reason={why}",
            user.name
        ));
        Err(kind)
    };
    let euid = crate::sys::euid();
    if euid == 0 {
        match (mode, user.uid) {
            (Mode::Inetd, Some(uid)) if uid != 0 => {
                let keep = spool_group(&user.mail);
                let gid = user.gid.unwrap_or(uid);
                // A system account gets its groups; a virtual user its gid only.
                let groups = match crate::sys::passwd_entry(&user.name) {
                    Some(a) if a.uid == uid => crate::sys::groups_of(&user.name, gid),
                    _ => vec![gid],
                };
                if let Err(e) = crate::sys::drop_privileges_keeping(uid, gid, &groups, keep) {
                    let _ = refuse(
                        format!("cannot switch to uid {uid}: {e}"),
                        Refusal::Permanent,
                    );
                    // Half-dropped privileges must not serve anyone: end the process.
                    crate::log::error("ending session after failed privilege drop");
                    std::process::exit(1);
                }
                if let (Some(group), Some(inbox)) = (keep, user.mail.spool_inbox()) {
                    // The group kept is for the spool INBOX's lock only, by name in the
                    // spool directory opened now.
                    if let Err(e) = crate::store::mbox::lock::bind_spool(inbox, group) {
                        crate::log::warning(&format!(
                            "spool of user={} not usable with its group ({e}): INBOX locks \
                             without it",
                            user.name
                        ));
                    }
                }
            }
            (Mode::Inetd, _) => {
                return refuse(
                    "no mail uid for this user; refusing to serve mail as root".into(),
                    Refusal::Permanent,
                );
            }
            (Mode::Daemon, _) => {
                return refuse(
                    "the daemon runs as root; until per-user session processes exist, run it as the mail owner".into(),
                    Refusal::Permanent,
                );
            }
        }
    } else if let Some(uid) = user.uid {
        if uid != euid {
            return refuse(
                format!("user's uid {uid} differs from the server's uid {euid}"),
                Refusal::Permanent,
            );
        }
    }
    // Files the session creates are private to the user.
    crate::sys::set_umask(0o077);
    user.mail.open().or_else(|e| {
        refuse(
            format!("cannot open mail store {}: {e}", user.mail),
            Refusal::Temporary,
        )
    })
}

/// The privileged group to keep for the mbox dot-lock: only when the user's INBOX sits in
/// a spool directory that group owns and may write (Debian's `drwxrwsr-t root:mail`).
fn spool_group(mail: &MailLocation) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let inbox = mail.spool_inbox()?;
    let group = crate::config::MBOX_PRIVILEGED_GROUP;
    if group.is_empty() {
        return None;
    }
    let gid = crate::sys::group_gid(group)?;
    let dir = std::fs::metadata(inbox.parent()?).ok()?;
    (dir.gid() == gid && dir.mode() & 0o020 != 0).then_some(gid)
}
