//! Small helpers shared by the protocol and the store.
pub mod date;
pub mod md5;
pub mod mutf7;
