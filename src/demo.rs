//! `imapd --demo` (or `ipop3d --demo`): one daemon on loopback serving IMAP and POP3
//! with a demo account (demo / demo) and a few sample messages, so a newcomer can try
//! `curl` or telnet at once. The mail lives in a fresh directory under the system's
//! temporary directory.

use crate::session::Service;
use crate::store::maildir::filename;
use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

const SAMPLES: &[(&str, &str, &str)] = &[
    (
        "",
        "new",
        "From: Postmaster <postmaster@example.org>\nTo: Demo User <demo@example.org>\nSubject: Welcome to imapd\nDate: Mon, 23 Nov 2026 09:00:00 +0000\nMessage-ID: <welcome@example.org>\n\nThis mailbox is served by imapd, a memory-safe IMAP server.\nTry: curl imap://127.0.0.1:1143/INBOX -u demo:demo -X 'FETCH 1:* (FLAGS ENVELOPE)'\n",
    ),
    (
        "",
        "new",
        "From: =?UTF-8?B?Sm9zw6kgR2FyY8OtYQ==?= <jose@example.net>\nTo: demo@example.org\nSubject: =?UTF-8?Q?Caf=C3=A9_on_Friday=3F?=\nDate: Mon, 23 Nov 2026 10:15:00 +0100\nMessage-ID: <cafe@example.net>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nShall we meet at the caf=C3=A9 on Friday? Bring the r=C3=A9sum=C3=A9.\n",
    ),
    (
        "",
        "cur",
        "From: Alice <alice@example.com>\nTo: demo@example.org\nSubject: Quarterly report\nDate: Fri, 20 Nov 2026 16:30:00 -0500\nMessage-ID: <report@example.com>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"=-b1\"\n\n--=-b1\nContent-Type: text/plain; charset=us-ascii\n\nThe figures are attached.\n--=-b1\nContent-Type: text/csv; name=\"q3.csv\"\nContent-Disposition: attachment; filename=\"q3.csv\"\nContent-Transfer-Encoding: base64\n\ncXVhcnRlcixyZXZlbnVlCjMsMTIzNDUK\n--=-b1--\n",
    ),
    (
        ".Sent",
        "cur",
        "From: Demo User <demo@example.org>\nTo: Alice <alice@example.com>\nSubject: Re: Quarterly report\nDate: Sat, 21 Nov 2026 08:00:00 +0000\nIn-Reply-To: <report@example.com>\nMessage-ID: <re-report@example.org>\n\nThanks, Alice.\n",
    ),
    (
        ".Work.Projects",
        "cur",
        "From: Bob <bob@example.com>\nTo: demo@example.org\nSubject: Project kickoff\nDate: Thu, 19 Nov 2026 11:00:00 +0000\nMessage-ID: <kickoff@example.com>\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=alt\n\n--alt\nContent-Type: text/plain\n\nKickoff is on Monday.\n--alt\nContent-Type: text/html\n\n<p>Kickoff is on <b>Monday</b>.</p>\n--alt--\n",
    ),
];

fn write_demo(dir: &Path) -> io::Result<PathBuf> {
    let mail = dir.join("Maildir");
    for folder in ["", ".Sent", ".Work", ".Work.Projects"] {
        let f = mail.join(folder);
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir_all(f.join(sub))?;
        }
        if !folder.is_empty() {
            fs::write(f.join("maildirfolder"), b"")?;
        }
    }
    let host = crate::sys::hostname();
    for (folder, sub, text) in SAMPLES {
        let base = filename::unique(&host);
        let name = if *sub == "cur" {
            format!("{base}:2,S")
        } else {
            base
        };
        fs::write(mail.join(folder).join(sub).join(name), text)?;
    }
    fs::write(mail.join("subscriptions"), b"INBOX\nSent\nWork.Projects\n")?;
    let users = dir.join("passwd");
    fs::write(
        &users,
        format!(
            "demo:{{PLAIN}}demo::::{}::userdb_mail=maildir:{}\n",
            dir.display(),
            mail.display()
        ),
    )?;
    Ok(users)
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    crate::sys::chown(path, uid, gid)?;
    if path.is_dir() {
        for e in fs::read_dir(path)? {
            chown_tree(&e?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// `listen`: the IMAP address, then the POP3 address (defaults 127.0.0.1:1143, :1110).
pub fn run(listen: Vec<SocketAddr>, run_as: Option<String>) -> i32 {
    let services: [&'static Service; 2] = [&crate::imap::SERVICE, &crate::pop3::SERVICE];
    let addrs: Vec<(SocketAddr, &'static Service, bool)> = services
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let default = SocketAddr::from(([127, 0, 0, 1], s.demo_port));
            (listen.get(i).copied().unwrap_or(default), *s, false)
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("imapd-demo-{}", std::process::id()));
    let users = match write_demo(&dir) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("imapd --demo: cannot create {}: {e}", dir.display());
            return 1;
        }
    };
    // A root daemon serves no mail: run the demo as `nobody` (or --user) instead.
    let account = run_as.or_else(|| (crate::sys::euid() == 0).then(|| "nobody".to_string()));
    if let Some(name) = &account {
        if let Some((uid, gid, _)) = crate::sys::lookup_user(name) {
            if let Err(e) = chown_tree(&dir, uid, gid) {
                eprintln!("imapd --demo: cannot give {} to {name}: {e}", dir.display());
                return 1;
            }
        }
    }
    let daemon = match crate::net::daemon::bind(&addrs, users) {
        Ok(d) => d,
        Err(e) => {
            let listen: Vec<_> = addrs.iter().map(|(a, _, _)| a).collect();
            eprintln!("imapd --demo: cannot listen on {listen:?}: {e}");
            return 1;
        }
    };
    if let Some(name) = &account {
        if let Err(e) = crate::auth::become_account(name) {
            eprintln!("imapd --demo: cannot run as {name}: {e}");
            return 1;
        }
    }
    let bound = daemon.local_addrs();
    let (addr, pop) = (bound[0], bound[1]);
    println!("imapd demo: mail in {}", dir.display());
    println!("  account demo, password demo; IMAP on {addr}, POP3 on {pop}");
    println!("  try: curl imap://{addr}/INBOX -u demo:demo -X 'FETCH 1:* (FLAGS ENVELOPE)'");
    println!("       curl 'imap://{addr}/INBOX;UID=1' -u demo:demo");
    println!("       curl pop3://{pop}/ -u demo:demo           (list; pop3://{pop}/1 reads one)");
    println!(
        "       telnet {} {}   then: a LOGIN demo demo",
        addr.ip(),
        addr.port()
    );
    if let Err(e) = daemon.run() {
        eprintln!("imapd --demo: {e}");
        return 1;
    }
    0
}
