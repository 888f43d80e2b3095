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

/// The client a failure is counted against: an IPv4 address, or an IPv6
/// address's /64 (one host usually holds a whole /64, so counting single
/// IPv6 addresses would give an attacker 2^64 fresh counters).
pub fn client_group(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Ok(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip.to_owned(),
    }
}

/// The key failures of one account are counted under: the account *and*
/// the client, so a stranger's guesses lock only the stranger out (the
/// per-address count still bounds what one client may try across
/// accounts).
pub fn account_key(tenant: &str, email: &str, ip: Option<&str>) -> String {
    format!(
        "account:{tenant}:{}:{}",
        email.to_lowercase(),
        ip.map_or_else(|| "unknown".to_owned(), client_group)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_accounts_with_the_client() {
        assert_eq!(client_group("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            client_group("2001:db8:1:2:ffff:ffff:ffff:ffff"),
            "2001:db8:1:2::/64"
        );
        assert_ne!(
            client_group("2001:db8:1:3::1"),
            client_group("2001:db8:1:2::1")
        );
        assert_eq!(client_group("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(client_group("192.0.2.7"), "192.0.2.7");
        assert_ne!(
            account_key("acme", "A@x.test", Some("192.0.2.7")),
            account_key("acme", "a@x.test", Some("192.0.2.8")),
            "another client has its own count"
        );
        assert_eq!(
            account_key("acme", "A@x.test", Some("2001:db8::1")),
            account_key("acme", "a@x.test", Some("2001:db8::2")),
            "one /64 is one client"
        );
    }
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
