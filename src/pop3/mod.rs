//! POP3 (RFC 1939, with RFC 2449 CAPA and response codes, RFC 5034 SASL): the protocol
//! engine of ipop3d. Like the IMAP engine it never touches a socket, and it reaches
//! mail only through the store interface, so POP3 and IMAP share one mail store.
//!
//! session.rs   framing, states, the steps drivers call
//! parser.rs    the command grammar
//! auth.rs      the AUTHORIZATION state: USER/PASS, APOP, AUTH PLAIN, the lock
//! commands.rs  the TRANSACTION state: STAT, LIST, RETR, DELE, RSET, TOP, UIDL
//! maildrop.rs  the numbered, locked INBOX and the UPDATE at QUIT
//! transfer.rs  RETR/TOP output: CRLF lines and dot-stuffing, streamed
//! uidl.rs      UIDL strings from UIDVALIDITY and UID

mod auth;
mod commands;
pub mod lock;
pub mod maildrop;
pub mod parser;
pub mod session;
pub mod transfer;
pub mod uidl;

pub use session::{SERVICE, Session};
