//! Login throttling: a few free failures, then a lock that doubles with
//! every further failure up to a ceiling; a quiet period forgets it all.

use time::{Duration, OffsetDateTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures allowed before the first lock.
    pub free_failures: u32,
    pub first_lock: Duration,
    pub max_lock: Duration,
    /// Failures older than this (since the last one) are forgotten.
    pub forget_after: Duration,
}

/// Per account: 5 free failures, then 30 s, 1 min, 2 min … up to 15 min.
pub const PER_ACCOUNT: ThrottlePolicy = ThrottlePolicy {
    free_failures: 5,
    first_lock: Duration::seconds(30),
    max_lock: Duration::minutes(15),
    forget_after: Duration::hours(1),
};

/// Per client address: more room (offices share one), same growth.
pub const PER_ADDRESS: ThrottlePolicy = ThrottlePolicy {
    free_failures: 20,
    first_lock: Duration::seconds(30),
    max_lock: Duration::minutes(15),
    forget_after: Duration::hours(1),
};

/// The failures recorded against one key (an account or an address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleState {
    pub failures: u32,
    pub last_failure_at: OffsetDateTime,
    pub locked_until: Option<OffsetDateTime>,
}

impl ThrottlePolicy {
    /// How long until a login may be tried again, if locked now.
    pub fn locked_for(
        &self,
        state: Option<&ThrottleState>,
        now: OffsetDateTime,
    ) -> Option<Duration> {
        let until = state?.locked_until?;
        (until > now).then(|| until - now)
    }

    /// Until when `failures` failures lock, counted from `now`.
    pub fn lock_after(&self, failures: u32, now: OffsetDateTime) -> Option<OffsetDateTime> {
        (failures > self.free_failures).then(|| {
            let doublings = (failures - self.free_failures - 1).min(16);
            let lock = self.first_lock * 2i32.pow(doublings);
            now + lock.min(self.max_lock)
        })
    }

    /// The state after one more failure at `now`.
    pub fn after_failure(
        &self,
        state: Option<&ThrottleState>,
        now: OffsetDateTime,
    ) -> ThrottleState {
        let previous = state
            .filter(|s| now - s.last_failure_at < self.forget_after)
            .map_or(0, |s| s.failures);
        let failures = previous.saturating_add(1);
        let locked_until = self.lock_after(failures, now);
        ThrottleState {
            failures,
            last_failure_at: now,
            locked_until,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn locks_grow_after_the_free_failures_and_are_forgotten() {
        let t0 = datetime!(2026-11-21 10:00 UTC);
        let mut state: Option<ThrottleState> = None;
        for _ in 0..5 {
            state = Some(PER_ACCOUNT.after_failure(state.as_ref(), t0));
            assert_eq!(PER_ACCOUNT.locked_for(state.as_ref(), t0), None);
        }
        state = Some(PER_ACCOUNT.after_failure(state.as_ref(), t0));
        assert_eq!(
            PER_ACCOUNT.locked_for(state.as_ref(), t0),
            Some(Duration::seconds(30))
        );
        state = Some(PER_ACCOUNT.after_failure(state.as_ref(), t0));
        assert_eq!(
            PER_ACCOUNT.locked_for(state.as_ref(), t0),
            Some(Duration::minutes(1))
        );
        for _ in 0..20 {
            state = Some(PER_ACCOUNT.after_failure(state.as_ref(), t0));
        }
        assert_eq!(
            PER_ACCOUNT.locked_for(state.as_ref(), t0),
            Some(Duration::minutes(15))
        );
        assert_eq!(
            PER_ACCOUNT.locked_for(state.as_ref(), t0 + Duration::minutes(15)),
            None
        );

        let later = t0 + Duration::hours(2);
        let fresh = PER_ACCOUNT.after_failure(state.as_ref(), later);
        assert_eq!(fresh.failures, 1);
        assert_eq!(fresh.locked_until, None);
    }
}
