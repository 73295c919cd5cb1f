//! SASL PLAIN (RFC 4616), shared by IMAP AUTHENTICATE and POP3 AUTH: the client's
//! base64 response decodes to `[authzid] NUL authcid NUL passwd`.

pub enum PlainError {
    /// Not base64 at all.
    Base64,
    /// Not three NUL-separated fields.
    Malformed,
    /// Asked to act as another user (authzid differs from authcid): not supported.
    Authorization,
}

impl PlainError {
    pub fn text(&self) -> &'static str {
        match self {
            PlainError::Base64 => "Invalid base64 in the authentication response",
            PlainError::Malformed => "Malformed PLAIN response",
            PlainError::Authorization => "Logging in as another user is not supported",
        }
    }
}

/// (user, password) from a PLAIN response line; `=` stands for an empty response.
pub fn decode_plain(line: &[u8]) -> Result<(Vec<u8>, Vec<u8>), PlainError> {
    let b64 = if line == b"=" { &b""[..] } else { line };
    if !b64
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='))
    {
        return Err(PlainError::Base64);
    }
    let decoded = crate::util::base64::decode(b64);
    let parts: Vec<&[u8]> = decoded.split(|&c| c == 0).collect();
    if parts.len() != 3 {
        return Err(PlainError::Malformed);
    }
    if !parts[0].is_empty() && parts[0] != parts[1] {
        return Err(PlainError::Authorization);
    }
    Ok((parts[1].to_vec(), parts[2].to_vec()))
}
