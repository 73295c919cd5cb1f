//! IMAP4rev1 (RFC 3501): the protocol engine. `Session` takes bytes from any transport
//! and produces bytes for it; it never touches a socket.

pub mod cmd;
pub mod fetch;
pub mod parser;
pub mod registry;
pub mod response;
pub mod search;
pub mod session;
pub mod state;
pub mod wire;

pub use session::{Mode, SERVICE, Session, Step};
