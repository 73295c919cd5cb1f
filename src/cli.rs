//! The command line both servers share: no arguments is inetd mode on stdin/stdout,
//! `--listen` is the daemon. Everything else is compile-time configuration
//! (src/config.rs).

use crate::net;
use crate::session::Service;
use crate::{config, log};
use std::net::SocketAddr;
use std::path::PathBuf;

fn usage(name: &str) -> String {
    format!(
        "usage: {name:<8}                      serve one connection on stdin/stdout (inetd, xinetd, ssh)
       {name} --listen ADDR:PORT ...  daemon: serve connections on these addresses
       {name} --tls-listen ADDR:PORT   daemon: TLS from the first byte (imaps 993, pop3s 995)
options:
       --users FILE        virtual users (Dovecot passwd-file); default from the build
       --user NAME         daemon: run as this account after binding the ports
       --log-socket PATH   syslog socket; default from the build
       --cert FILE --key FILE  TLS certificate chain and key (PEM); default from the build
       --tls               inetd: the connection is TLS from the start (imaps, pop3s;
                           also implied by local port 993 or 995)
       --demo              daemon with a demo account and sample mail: IMAP on
                           127.0.0.1:1143, POP3 on 127.0.0.1:1110 (--listen IMAP --listen POP3)
       --settings          print the compile-time settings
       --version"
    )
}

pub fn main(service: &'static Service) -> ! {
    let name = service.name;
    let mut listen: Vec<SocketAddr> = Vec::new();
    let mut tls_listen: Vec<SocketAddr> = Vec::new();
    let mut users = PathBuf::from(config::USERS_FILE);
    let mut run_as: Option<String> = None;
    let mut log_socket = config::LOG_SOCKET.to_string();
    let mut demo = false;
    let mut handoff: Option<String> = None;
    let mut cert = PathBuf::from(config::TLS_CERT_FILE);
    let mut key = PathBuf::from(config::TLS_KEY_FILE);
    let mut implicit_tls = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |flag: &str| {
            args.next().unwrap_or_else(|| {
                eprintln!("{name}: {flag} needs a value\n{}", usage(name));
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
                            "{name}: --listen wants ADDR:PORT (e.g. 127.0.0.1:{0} or [::1]:{0}), not {v:?}",
                            service.demo_port
                        );
                        std::process::exit(2);
                    }
                }
            }
            "--tls-listen" => {
                let v = value("--tls-listen");
                match v.parse() {
                    Ok(addr) => tls_listen.push(addr),
                    Err(_) => {
                        eprintln!("{name}: --tls-listen wants ADDR:PORT, not {v:?}");
                        std::process::exit(2);
                    }
                }
            }
            "--users" => users = PathBuf::from(value("--users")),
            "--user" => run_as = Some(value("--user")),
            "--log-socket" => log_socket = value("--log-socket"),
            "--demo" => demo = true,
            "--cert" => cert = PathBuf::from(value("--cert")),
            "--key" => key = PathBuf::from(value("--key")),
            "--tls" => implicit_tls = true,
            // Internal: a session the root daemon hands to a process of the user.
            "--handoff" => handoff = Some(value("--handoff")),
            "--settings" => {
                // `imapd --settings | head` closes the pipe early: that is no error.
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                for (k, v) in config::all() {
                    if writeln!(out, "{k}={v}").is_err() {
                        break;
                    }
                }
                std::process::exit(0);
            }
            "--version" => {
                println!("{name} {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            "-h" | "--help" => {
                println!("{}", usage(name));
                std::process::exit(0);
            }
            _ => {
                eprintln!("{name}: unknown argument {a:?}\n{}", usage(name));
                std::process::exit(2);
            }
        }
    }
    net::install_panic_hook();
    if let Some(proto) = handoff {
        let service = match proto.as_str() {
            "imapd" => &crate::imap::SERVICE,
            "ipop3d" => &crate::pop3::SERVICE,
            _ => std::process::exit(2),
        };
        log::init(service.log_ident, &log_socket, false);
        std::process::exit(net::handoff::serve(service, users));
    }
    if demo {
        log::init(service.log_ident, &log_socket, true);
        std::process::exit(crate::demo::run(listen, run_as));
    }
    if listen.is_empty() && tls_listen.is_empty() {
        // inetd connects stderr to the client: log to syslog only.
        log::init(service.log_ident, &log_socket, false);
        // The key is read now, as root, before a login drops privileges.
        if crate::sys::peer_of_fd(0).is_some() {
            net::tls::init(&cert, &key);
        }
        std::process::exit(net::inetd::serve(service, users, implicit_tls));
    }
    log::init(service.log_ident, &log_socket, true);
    // The key is read as root, before --user.
    net::tls::init(&cert, &key);
    let addrs: Vec<_> = listen
        .iter()
        .map(|a| (*a, service, false))
        .chain(tls_listen.iter().map(|a| (*a, service, true)))
        .collect();
    let daemon = match net::daemon::bind(&addrs, users) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{name}: cannot listen on {listen:?}: {e}");
            std::process::exit(1);
        }
    };
    if let Some(account) = run_as {
        if let Err(e) = crate::auth::become_account(&account) {
            eprintln!("{name}: cannot run as {account}: {e}");
            std::process::exit(1);
        }
    }
    log::info(&format!("listening on {:?}", daemon.local_addrs()));
    if let Err(e) = daemon.run() {
        log::error(&format!("event loop failed: {e}"));
        std::process::exit(1);
    }
    std::process::exit(0)
}
