//! Refresh-token rotation: each token works once; presenting a used one
//! means it was copied, so the whole session goes, except within a short
//! grace period that lets a client's two concurrent refreshes both succeed.

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
}
