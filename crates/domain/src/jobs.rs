//! Job queue rules: the states a job moves through, which moves operators
//! may make, and how long a failed job waits before its next attempt.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    /// Waiting for its `run_at`, or for a worker.
    Pending,
    /// Claimed by a worker, under a lease.
    Running,
    Completed,
    /// Failed; waits for its next attempt at `run_at`.
    Failed,
    /// Out of attempts (or failed permanently); kept for operators.
    Dead,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 6] = [
        JobState::Pending,
        JobState::Running,
        JobState::Completed,
        JobState::Failed,
        JobState::Dead,
        JobState::Cancelled,
    ];

    /// Stored in lower case, shown in UPPER_SNAKE.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Dead => "dead",
            Self::Cancelled => "cancelled",
        }
    }

    /// An operator may cancel a job that has not started (or awaits a retry).
    pub fn can_cancel(self) -> bool {
        matches!(self, Self::Pending | Self::Failed)
    }

    /// An operator may retry a job that will not run again by itself.
    pub fn can_retry(self) -> bool {
        matches!(self, Self::Failed | Self::Dead | Self::Cancelled)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        JobState::ALL
            .into_iter()
            .find(|st| st.as_str() == lower)
            .ok_or_else(|| format!("unknown job state {s:?}"))
    }
}

/// Exponential back-off with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    /// 2 s, 4 s, 8 s … up to an hour.
    fn default() -> Self {
        Self {
            base: Duration::seconds(2),
            max: Duration::hours(1),
        }
    }
}

impl Backoff {
    /// The wait after failed attempt number `attempt` (1-based). `jitter`
    /// in `[0, 1)` spreads retries over the upper half of the interval, so
    /// jobs that failed together do not come back together.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let full = (self.base * 2i32.pow(exp.min(20))).min(self.max);
        let jitter = jitter.clamp(0.0, 1.0);
        full * (0.5 + jitter / 2.0)
    }
}

/// A job's payload as operators see it: every value under a name that
/// holds a secret (a password or its hash, a secret, a token, a private
/// key) is replaced, at any depth. Hashes are redacted too: a mailbox or
/// SFTP hash is an offline guessing target.
pub fn redacted_payload(payload: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    fn secret_name(name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        [
            "password",
            "secret",
            "token",
            "private_key",
            "hash",
            "credential",
        ]
        .iter()
        .any(|s| name.contains(s))
    }
    match payload {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if secret_name(k) && !v.is_null() {
                        Value::String("[redacted]".into())
                    } else {
                        redacted_payload(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redacted_payload).collect()),
        other => other.clone(),
    }
}

/// A job's payload tied to its kind: queueing one and registering its
/// handler both take the kind from the payload's type, so a kind string
/// and the type its handler decodes cannot drift apart. (A payload shared
/// by several kinds, such as a hosting account action, names its kind
/// where it is queued instead.)
pub trait JobPayload: Serialize + serde::de::DeserializeOwned + Send + 'static {
    /// The kind the job is stored and dispatched under.
    const KIND: &'static str;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_payloads_are_redacted_at_any_depth() {
        let payload = serde_json::json!({
            "subscription_id": "s1", "domain": "a.test",
            "mailbox_password_hash": "{ARGON2ID}$argon2id$x", "password_hash": null,
            "nested": {"api_token": "mpt_x", "keys": ["ssh-ed25519 AAAA"]},
            "list": [{"webhook_secret": "whsec"}]
        });
        assert_eq!(
            redacted_payload(&payload),
            serde_json::json!({
                "subscription_id": "s1", "domain": "a.test",
                "mailbox_password_hash": "[redacted]", "password_hash": null,
                "nested": {"api_token": "[redacted]", "keys": ["ssh-ed25519 AAAA"]},
                "list": [{"webhook_secret": "[redacted]"}]
            })
        );
    }

    #[test]
    fn back_off_doubles_up_to_the_ceiling_with_bounded_jitter() {
        let b = Backoff::default();
        assert_eq!(b.delay(1, 1.0), Duration::seconds(2));
        assert_eq!(b.delay(2, 1.0), Duration::seconds(4));
        assert_eq!(b.delay(3, 0.0), Duration::seconds(4));
        assert_eq!(b.delay(30, 1.0), Duration::hours(1));
        assert_eq!(b.delay(1000, 1.0), Duration::hours(1));
        for j in [0.0, 0.3, 0.99] {
            let d = b.delay(4, j);
            assert!(
                d >= Duration::seconds(8) && d <= Duration::seconds(16),
                "{d}"
            );
        }
    }

    #[test]
    fn operators_cancel_waiting_jobs_and_retry_stopped_ones() {
        assert!(JobState::Pending.can_cancel());
        assert!(!JobState::Running.can_cancel());
        assert!(!JobState::Completed.can_retry());
        assert!(JobState::Dead.can_retry());
        assert_eq!("DEAD".parse::<JobState>().unwrap(), JobState::Dead);
    }
}
