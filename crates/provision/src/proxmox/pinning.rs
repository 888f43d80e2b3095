//! Certificate pinning (§1 "TLS"): a PVE node serves a certificate its
//! cluster's own CA signed, which nothing trusts. `GET /nodes` publishes
//! each node's `ssl_fingerprint`, the SHA-256 of that certificate; the
//! client accepts exactly the certificate with the pinned SHA-256. No
//! CA roots, no hostname check, but the handshake signatures are still
//! verified (with ring's algorithms), so the peer must hold the key.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::DriverError;

/// The SHA-256 of a certificate's DER.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// `AB:CD:…` as PVE writes it; case-insensitive, colons (or spaces)
    /// optional.
    pub fn parse(text: &str) -> Result<Self, DriverError> {
        let invalid = || {
            DriverError::Permanent(format!(
                "the Proxmox VE certificate fingerprint {text:?} is not a SHA-256 fingerprint \
                 (64 hex digits, as `ssl_fingerprint` of GET /nodes: AB:CD:…)"
            ))
        };
        let hex: Vec<u8> = text
            .bytes()
            .filter(|b| !matches!(b, b':' | b' ' | b'\t'))
            .collect();
        if hex.len() != 64 {
            return Err(invalid());
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(hex.chunks(2)) {
            let digit = |c: u8| char::from(c).to_digit(16);
            match (digit(pair[0]), digit(pair[1])) {
                (Some(hi), Some(lo)) => *byte = (hi * 16 + lo) as u8,
                _ => return Err(invalid()),
            }
        }
        Ok(Self(out))
    }

    /// The fingerprint of a certificate.
    pub fn of(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The server presented another certificate than the pinned one.
#[derive(Debug, Clone, Copy)]
pub struct Mismatch {
    pub pinned: Fingerprint,
    pub presented: Fingerprint,
}

/// The marker text of a [`Mismatch`], also looked for in error texts.
const MISMATCH_TEXT: &str = "does not match the pinned fingerprint";

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server's certificate (SHA-256 {}) {MISMATCH_TEXT} {}",
            self.presented, self.pinned
        )
    }
}

impl StdError for Mismatch {}

/// Accepts exactly the pinned certificate.
#[derive(Debug)]
struct PinnedCertificate {
    pin: Fingerprint,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = Fingerprint::of(end_entity.as_ref());
        if presented == self.pin {
            return Ok(ServerCertVerified::assertion());
        }
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(
            OtherError(Arc::new(Mismatch {
                pinned: self.pin,
                presented,
            })),
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A rustls client configuration (ring, TLS 1.2/1.3, HTTP/1.1) that
/// trusts only the certificate with this fingerprint.
pub fn client_config(pin: Fingerprint) -> Result<rustls::ClientConfig, DriverError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DriverError::Permanent(format!("cannot set up TLS for Proxmox VE: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCertificate { pin, algorithms }))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The [`Mismatch`] behind a failed request, if that is why it failed:
/// `Some(Some(_))` with the details, `Some(None)` when only the text
/// says so.
pub fn find_mismatch(error: &(dyn StdError + 'static)) -> Option<Option<Mismatch>> {
    let mut next = Some(error);
    let mut text_says_so = false;
    while let Some(e) = next {
        if let Some(m) = e.downcast_ref::<Mismatch>() {
            return Some(Some(*m));
        }
        if let Some(rustls::Error::InvalidCertificate(CertificateError::Other(other))) =
            e.downcast_ref::<rustls::Error>()
            && let Some(m) = other.0.downcast_ref::<Mismatch>()
        {
            return Some(Some(*m));
        }
        text_says_so |= e.to_string().contains(MISMATCH_TEXT);
        next = cause(e);
    }
    text_says_so.then_some(None)
}

/// The next error of a chain. `io::Error::source` skips the error it
/// wraps (it returns *that* error's source), so look inside it first.
pub fn cause<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    match e.downcast_ref::<std::io::Error>() {
        Some(io) => match io.get_ref() {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => io.source(),
        },
        None => e.source(),
    }
}

#[cfg(test)]
mod tests {
    use super::Fingerprint;

    #[test]
    fn a_fingerprint_is_read_in_any_case_with_or_without_colons() {
        let upper = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";
        let a = Fingerprint::parse(upper).unwrap();
        let b = Fingerprint::parse(&upper.replace(':', "").to_lowercase()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), upper);
        assert!(Fingerprint::parse("AB:CD").is_err());
        assert!(Fingerprint::parse(&upper.replace("AB", "XY")).is_err());
    }
}
