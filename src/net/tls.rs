//! TLS with rustls (ring provider: builds for x86_64, aarch64 and s390x): TLS 1.2 and
//! 1.3 only, ALPN `imap`/`pop3`. One certificate and key for the process, from
//! TLS_CERT_FILE/TLS_KEY_FILE or `--cert`/`--key`; a daemon loads them again on SIGHUP
//! (sessions already up keep theirs). A missing or unreadable pair is one log line and
//! no STARTTLS/STLS offered, never a crash.
//!
//! `Tls` is the transport both drivers put between the socket and a protocol engine:
//! ciphertext in (`read_tls`), plaintext out to the session, the session's output in,
//! ciphertext out (`write_tls`).

use rustls::ServerConnection;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

static PATHS: RwLock<Option<(PathBuf, PathBuf)>> = RwLock::new(None);
static CONFIG: RwLock<Option<Arc<rustls::ServerConfig>>> = RwLock::new(None);

/// Load (or load again) the certificate and key; logs and keeps no TLS on failure.
pub fn init(cert: &Path, key: &Path) {
    *PATHS.write().unwrap_or_else(|e| e.into_inner()) = Some((cert.into(), key.into()));
    reload(false);
}

/// Read the configured files again (SIGHUP). Sessions already up keep their keys.
pub fn reload(announce: bool) {
    let paths = PATHS.read().unwrap_or_else(|e| e.into_inner()).clone();
    let Some((cert, key)) = paths else { return };
    let loaded = match load(&cert, &key) {
        Ok(c) => {
            if announce {
                crate::log::info(&format!("TLS certificate loaded from {}", cert.display()));
            }
            Some(Arc::new(c))
        }
        Err(e) => {
            let keeping = announce && available();
            crate::log::error(&format!(
                "TLS unavailable: certificate {} / key {}: {e}{}",
                cert.display(),
                key.display(),
                if keeping {
                    "; keeping the certificate loaded before"
                } else {
                    ""
                }
            ));
            if keeping {
                return;
            }
            None
        }
    };
    *CONFIG.write().unwrap_or_else(|e| e.into_inner()) = loaded;
}

fn load(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| e.to_string())?
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no certificate in the file".into());
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| e.to_string())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"imap".to_vec(), b"pop3".to_vec()];
    Ok(config)
}

/// Is a certificate loaded (may STARTTLS/STLS be offered, implicit TLS served)?
pub fn available() -> bool {
    CONFIG.read().unwrap_or_else(|e| e.into_inner()).is_some()
}

/// One TLS connection, server side.
pub struct Tls {
    conn: ServerConnection,
    /// The handshake is done (logged once).
    established: bool,
}

impl Tls {
    pub fn new() -> Option<Tls> {
        let config = CONFIG.read().unwrap_or_else(|e| e.into_inner()).clone()?;
        ServerConnection::new(config).ok().map(|conn| Tls {
            conn,
            established: false,
        })
    }

    /// A connection that is TLS from its first byte (implicit TLS): None when no
    /// certificate is loaded, after the log line; the caller drops the connection.
    pub fn implicit(peer: &str) -> Option<Tls> {
        let t = Tls::new();
        if t.is_none() {
            crate::log::error(&format!(
                "TLS connection refused peer={peer}: no certificate loaded"
            ));
        }
        t
    }

    /// Ciphertext that arrived; returns the plaintext it carried. Err: the peer is not
    /// speaking TLS, or the handshake failed (the connection must end).
    pub fn receive(&mut self, mut data: &[u8], plain: &mut Vec<u8>) -> Result<(), String> {
        let mut buf = [0u8; 16384];
        while !data.is_empty() {
            self.conn.read_tls(&mut data).map_err(|e| e.to_string())?;
            self.conn.process_new_packets().map_err(|e| e.to_string())?;
            // Take the plaintext out record by record: rustls holds only so much.
            loop {
                match self.conn.reader().read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => plain.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e.to_string()),
                }
            }
        }
        Ok(())
    }

    /// True once, when the handshake has completed (for the log line).
    pub fn just_established(&mut self) -> bool {
        if !self.established && !self.conn.is_handshaking() {
            self.established = true;
            return true;
        }
        false
    }

    /// Protocol version and cipher suite, for the log.
    pub fn describe(&self) -> String {
        format!(
            "{:?} {:?}",
            self.conn.protocol_version(),
            self.conn.negotiated_cipher_suite().map(|s| s.suite())
        )
    }

    /// Plaintext to send: takes what fits in the TLS buffer (64 KiB), returns how much.
    pub fn push(&mut self, plain: &[u8]) -> usize {
        self.conn.writer().write(plain).unwrap_or(0)
    }

    /// Ciphertext waiting to go out.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Write ciphertext to `w` (as much as it takes).
    pub fn write_to(&mut self, w: &mut dyn Write) -> io::Result<usize> {
        self.conn.write_tls(w)
    }

    /// Say close_notify (the session ended).
    pub fn close(&mut self) {
        self.conn.send_close_notify();
    }
}
