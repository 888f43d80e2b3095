//! A hosting account's disk quota, enforced from measurements: the web
//! node's filesystem has no user quotas (see docs/provisioning-harness.md),
//! so a recurring job measures each account's home and these rules decide
//! what follows: the account is shown over quota, the tenant is told once,
//! and, by the tenant's policy, the site is suspended until a later
//! measurement finds it back under.
//!
//! An over-quota suspension is the account's own; a suspension of its
//! subscription (non-payment, staff) is another. Each is lifted only by
//! what caused it: paying an invoice leaves an over-quota account
//! suspended, and freeing space leaves a suspended subscription's account
//! suspended.

use time::{Duration, OffsetDateTime};

use serde::{Deserialize, Serialize};

/// What happens to an account measured over its plan's disk quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OverQuotaAction {
    /// Shown over quota, and the tenant told once.
    #[default]
    Notify,
    /// That, and the site suspended (after the grace) until it is back
    /// under.
    Suspend,
}

/// The job that measures every hosting account's disk use.
pub const DISK_USAGE_JOB: &str = "hosting.disk_usage";

/// The tenant's rule for accounts over quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaPolicy {
    pub action: OverQuotaAction,
    /// How long an account may stay over before `Suspend` applies.
    pub grace: Duration,
}

/// A quota in MB (as plans state it) in bytes; `None` is unlimited.
pub fn quota_bytes(quota_mb: Option<i64>) -> Option<i64> {
    quota_mb
        .filter(|mb| *mb > 0)
        .map(|mb| mb.saturating_mul(1024 * 1024))
}

/// Over quota: using more than the quota (using exactly all is allowed).
pub fn is_over(used_bytes: i64, quota_bytes: Option<i64>) -> bool {
    quota_bytes.is_some_and(|q| used_bytes > q)
}

/// What was recorded about the account's quota before this measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuotaState {
    /// The first measurement of the current stretch over quota.
    pub over_since: Option<OffsetDateTime>,
    /// The account is suspended because it is over quota (and only a
    /// measurement under quota lifts that).
    pub suspended_for_quota: bool,
}

/// Where the account stands apart from its quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// The site is served (not suspended, for any reason).
    pub account_active: bool,
    /// Its subscription is suspended (non-payment or staff): that
    /// suspension holds the account whatever its disk use.
    pub subscription_suspended: bool,
}

/// What the node must be asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStep {
    Nothing,
    Suspend,
    Unsuspend,
}

/// The outcome of one measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assessment {
    pub over: bool,
    /// What to record for the next measurement.
    pub state: QuotaState,
    /// It just went over: tell the tenant (once per stretch over quota).
    pub newly_over: bool,
    /// It just came back under after being over.
    pub back_under: bool,
    pub step: NodeStep,
}

/// Decides what one measurement means.
///
/// Over quota with `Suspend` and the grace spent: an active account is
/// suspended; one held by its subscription's suspension is marked, so that
/// lifting that suspension (a payment) leaves it suspended. An account
/// suspended directly by staff while its subscription is active is left to
/// staff (not marked: freeing space must not lift staff's suspension).
///
/// Under quota: the mark is cleared, and the site is unsuspended only if
/// the mark was the one reason (its subscription is not suspended).
pub fn assess(
    policy: QuotaPolicy,
    used_bytes: i64,
    quota_bytes: Option<i64>,
    before: QuotaState,
    standing: Standing,
    now: OffsetDateTime,
) -> Assessment {
    let over = is_over(used_bytes, quota_bytes);
    if !over {
        let step = if before.suspended_for_quota && !standing.subscription_suspended {
            NodeStep::Unsuspend
        } else {
            NodeStep::Nothing
        };
        return Assessment {
            over,
            state: QuotaState::default(),
            newly_over: false,
            back_under: before.over_since.is_some() || before.suspended_for_quota,
            step,
        };
    }
    let since = before.over_since.unwrap_or(now);
    let enforce = policy.action == OverQuotaAction::Suspend && now - since >= policy.grace;
    let (suspended_for_quota, step) = if !enforce {
        // The policy changed to NOTIFY (or the grace grew): a suspension
        // this rule made is lifted, as if the account were back under.
        if before.suspended_for_quota && !standing.subscription_suspended {
            (false, NodeStep::Unsuspend)
        } else {
            (false, NodeStep::Nothing)
        }
    } else if standing.account_active {
        (true, NodeStep::Suspend)
    } else if standing.subscription_suspended || before.suspended_for_quota {
        (true, NodeStep::Nothing)
    } else {
        (false, NodeStep::Nothing)
    };
    Assessment {
        over,
        state: QuotaState {
            over_since: Some(since),
            suspended_for_quota,
        },
        newly_over: before.over_since.is_none(),
        back_under: false,
        step,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: i64 = 1024 * 1024;

    fn at(hours: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::days(20_000) + Duration::hours(hours)
    }

    fn policy(action: OverQuotaAction, grace_hours: i64) -> QuotaPolicy {
        QuotaPolicy {
            action,
            grace: Duration::hours(grace_hours),
        }
    }

    const ACTIVE: Standing = Standing {
        account_active: true,
        subscription_suspended: false,
    };
    const DUNNED: Standing = Standing {
        account_active: false,
        subscription_suspended: true,
    };
    const STAFF_SUSPENDED: Standing = Standing {
        account_active: false,
        subscription_suspended: false,
    };

    #[test]
    fn over_means_more_than_the_quota_and_no_quota_is_unlimited() {
        assert_eq!(quota_bytes(Some(5)), Some(5 * MB));
        assert_eq!(quota_bytes(None), None);
        assert_eq!(quota_bytes(Some(0)), None, "0 MB in a plan means unlimited");
        assert!(!is_over(5 * MB, Some(5 * MB)));
        assert!(is_over(5 * MB + 1, Some(5 * MB)));
        assert!(!is_over(i64::MAX, None));
    }

    #[test]
    fn notify_tells_once_per_stretch_and_never_suspends() {
        let p = policy(OverQuotaAction::Notify, 0);
        let first = assess(
            p,
            6 * MB,
            Some(5 * MB),
            QuotaState::default(),
            ACTIVE,
            at(0),
        );
        assert!(first.over && first.newly_over);
        assert_eq!(first.step, NodeStep::Nothing);
        assert_eq!(first.state.over_since, Some(at(0)));
        let again = assess(p, 7 * MB, Some(5 * MB), first.state, ACTIVE, at(1));
        assert!(again.over && !again.newly_over, "told once, not every hour");
        assert_eq!(again.state.over_since, Some(at(0)));
        let under = assess(p, 4 * MB, Some(5 * MB), again.state, ACTIVE, at(2));
        assert!(!under.over && under.back_under);
        assert_eq!(under.state, QuotaState::default());
        assert_eq!(under.step, NodeStep::Nothing);
        let over_again = assess(p, 6 * MB, Some(5 * MB), under.state, ACTIVE, at(3));
        assert!(over_again.newly_over, "a new stretch over is told again");
    }

    #[test]
    fn suspend_waits_for_the_grace_then_suspends_and_lifts_when_back_under() {
        let p = policy(OverQuotaAction::Suspend, 24);
        let first = assess(
            p,
            6 * MB,
            Some(5 * MB),
            QuotaState::default(),
            ACTIVE,
            at(0),
        );
        assert_eq!(first.step, NodeStep::Nothing, "within the grace");
        assert!(first.newly_over);
        let later = assess(p, 6 * MB, Some(5 * MB), first.state, ACTIVE, at(23));
        assert_eq!(later.step, NodeStep::Nothing);
        let due = assess(p, 6 * MB, Some(5 * MB), later.state, ACTIVE, at(24));
        assert_eq!(due.step, NodeStep::Suspend);
        assert!(due.state.suspended_for_quota);
        let suspended = Standing {
            account_active: false,
            ..ACTIVE
        };
        let still = assess(p, 6 * MB, Some(5 * MB), due.state, suspended, at(25));
        assert_eq!(still.step, NodeStep::Nothing, "asked once");
        assert!(still.state.suspended_for_quota);
        let freed = assess(p, 5 * MB, Some(5 * MB), still.state, suspended, at(26));
        assert_eq!(freed.step, NodeStep::Unsuspend);
        assert!(freed.back_under);
        assert_eq!(freed.state, QuotaState::default());
    }

    #[test]
    fn no_grace_suspends_at_the_first_measurement_over() {
        let p = policy(OverQuotaAction::Suspend, 0);
        let a = assess(
            p,
            6 * MB,
            Some(5 * MB),
            QuotaState::default(),
            ACTIVE,
            at(0),
        );
        assert_eq!(a.step, NodeStep::Suspend);
        assert!(a.newly_over);
    }

    #[test]
    fn freeing_space_does_not_lift_a_suspension_for_non_payment() {
        let p = policy(OverQuotaAction::Suspend, 0);
        let suspended_for_quota = QuotaState {
            over_since: Some(at(0)),
            suspended_for_quota: true,
        };
        let a = assess(p, MB, Some(5 * MB), suspended_for_quota, DUNNED, at(1));
        assert_eq!(a.step, NodeStep::Nothing);
        assert!(!a.state.suspended_for_quota, "the quota no longer holds it");
    }

    #[test]
    fn an_account_over_quota_while_dunned_is_marked_so_payment_leaves_it_suspended() {
        let p = policy(OverQuotaAction::Suspend, 0);
        let a = assess(
            p,
            6 * MB,
            Some(5 * MB),
            QuotaState::default(),
            DUNNED,
            at(0),
        );
        assert_eq!(a.step, NodeStep::Nothing, "already suspended");
        assert!(a.state.suspended_for_quota);
    }

    #[test]
    fn staff_suspension_is_staffs_to_lift() {
        let p = policy(OverQuotaAction::Suspend, 0);
        let over = assess(
            p,
            6 * MB,
            Some(5 * MB),
            QuotaState::default(),
            STAFF_SUSPENDED,
            at(0),
        );
        assert_eq!(over.step, NodeStep::Nothing);
        assert!(!over.state.suspended_for_quota);
        let under = assess(p, MB, Some(5 * MB), over.state, STAFF_SUSPENDED, at(1));
        assert_eq!(under.step, NodeStep::Nothing, "not the quota's to lift");
        // Staff unsuspended an account the quota suspended: still over,
        // it is suspended again at the next measurement.
        let marked = QuotaState {
            over_since: Some(at(0)),
            suspended_for_quota: true,
        };
        let again = assess(p, 6 * MB, Some(5 * MB), marked, ACTIVE, at(2));
        assert_eq!(again.step, NodeStep::Suspend);
    }

    #[test]
    fn switching_the_policy_to_notify_lifts_the_quotas_suspension() {
        let p = policy(OverQuotaAction::Notify, 0);
        let marked = QuotaState {
            over_since: Some(at(0)),
            suspended_for_quota: true,
        };
        let suspended = Standing {
            account_active: false,
            ..ACTIVE
        };
        let a = assess(p, 6 * MB, Some(5 * MB), marked, suspended, at(1));
        assert_eq!(a.step, NodeStep::Unsuspend);
        assert!(a.over && !a.newly_over);
        assert!(!a.state.suspended_for_quota);
    }

    #[test]
    fn no_quota_is_never_over() {
        let p = policy(OverQuotaAction::Suspend, 0);
        let a = assess(p, i64::MAX, None, QuotaState::default(), ACTIVE, at(0));
        assert!(!a.over && !a.newly_over && !a.back_under);
        assert_eq!(a.step, NodeStep::Nothing);
    }
}
