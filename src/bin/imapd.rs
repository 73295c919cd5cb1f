//! imapd: IMAP4rev1 server. No arguments: inetd mode on stdin/stdout. `--listen`:
//! the daemon. See `imap::cli` for the options.

fn main() {
    imap::cli::main(&imap::imap::SERVICE)
}
