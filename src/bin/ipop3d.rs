//! ipop3d: POP3 server on the same mail store as imapd. No arguments: inetd mode on
//! stdin/stdout. `--listen`: the daemon. See `imap::cli` for the options.

fn main() {
    imap::cli::main(&imap::pop3::SERVICE)
}
