//! imapd: IMAP4rev1 server. No arguments: inetd mode on stdin/stdout. `--listen`:
//! the daemon. Everything else is compile-time configuration (src/config.rs).

use imap::{config, log, net};
use std::net::SocketAddr;
use std::path::PathBuf;

const USAGE: &str =
    "usage: imapd                         serve one connection on stdin/stdout (inetd, xinetd, ssh)
       imapd --listen ADDR:PORT ...   daemon: serve connections on these addresses
options:
       --users FILE        virtual users (Dovecot passwd-file); default from the build
       --user NAME         daemon: run as this account after binding the ports
       --log-socket PATH   syslog socket; default from the build
       --demo              daemon on 127.0.0.1:1143 with a demo account and sample mail
       --settings          print the compile-time settings
       --version";

fn main() {
    let mut listen: Vec<SocketAddr> = Vec::new();
    let mut users = PathBuf::from(config::USERS_FILE);
    let mut run_as: Option<String> = None;
    let mut log_socket = config::LOG_SOCKET.to_string();
    let mut demo = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next().unwrap_or_else(|| {
                eprintln!("imapd: {name} needs a value\n{USAGE}");
                std::process::exit(2)
            })
        };
        match a.as_str() {
            "--listen" => {
                let v = value("--listen");
                match v.parse() {
                    Ok(addr) => listen.push(addr),
                    Err(_) => {
                        eprintln!(
                            "imapd: --listen wants ADDR:PORT (e.g. 127.0.0.1:143 or [::1]:143), not {v:?}"
                        );
                        std::process::exit(2);
                    }
                }
            }
            "--users" => users = PathBuf::from(value("--users")),
            "--user" => run_as = Some(value("--user")),
            "--log-socket" => log_socket = value("--log-socket"),
            "--demo" => demo = true,
            "--settings" => {
                for (k, v) in config::all() {
                    println!("{k}={v}");
                }
                return;
            }
            "--version" => {
                println!("imapd {}", env!("CARGO_PKG_VERSION"));
                return;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            _ => {
                eprintln!("imapd: unknown argument {a:?}\n{USAGE}");
                std::process::exit(2);
            }
        }
    }
    net::install_panic_hook();
    if demo {
        log::init(config::LOG_IDENT, &log_socket, true);
        std::process::exit(imap::demo::run(listen, run_as));
    }
    if listen.is_empty() {
        log::init(config::LOG_IDENT, &log_socket, false);
        std::process::exit(net::inetd::serve(users));
    }
    log::init(config::LOG_IDENT, &log_socket, true);
    let daemon = match net::daemon::bind(&listen, users) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("imapd: cannot listen on {listen:?}: {e}");
            std::process::exit(1);
        }
    };
    if let Some(name) = run_as {
        if let Err(e) = imap::auth::become_account(&name) {
            eprintln!("imapd: cannot run as {name}: {e}");
            std::process::exit(1);
        }
    }
    log::info(&format!("listening on {:?}", daemon.local_addrs()));
    if let Err(e) = daemon.run() {
        log::error(&format!("event loop failed: {e}"));
        std::process::exit(1);
    }
}
