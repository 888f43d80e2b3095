//! Refresh-token rotation: each token works once; presenting a used one
//! means it was copied, so the whole session goes, except within a short
//! grace period that lets a client's two concurrent refreshes both succeed.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::{Duration, OffsetDateTime};

/// How long a refresh token lives.
pub const REFRESH_TOKEN_TTL: Duration = Duration::days(7);
/// How long an access token lives.
pub const ACCESS_TOKEN_TTL: Duration = Duration::minutes(15);
/// Two refreshes of one token this close together are one client racing.
pub const REUSE_GRACE: Duration = Duration::seconds(30);
/// Clock skew tolerated on `exp`/`nbf`.
pub const CLOCK_SKEW: Duration = Duration::seconds(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshDecision {
    /// Unused and valid: rotate it.
    Rotate,
    /// Used moments ago by the same client: issue another pair.
    WithinGrace,
    /// Used before: a replay. Revoke the session.
    Reused,
    Expired,
}

pub fn decide(
    used_at: Option<OffsetDateTime>,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
) -> RefreshDecision {
    if now >= expires_at {
        return RefreshDecision::Expired;
    }
    match used_at {
        None => RefreshDecision::Rotate,
        Some(used) if now - used <= REUSE_GRACE => RefreshDecision::WithinGrace,
        Some(_) => RefreshDecision::Reused,
    }
}

/// The refresh token that replaces `presented`: a keyed hash of it, so
/// that every refresh of one token inside the grace period hands out the
/// same successor (one chain per session, never a branch), while nobody
/// without the server's key can compute a successor from a stolen token.
pub fn successor(key: &[u8], presented: &str) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(b"mpanel refresh successor v1\0");
    mac.update(presented.as_bytes());
    format!(
        "mprt_{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_used_token_is_a_replay_after_the_grace_period() {
        let t0 = datetime!(2026-11-21 10:00 UTC);
        let exp = t0 + REFRESH_TOKEN_TTL;
        assert_eq!(decide(None, exp, t0), RefreshDecision::Rotate);
        assert_eq!(
            decide(Some(t0), exp, t0 + Duration::seconds(5)),
            RefreshDecision::WithinGrace
        );
        assert_eq!(
            decide(Some(t0), exp, t0 + Duration::seconds(31)),
            RefreshDecision::Reused
        );
        assert_eq!(decide(None, exp, exp), RefreshDecision::Expired);
    }

    #[test]
    fn a_successor_is_fixed_by_the_token_and_the_key() {
        let a = successor(b"key one", "mprt_abc");
        assert_eq!(a, successor(b"key one", "mprt_abc"));
        assert_ne!(a, successor(b"key two", "mprt_abc"));
        assert_ne!(a, successor(b"key one", "mprt_abd"));
        assert!(a.starts_with("mprt_") && a.len() == 5 + 43);
    }
}
