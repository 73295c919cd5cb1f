//! Small helpers shared by the protocol and the store.
pub mod date;
#[cfg(test)]
pub mod fuzz;
pub mod md5;
pub mod mutf7;
