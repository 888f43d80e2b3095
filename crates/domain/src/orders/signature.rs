//! Webhook signatures: `X-Mpanel-Signature: t=<unix seconds>,v1=<hex>`,
//! where the hex is HMAC-SHA256 of `"<t>.<raw body>"` under the tenant's
//! webhook secret. Any `v1` may match any current secret (so a secret can
//! be rotated without downtime); comparison is constant-time; a timestamp
//! more than the tolerance away from now, either way, is refused.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Five minutes, both ways.
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    Missing,
    Malformed,
    /// The timestamp is too far from now.
    Stale,
    /// No secret produces any of the signatures.
    Mismatch,
}

impl std::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Missing => "the X-Mpanel-Signature header is missing",
            Self::Malformed => "the X-Mpanel-Signature header is not t=<unix seconds>,v1=<hex>",
            Self::Stale => "the signature's timestamp is more than 300 s from now",
            Self::Mismatch => "the signature does not match the body",
        })
    }
}

fn mac(secret: &str, t: i64, body: &[u8]) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// The header a sender puts on `body` at time `t`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let hex: String = mac(secret, t, body)
        .map(|m| {
            m.finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        })
        .unwrap_or_default();
    format!("t={t},v1={hex}")
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Checks `header` against `body` with any of `secrets`, at `now` (unix s).
pub fn verify(
    secrets: &[String],
    header: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            Some(("v1", v)) => signatures.push(unhex(v).ok_or(SignatureError::Malformed)?),
            Some(_) => {}
            None => return Err(SignatureError::Malformed),
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if now.abs_diff(t) > TOLERANCE_SECS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    for secret in secrets {
        for sig in &signatures {
            if let Some(m) = mac(secret, t, body)
                && m.verify_slice(sig).is_ok()
            {
                return Ok(());
            }
        }
    }
    Err(SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_within_the_tolerance_only() {
        let secrets = vec!["whsec_new".to_owned(), "whsec_old".to_owned()];
        let body = br#"{"items":[]}"#;
        let header = sign("whsec_old", 1_000, body);
        assert_eq!(verify(&secrets, Some(&header), body, 1_000), Ok(()));
        assert_eq!(verify(&secrets, Some(&header), body, 1_300), Ok(()));
        assert_eq!(verify(&secrets, Some(&header), body, 700), Ok(()));
        assert_eq!(
            verify(&secrets, Some(&header), body, 1_301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(&secrets, Some(&header), body, 699),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(&secrets, Some(&header), b"{}", 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&["other".into()], Some(&header), body, 1_000),
            Err(SignatureError::Mismatch)
        );
        let two = format!(
            "{},v1={}",
            sign("nope", 1_000, body),
            &header[header.find("v1=").unwrap() + 3..]
        );
        assert_eq!(
            verify(&secrets, Some(&two), body, 1_000),
            Ok(()),
            "any v1 may match"
        );
        assert_eq!(
            verify(&secrets, None, body, 1_000),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(&secrets, Some("t=x,v1=00"), body, 1_000),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(&secrets, Some("v1=00"), body, 1_000),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(&secrets, Some("t=1000,v1=zz"), body, 1_000),
            Err(SignatureError::Malformed)
        );
    }
}
