//! The HTTPS side: a self-signed certificate made at start, and its
//! SHA-256 fingerprint written the way PVE's `ssl_fingerprint` is
//! (colon-separated upper-case hex).

use std::sync::Arc;

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

pub struct Certificate {
    pub der: Vec<u8>,
    pub pem: String,
    pub fingerprint: String,
    pub server: Arc<rustls::ServerConfig>,
}

pub fn make_certificate() -> anyhow::Result<Certificate> {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    let der = certified.cert.der().to_vec();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Certificate {
        fingerprint: fingerprint(&der),
        pem: pem(&der),
        der,
        server: Arc::new(server),
    })
}

/// `AB:CD:…` over the SHA-256 of a certificate's DER.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The certificate as PEM.
fn pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}
