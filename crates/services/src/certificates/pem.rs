//! PEM text in and out: the certificates of a chain (at most
//! [`MAX_CERTIFICATES`], each at most [`MAX_CERTIFICATE_DER`] bytes), the one
//! private key of an upload (passphrase-protected keys refused), and the
//! re-encoding of both as 64-column base64 blocks ending with a newline.

use base64::Engine as _;
use rustls::pki_types::pem::{self, PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::CertificateError;

/// Certificates a chain may hold (leaf included).
pub(super) const MAX_CERTIFICATES: usize = 10;
/// Largest certificate accepted, in DER bytes.
pub(super) const MAX_CERTIFICATE_DER: usize = 64 * 1024;
/// Largest chain text read: ten largest certificates as base64, with room.
const MAX_CHAIN_TEXT: usize = 1024 * 1024;
/// Largest key text read (an RSA-8192 PEM is about 6.3 KiB).
const MAX_KEY_TEXT: usize = 64 * 1024;

const CONVERT_HINT: &str = "(the text beginning with -----BEGIN";

/// The certificates of `text`, in order, within the limits.
pub(super) fn certificates(text: &str) -> Result<Vec<CertificateDer<'static>>, CertificateError> {
    if text.len() > MAX_CHAIN_TEXT {
        return Err(unreadable(
            "the file is larger than a certificate chain can be",
        ));
    }
    let text = trimmed(text);
    let mut certs = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(text.as_bytes()) {
        let (kind, der) = section.map_err(|e| unreadable(&pem_problem(&e)))?;
        certs.push(certificate(kind, der, certs.len() + 1)?);
    }
    if certs.is_empty() {
        return Err(unreadable(&format!(
            "no certificate found; paste the certificate in PEM form {CONVERT_HINT} CERTIFICATE-----)"
        )));
    }
    Ok(certs)
}

fn certificate(
    kind: SectionKind,
    der: Vec<u8>,
    number: usize,
) -> Result<CertificateDer<'static>, CertificateError> {
    match kind {
        SectionKind::Certificate => {}
        SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey => {
            return Err(unreadable(
                "the certificate text contains a private key; paste the key in its own field",
            ));
        }
        _ => {
            return Err(unreadable(
                "the text contains something other than certificates",
            ));
        }
    }
    if number > MAX_CERTIFICATES {
        return Err(unreadable(&format!(
            "a chain may hold at most {MAX_CERTIFICATES} certificates"
        )));
    }
    if der.len() > MAX_CERTIFICATE_DER {
        return Err(unreadable(&format!(
            "certificate {number} is larger than {} KiB",
            MAX_CERTIFICATE_DER / 1024
        )));
    }
    Ok(CertificateDer::from(der))
}

/// The certificates of a trust bundle: other sections are skipped.
pub(super) fn bundle(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, CertificateError> {
    let roots = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(&pem_problem(&e)))?;
    if roots.is_empty() {
        return Err(unreadable("the bundle holds no certificate"));
    }
    Ok(roots)
}

/// The one private key of `text`.
pub(super) fn private_key(text: &str) -> Result<PrivateKeyDer<'static>, CertificateError> {
    if text.len() > MAX_KEY_TEXT {
        return Err(key_unreadable(
            "the text is larger than a private key can be",
        ));
    }
    if is_encrypted(text) {
        return Err(CertificateError::KeyUnsupported(
            "it is protected by a passphrase; remove the passphrase \
             (openssl pkey -in key.pem -out key-plain.pem) and upload the result"
                .to_owned(),
        ));
    }
    let text = trimmed(text);
    let mut keys = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(text.as_bytes()) {
        let (kind, der) = section.map_err(|e| key_unreadable(&pem_problem(&e)))?;
        keys.push(key(kind, der)?);
    }
    match (keys.pop(), keys.is_empty()) {
        (Some(key), true) => Ok(key),
        (Some(_), false) => Err(key_unreadable("the text holds more than one private key")),
        (None, _) => Err(key_unreadable(&format!(
            "no private key found; paste the key in PEM form {CONVERT_HINT} PRIVATE KEY-----)"
        ))),
    }
}

fn key(kind: SectionKind, der: Vec<u8>) -> Result<PrivateKeyDer<'static>, CertificateError> {
    match kind {
        SectionKind::PrivateKey => Ok(PrivateKeyDer::Pkcs8(der.into())),
        SectionKind::RsaPrivateKey => Ok(PrivateKeyDer::Pkcs1(der.into())),
        SectionKind::EcPrivateKey => Ok(PrivateKeyDer::Sec1(der.into())),
        SectionKind::Certificate => Err(key_unreadable(
            "the key text contains a certificate; paste only the private key",
        )),
        _ => Err(key_unreadable(
            "the text contains something other than a private key",
        )),
    }
}

/// `text` with each line trimmed: pasted PEM may come indented.
fn trimmed(text: &str) -> String {
    text.lines().map(str::trim).collect::<Vec<_>>().join("\n")
}

/// PKCS#8 `ENCRYPTED PRIVATE KEY`, or OpenSSL's legacy encrypted PEM.
fn is_encrypted(text: &str) -> bool {
    text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
}

fn pem_problem(error: &pem::Error) -> String {
    match error {
        pem::Error::MissingSectionEnd { .. } => "a PEM block has no END line".to_owned(),
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed".to_owned(),
        pem::Error::Base64Decode(_) => "a PEM block is not valid base64".to_owned(),
        pem::Error::SectionTooLarge => "a PEM block is too large".to_owned(),
        _ => "the text is not PEM".to_owned(),
    }
}

/// The chain as PEM, one block per certificate.
pub(super) fn chain_text(certs: &[CertificateDer<'_>]) -> String {
    certs
        .iter()
        .map(|cert| encode("CERTIFICATE", cert))
        .collect()
}

/// The key as PEM, under the label of its format.
pub(super) fn key_text(key: &PrivateKeyDer<'_>) -> String {
    let label = match key {
        PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
        PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
        _ => "PRIVATE KEY",
    };
    encode(label, key.secret_der())
}

/// One PEM block: BEGIN line, base64 in lines of 64, END line.
pub(super) fn encode(label: &str, der: &[u8]) -> String {
    let base64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in base64.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

fn unreadable(reason: &str) -> CertificateError {
    CertificateError::Unreadable(reason.to_owned())
}

fn key_unreadable(reason: &str) -> CertificateError {
    CertificateError::KeyUnreadable(reason.to_owned())
}
