//! Webhook signatures: `X-Mpanel-Signature: t=<unix seconds>,v1=<hex>`,
//! where the hex is HMAC-SHA256 of `"<t>.<raw body>"` under the tenant's
//! webhook secret. Any `v1` may match any current secret (so a secret can
//! be rotated without downtime); comparison is constant-time; a timestamp
//! more than the tolerance away from now, either way, is refused.
//!
//! The check runs before anything authenticates the sender, so its cost is
//! bounded by the checker, not by the request: the header is at most
//! [`MAX_HEADER_LEN`] bytes with at most [`MAX_CANDIDATES`] `v1` values of
//! exactly one MAC's length, and the body's MAC is computed once per
//! secret (then compared with every candidate), never once per candidate.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Five minutes, both ways.
pub const TOLERANCE_SECS: i64 = 300;

/// The longest signature header accepted: a timestamp and a few `v1` (and
/// Stripe's test-mode `v0`) values fit with room to spare.
pub const MAX_HEADER_LEN: usize = 1024;

/// The most `v1` values one header may carry (a sender signs once per
/// secret it holds, and it holds one, or two while rotating).
pub const MAX_CANDIDATES: usize = 4;

/// Every check computes at least this many MACs of the body, so the time
/// it takes does not tell a tenant with one secret from one rotating two,
/// or from a tenant that does not exist.
const MIN_MACS: usize = 2;

/// The key of the MACs that only pad the work.
const DECOY: &str = "mpanel-decoy-secret-for-unknown-senders";

/// Bytes in an HMAC-SHA256.
const MAC_LEN: usize = 32;

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
            Self::Malformed => {
                "the X-Mpanel-Signature header is not t=<unix seconds>,v1=<64 hex digits> \
                 (at most 4 v1 values, 1024 bytes in all)"
            }
            Self::Stale => "the signature's timestamp is more than 300 s from now",
            Self::Mismatch => "the signature does not match the body",
        })
    }
}

fn mac(secret: &str, t: i64, body: &[u8]) -> Option<[u8; MAC_LEN]> {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac.finalize().into_bytes().into())
}

/// What an order's signature covers: its `Idempotency-Key` and its body
/// (`"<t>.<key>.<body>"` once the timestamp is put in front), so an order
/// captured in transit cannot be sent again under a fresh key. The key
/// holds no `.` (the route refuses one), so the text reads one way only.
pub fn order_payload(idempotency_key: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(idempotency_key.len() + 1 + body.len());
    out.extend_from_slice(idempotency_key.as_bytes());
    out.push(b'.');
    out.extend_from_slice(body);
    out
}

/// The header a sender puts on `body` at time `t`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let hex: String = mac(secret, t, body)
        .map(|m| m.iter().map(|b| format!("{b:02x}")).collect())
        .unwrap_or_default();
    format!("t={t},v1={hex}")
}

fn unhex_mac(s: &str) -> Option<[u8; MAC_LEN]> {
    if s.len() != 2 * MAC_LEN {
        return None;
    }
    let mut out = [0u8; MAC_LEN];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A parsed header: its timestamp and its candidate MACs.
struct Parsed {
    t: i64,
    candidates: Vec<[u8; MAC_LEN]>,
}

fn parse(header: &str) -> Result<Parsed, SignatureError> {
    if header.len() > MAX_HEADER_LEN {
        return Err(SignatureError::Malformed);
    }
    let mut t = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            Some(("v1", v)) => {
                if candidates.len() == MAX_CANDIDATES {
                    return Err(SignatureError::Malformed);
                }
                candidates.push(unhex_mac(v).ok_or(SignatureError::Malformed)?);
            }
            Some(_) => {}
            None => return Err(SignatureError::Malformed),
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    Ok(Parsed { t, candidates })
}

/// Checks `header` against `body` with any of `secrets`, at `now` (unix s).
/// Costs one MAC of the body per secret, whatever the header holds.
pub fn verify(
    secrets: &[String],
    header: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let Parsed { t, candidates } = parse(header.ok_or(SignatureError::Missing)?)?;
    if now.abs_diff(t) > TOLERANCE_SECS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let mut matched = subtle::Choice::from(0);
    for secret in secrets {
        let Some(expected) = mac(secret, t, body) else {
            continue;
        };
        for candidate in &candidates {
            matched |= expected.ct_eq(candidate);
        }
    }
    for _ in secrets.len()..MIN_MACS {
        std::hint::black_box(mac(DECOY, t, std::hint::black_box(body)));
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The refusal for a request naming a tenant that does not exist (or has
/// no secret): the same parse, the same MACs and the same error as a bad
/// signature, so neither the answer nor its time tells who exists.
pub fn refuse_unknown(header: Option<&str>, body: &[u8], now: i64) -> SignatureError {
    match verify(&[], header, body, now) {
        Ok(()) => SignatureError::Mismatch,
        Err(e) => e,
    }
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
        let short = format!("{},v1=00", sign("whsec_old", 1_000, body));
        assert_eq!(
            verify(&secrets, Some(&short), body, 1_000),
            Err(SignatureError::Malformed),
            "every v1 is one MAC long"
        );
    }

    #[test]
    fn a_header_costs_one_mac_per_secret_at_most() {
        let secrets = vec!["whsec_new".to_owned()];
        let body = b"{}";
        let good = sign("whsec_new", 1_000, body);
        let decoy = format!(",v1={}", "ab".repeat(32));
        // Up to MAX_CANDIDATES values: any may match.
        let three = format!("{good}{}", decoy.repeat(MAX_CANDIDATES - 1));
        assert_eq!(verify(&secrets, Some(&three), body, 1_000), Ok(()));
        // One more is refused before any MAC is computed.
        let five = format!("{good}{}", decoy.repeat(MAX_CANDIDATES));
        assert_eq!(
            verify(&secrets, Some(&five), body, 1_000),
            Err(SignatureError::Malformed)
        );
        // So is a header over the size cap, whatever it holds.
        let padded = format!("{good},x={}", "y".repeat(MAX_HEADER_LEN));
        assert_eq!(
            verify(&secrets, Some(&padded), body, 1_000),
            Err(SignatureError::Malformed)
        );
    }
}
