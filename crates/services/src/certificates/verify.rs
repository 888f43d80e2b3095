//! Whether a certificate's names cover a website's domain, and whether its
//! chain leads, through the intermediates given, to a trusted root
//! (rustls-webpki, for TLS server authentication).

use std::time::Duration;

use rustls::pki_types::{CertificateDer, TrustAnchor, UnixTime};
use time::OffsetDateTime;
use webpki::{EndEntityCert, Error, KeyUsage};

use super::CertificateError;

/// A domain as certificates name it: lower case, no final dot.
pub(super) fn normalise(domain: &str) -> String {
    domain.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Whether one of `names` (lower case) is `domain` (normalised), or a
/// wildcard `*.parent` where `domain` is one label under `parent`.
pub(super) fn covers(names: &[String], domain: &str) -> bool {
    names.iter().any(|name| name_covers(name, domain))
}

fn name_covers(name: &str, domain: &str) -> bool {
    match name.strip_prefix("*.") {
        Some(parent) => domain
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
        None => name == domain,
    }
}

/// Verifies `certs` (leaf first) to a root of `webpki-roots` or of
/// `extra_roots`, at `now`, for TLS server authentication.
pub(super) fn chain(
    certs: &[CertificateDer<'_>],
    now: OffsetDateTime,
    extra_roots: &[CertificateDer<'_>],
) -> Result<(), CertificateError> {
    let Some((leaf, intermediates)) = certs.split_first() else {
        return Err(incomplete("there is no certificate to verify"));
    };
    let leaf = EndEntityCert::try_from(leaf)
        .map_err(|e| incomplete(&format!("the certificate could not be checked ({e})")))?;
    let anchors = trust_anchors(extra_roots);
    leaf.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        intermediates,
        unix_time(now),
        KeyUsage::server_auth(),
        None,
        None,
    )
    .map(|_| ())
    .map_err(|e| incomplete(&chain_problem(&e)))
}

/// Mozilla's roots and the caller's (those usable as anchors).
fn trust_anchors<'a>(extra_roots: &'a [CertificateDer<'_>]) -> Vec<TrustAnchor<'a>> {
    webpki_roots::TLS_SERVER_ROOTS
        .iter()
        .cloned()
        .chain(
            extra_roots
                .iter()
                .filter_map(|root| webpki::anchor_from_trusted_cert(root).ok()),
        )
        .collect()
}

fn unix_time(now: OffsetDateTime) -> UnixTime {
    let seconds = u64::try_from(now.unix_timestamp()).unwrap_or(0);
    UnixTime::since_unix_epoch(Duration::from_secs(seconds))
}

/// A webpki failure, in words for the customer.
fn chain_problem(error: &Error) -> String {
    match error {
        Error::UnknownIssuer => "the chain does not lead to a trusted root: an intermediate \
             certificate is missing or the issuer is not trusted"
            .to_owned(),
        Error::CertExpired { .. } | Error::CertNotValidYet { .. } => {
            "an intermediate certificate of the chain is expired or not yet valid; \
             use your certificate authority's current intermediates"
                .to_owned()
        }
        Error::InvalidSignatureForPublicKey => {
            "a signature in the chain does not verify: the certificates do not belong together"
                .to_owned()
        }
        Error::CaUsedAsEndEntity => "the first certificate is a certificate authority's, not \
             the website's; put the website's certificate first"
            .to_owned(),
        Error::EndEntityUsedAsCa => "a website's certificate stands where an intermediate \
             certificate should be"
            .to_owned(),
        Error::RequiredEkuNotFoundContext(_) => {
            "the certificate is not meant for web servers (its extended key usage lacks \
             TLS server authentication)"
                .to_owned()
        }
        Error::UnsupportedSignatureAlgorithmContext(_)
        | Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            "the chain is signed with an algorithm mPanel does not support".to_owned()
        }
        Error::CertDistrusted => "the chain leads to a root that is no longer trusted".to_owned(),
        Error::NameConstraintViolation | Error::PathLenConstraintViolated => {
            "the chain breaks a constraint its certificate authority set".to_owned()
        }
        other => format!("the chain could not be verified ({other})"),
    }
}

fn incomplete(reason: &str) -> CertificateError {
    CertificateError::IncompleteChain(reason.to_owned())
}
