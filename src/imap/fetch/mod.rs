//! FETCH data items (RFC 3501 6.4.5, 7.4.2): message structure, envelope,
//! body structure and BODY[section] extraction.

pub mod bodystructure;
pub mod envelope;
pub mod mime;
pub mod section;
