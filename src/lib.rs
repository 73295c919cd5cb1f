//! imap: a memory-safe post office server (imapd, ipop3d).
//!
//! Data path: `net` (inetd stdin/stdout or the mio daemon) feeds bytes to a protocol
//! engine (`imap::Session`, `pop3::Session`) through the contract in `session`; the
//! engine authenticates through `auth` and reads and writes mail only through the
//! `store` interface (Maildir, mbox).

pub mod auth;
pub mod cli;
pub mod config;
pub mod demo;
pub mod imap;
pub mod log;
pub mod net;
pub mod pop3;
pub mod session;
pub mod store;
pub mod sys;
pub mod util;
