//! TLS certificates of hosted websites, read without touching the store.
//!
//! Two uses: [`facts`] reads what mPanel records about a chain an ACME CA
//! issued (names, serial, issuer, validity, the chain as PEM, the leaf's DER
//! for revocation); [`validate_upload`] checks a certificate and private key
//! a customer uploads for a site, step by step, the first failure winning:
//! readable chain, readable supported key, key matching the leaf, leaf valid
//! now, leaf naming the site, chain leading to a trusted root.
//!
//! The pieces: `pem` reads and re-encodes PEM text within size limits, `key`
//! finds the public key of a private key (RSA, ECDSA P-256/P-384, Ed25519),
//! `verify` matches names and builds the chain with rustls-webpki.

mod key;
mod pem;
mod verify;

#[cfg(test)]
mod tests;

pub use rustls::pki_types::CertificateDer;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate, X509Name};

/// What mPanel records about a certificate (the SslCertificate model).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFacts {
    /// DNS names of the leaf's subjectAltName (lower case), in certificate
    /// order.
    pub names: Vec<String>,
    /// Serial number in lower-case hex without separators or the leading
    /// zero byte DER adds to a positive number (as `openssl x509 -serial`
    /// prints it, lower case).
    pub serial: String,
    /// The issuer's common name (e.g. "R11"), or its whole distinguished
    /// name as text when it has no common name.
    pub issuer: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// The chain as PEM: leaf first, then the intermediates as given, each
    /// block in 64-column base64 ending with a newline.
    pub chain_pem: String,
    /// DER of the leaf (ACME revocation needs it).
    pub leaf_der: Vec<u8>,
}

/// An uploaded certificate that passed every check.
#[derive(Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub facts: CertificateFacts,
    /// Whether the certificate also covers `www.<domain>` (not required).
    pub covers_www: bool,
    /// The private key as PEM, re-encoded from what was given (same format,
    /// normalised lines). A secret: it is left out of `Debug`.
    pub key_pem: String,
}

impl std::fmt::Debug for Uploaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploaded")
            .field("facts", &self.facts)
            .field("covers_www", &self.covers_www)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// Why a certificate (or its key) was refused; the message speaks to the
/// customer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("the certificate could not be read: {0}")]
    Unreadable(String),
    #[error("the private key could not be read: {0}")]
    KeyUnreadable(String),
    #[error("this private key is not supported: {0}")]
    KeyUnsupported(String),
    #[error("the private key does not belong to this certificate")]
    KeyMismatch,
    #[error("the certificate expired on {} (UTC)", utc_day(.not_after))]
    Expired { not_after: OffsetDateTime },
    #[error("the certificate is not valid before {} (UTC)", utc_day(.not_before))]
    NotYetValid { not_before: OffsetDateTime },
    #[error("the certificate is for {}, not {domain}", names_text(.names))]
    NameMismatch { domain: String, names: Vec<String> },
    #[error("{0}")]
    IncompleteChain(String),
}

impl CertificateError {
    /// A stable machine code for problem+json.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreadable(_) => "certificate_unreadable",
            Self::KeyUnreadable(_) => "key_unreadable",
            Self::KeyUnsupported(_) => "key_unsupported",
            Self::KeyMismatch => "key_mismatch",
            Self::Expired { .. } => "certificate_expired",
            Self::NotYetValid { .. } => "certificate_not_yet_valid",
            Self::NameMismatch { .. } => "certificate_name_mismatch",
            Self::IncompleteChain(_) => "certificate_chain_incomplete",
        }
    }
}

fn utc_day(at: &OffsetDateTime) -> time::Date {
    at.to_offset(time::UtcOffset::UTC).date()
}

fn names_text(names: &[String]) -> String {
    match names.is_empty() {
        true => "no domain name".to_owned(),
        false => names.join(", "),
    }
}

/// Reads a PEM chain (leaf first) as issued by an ACME CA.
pub fn facts(chain_pem: &str) -> Result<CertificateFacts, CertificateError> {
    let certs = pem::certificates(chain_pem)?;
    Ok(inspect(&certs)?.0)
}

/// Checks a customer's upload for `domain` at `now` (see the module doc
/// for the order of the checks). `extra_roots` are trusted besides the
/// Mozilla roots of `webpki-roots`.
pub fn validate_upload(
    chain_pem: &str,
    key_pem: &str,
    domain: &str,
    now: OffsetDateTime,
    extra_roots: &[CertificateDer<'_>],
) -> Result<Uploaded, CertificateError> {
    let certs = pem::certificates(chain_pem)?;
    let (facts, leaf_public_key) = inspect(&certs)?;
    let key = pem::private_key(key_pem)?;
    if key::public_key(&key)? != leaf_public_key {
        return Err(CertificateError::KeyMismatch);
    }
    check_validity(&facts, now)?;
    let domain = verify::normalise(domain);
    if !verify::covers(&facts.names, &domain) {
        let names = facts.names.clone();
        return Err(CertificateError::NameMismatch { domain, names });
    }
    let covers_www = verify::covers(&facts.names, &format!("www.{domain}"));
    verify::chain(&certs, now, extra_roots)?;
    let key_pem = pem::key_text(&key);
    Ok(Uploaded {
        facts,
        covers_www,
        key_pem,
    })
}

/// Reads extra trust anchors from a PEM bundle (for `extra_roots`).
pub fn roots_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, CertificateError> {
    let roots = pem::bundle(pem)?;
    for (number, root) in roots.iter().enumerate() {
        if webpki::anchor_from_trusted_cert(root).is_err() {
            return Err(CertificateError::Unreadable(format!(
                "certificate {} of the bundle cannot serve as a trusted root",
                number + 1
            )));
        }
    }
    Ok(roots)
}

/// Parses every certificate of the chain; returns the facts and the leaf's
/// public key (the BIT STRING content of its SubjectPublicKeyInfo).
fn inspect(certs: &[CertificateDer<'_>]) -> Result<(CertificateFacts, Vec<u8>), CertificateError> {
    let parsed = certs
        .iter()
        .enumerate()
        .map(|(index, der)| parse(der, index))
        .collect::<Result<Vec<_>, _>>()?;
    let (leaf, leaf_der) = match (parsed.first(), certs.first()) {
        (Some(leaf), Some(der)) => (leaf, der),
        _ => return Err(unreadable("no certificate found")),
    };
    let validity = leaf.validity();
    let facts = CertificateFacts {
        names: dns_names(leaf)?,
        serial: serial_hex(leaf.raw_serial()),
        issuer: issuer_text(leaf.issuer()),
        not_before: validity.not_before.to_datetime(),
        not_after: validity.not_after.to_datetime(),
        chain_pem: pem::chain_text(certs),
        leaf_der: leaf_der.to_vec(),
    };
    let public_key = leaf.public_key().subject_public_key.data.to_vec();
    Ok((facts, public_key))
}

fn parse<'a>(der: &'a [u8], index: usize) -> Result<X509Certificate<'a>, CertificateError> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        _ => Err(unreadable(&format!(
            "certificate {} in the file is not a valid X.509 certificate",
            index + 1
        ))),
    }
}

fn dns_names(cert: &X509Certificate<'_>) -> Result<Vec<String>, CertificateError> {
    let san = cert
        .subject_alternative_name()
        .map_err(|_| unreadable("its list of names (subjectAltName) is malformed"))?;
    Ok(san
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::DNSName(dns) => Some(dns.to_ascii_lowercase()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}

/// Hex of the serial's bytes without the leading zero bytes (one kept for 0).
fn serial_hex(raw: &[u8]) -> String {
    let start = raw
        .iter()
        .position(|byte| *byte != 0)
        .unwrap_or(raw.len().saturating_sub(1));
    raw.get(start..)
        .unwrap_or_default()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn issuer_text(issuer: &X509Name<'_>) -> String {
    issuer
        .iter_common_name()
        .find_map(|cn| cn.as_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| issuer.to_string())
}

fn check_validity(facts: &CertificateFacts, now: OffsetDateTime) -> Result<(), CertificateError> {
    if now < facts.not_before {
        return Err(CertificateError::NotYetValid {
            not_before: facts.not_before,
        });
    }
    if now > facts.not_after {
        return Err(CertificateError::Expired {
            not_after: facts.not_after,
        });
    }
    Ok(())
}

fn unreadable(reason: &str) -> CertificateError {
    CertificateError::Unreadable(reason.to_owned())
}
