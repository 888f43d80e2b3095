//! Dunning: the reminders, suspension and termination that follow an
//! unpaid invoice, at whole days (24 h) before or after its due date.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

/// A tenant's dunning policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DunningPolicy {
    /// Reminders this many days before the due date.
    #[schema(max_items = 10, value_type = Vec<u16>)]
    pub reminder_days_before: Vec<u32>,
    /// Reminders this many days after the due date.
    #[schema(max_items = 10, value_type = Vec<u16>)]
    pub reminder_days_overdue: Vec<u32>,
    /// Suspend the service this many days after the due date.
    #[schema(minimum = 1, maximum = 365)]
    pub suspend_after_days: u32,
    /// Terminate the service this many days after the due date (after
    /// `suspend_after_days`).
    #[schema(minimum = 2, maximum = 365)]
    pub terminate_after_days: u32,
}

impl Default for DunningPolicy {
    fn default() -> Self {
        DunningPolicy {
            reminder_days_before: vec![3],
            reminder_days_overdue: vec![1, 3, 7],
            suspend_after_days: 7,
            terminate_after_days: 30,
        }
    }
}

const MAX_DAYS: u32 = 365;
const MAX_REMINDERS: usize = 10;

impl DunningPolicy {
    /// `Err((field, message))` when a list has more than 10 entries or
    /// duplicates, any value is over 365, `suspend_after_days` is 0, or
    /// `terminate_after_days` is not after `suspend_after_days`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        for (field, list) in [
            ("reminder_days_before", &self.reminder_days_before),
            ("reminder_days_overdue", &self.reminder_days_overdue),
        ] {
            if list.len() > MAX_REMINDERS {
                return Err((field, format!("at most {MAX_REMINDERS} reminders")));
            }
            if list.iter().any(|&d| d > MAX_DAYS) {
                return Err((field, format!("days must be at most {MAX_DAYS}")));
            }
            if list.iter().enumerate().any(|(i, d)| list[..i].contains(d)) {
                return Err((field, "days must not repeat".into()));
            }
        }
        for (field, days) in [
            ("suspend_after_days", self.suspend_after_days),
            ("terminate_after_days", self.terminate_after_days),
        ] {
            if days > MAX_DAYS {
                return Err((field, format!("must be at most {MAX_DAYS}")));
            }
        }
        if self.suspend_after_days == 0 {
            return Err(("suspend_after_days", "must be at least 1".into()));
        }
        if self.terminate_after_days <= self.suspend_after_days {
            return Err((
                "terminate_after_days",
                "must be after suspend_after_days".into(),
            ));
        }
        Ok(())
    }

    /// Every step of the policy, unordered; a reminder day listed both
    /// before and overdue (only 0 can be) appears once.
    fn steps(&self) -> Vec<DunningStep> {
        let mut steps: Vec<DunningStep> = Vec::new();
        let before = self.reminder_days_before.iter().map(|&d| -day(d));
        let after = self.reminder_days_overdue.iter().map(|&d| day(d));
        for days in before.chain(after) {
            let step = DunningStep::Reminder { days };
            if !steps.contains(&step) {
                steps.push(step);
            }
        }
        steps.extend([DunningStep::Suspend, DunningStep::Terminate]);
        steps
    }
}

fn day(d: u32) -> i32 {
    i32::try_from(d).unwrap_or(i32::MAX)
}

/// One dunning action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DunningStep {
    /// A payment reminder; `days` relative to the due date: negative
    /// before, positive after.
    Reminder {
        days: i32,
    },
    Suspend,
    Terminate,
}

impl DunningStep {
    /// A stable key to record that the step was done: `reminder:-3`,
    /// `reminder:+1`, `suspend`, `terminate`.
    pub fn key(&self) -> String {
        match self {
            DunningStep::Reminder { days } => format!("reminder:{days:+}"),
            DunningStep::Suspend => "suspend".into(),
            DunningStep::Terminate => "terminate".into(),
        }
    }

    /// When the step is due for an invoice due at `due_at`: whole 24-hour
    /// days from it.
    pub fn at(&self, policy: &DunningPolicy, due_at: OffsetDateTime) -> OffsetDateTime {
        let days = match self {
            DunningStep::Reminder { days } => i64::from(*days),
            DunningStep::Suspend => i64::from(policy.suspend_after_days),
            DunningStep::Terminate => i64::from(policy.terminate_after_days),
        };
        due_at
            .checked_add(Duration::days(days))
            .unwrap_or(if days < 0 {
                PrimitiveDateTime::MIN.assume_utc()
            } else {
                PrimitiveDateTime::MAX.assume_utc()
            })
    }

    fn rank(&self) -> u8 {
        match self {
            DunningStep::Reminder { .. } => 0,
            DunningStep::Suspend => 1,
            DunningStep::Terminate => 2,
        }
    }
}

/// Every step whose moment (`due_at + days × 24 h`) is `<= as_of`, ordered
/// by moment (reminders before suspend before terminate at the same moment).
pub fn steps_due(
    policy: &DunningPolicy,
    due_at: OffsetDateTime,
    as_of: OffsetDateTime,
) -> Vec<DunningStep> {
    let mut due: Vec<(OffsetDateTime, DunningStep)> = policy
        .steps()
        .into_iter()
        .map(|s| (s.at(policy, due_at), s))
        .filter(|(at, _)| *at <= as_of)
        .collect();
    due.sort_by_key(|(at, s)| (*at, s.rank()));
    due.into_iter().map(|(_, s)| s).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use DunningStep::*;
    use time::macros::datetime;

    const DUE: OffsetDateTime = datetime!(2027-03-10 12:00 UTC);

    fn keys(as_of: OffsetDateTime) -> Vec<String> {
        steps_due(&DunningPolicy::default(), DUE, as_of)
            .iter()
            .map(DunningStep::key)
            .collect()
    }

    #[test]
    fn default_steps_over_time() {
        assert!(keys(datetime!(2027-03-07 11:59:59 UTC)).is_empty());
        assert_eq!(keys(datetime!(2027-03-07 12:00 UTC)), ["reminder:-3"]);
        assert_eq!(keys(DUE), ["reminder:-3"]);
        assert_eq!(
            keys(datetime!(2027-03-13 12:00 UTC)),
            ["reminder:-3", "reminder:+1", "reminder:+3"]
        );
        // Day 7: the last reminder goes out before the suspension.
        assert_eq!(
            keys(datetime!(2027-03-17 12:00 UTC)),
            [
                "reminder:-3",
                "reminder:+1",
                "reminder:+3",
                "reminder:+7",
                "suspend"
            ]
        );
        assert_eq!(
            keys(datetime!(2027-04-09 11:00 UTC)).last().unwrap(),
            "suspend"
        );
        assert_eq!(
            keys(datetime!(2027-04-09 12:00 UTC)).last().unwrap(),
            "terminate"
        );
    }

    #[test]
    fn at_and_keys() {
        let p = DunningPolicy::default();
        assert_eq!(
            Reminder { days: -3 }.at(&p, DUE),
            datetime!(2027-03-07 12:00 UTC)
        );
        assert_eq!(Suspend.at(&p, DUE), datetime!(2027-03-17 12:00 UTC));
        assert_eq!(Terminate.at(&p, DUE), datetime!(2027-04-09 12:00 UTC));
        assert_eq!(Reminder { days: 0 }.key(), "reminder:+0");
    }

    #[test]
    fn same_moment_orders_reminder_suspend_terminate_and_dedupes_day_zero() {
        let p = DunningPolicy {
            reminder_days_before: vec![0],
            reminder_days_overdue: vec![0, 2],
            suspend_after_days: 2,
            terminate_after_days: 5,
        };
        let steps = steps_due(&p, DUE, datetime!(2027-03-20 0:00 UTC));
        assert_eq!(
            steps,
            [
                Reminder { days: 0 },
                Reminder { days: 2 },
                Suspend,
                Terminate
            ]
        );
    }

    #[test]
    fn check_rejects_bad_policies() {
        assert!(DunningPolicy::default().check().is_ok());
        let with = |f: fn(&mut DunningPolicy)| {
            let mut p = DunningPolicy::default();
            f(&mut p);
            p.check().map_err(|(field, _)| field)
        };
        assert_eq!(
            with(|p| p.reminder_days_before = (1..=11).collect()),
            Err("reminder_days_before")
        );
        assert_eq!(
            with(|p| p.reminder_days_overdue = vec![1, 366]),
            Err("reminder_days_overdue")
        );
        assert_eq!(
            with(|p| p.reminder_days_overdue = vec![1, 3, 1]),
            Err("reminder_days_overdue")
        );
        assert_eq!(
            with(|p| p.suspend_after_days = 0),
            Err("suspend_after_days")
        );
        assert_eq!(
            with(|p| p.terminate_after_days = 7),
            Err("terminate_after_days")
        );
        assert_eq!(
            with(|p| p.terminate_after_days = 400),
            Err("terminate_after_days")
        );
        assert_eq!(
            with(|p| p.reminder_days_before = (1..=10).collect()),
            Ok(())
        );
    }

    #[test]
    fn serde_defaults_and_unknown_fields() {
        let p: DunningPolicy = serde_json::from_str(r#"{"suspend_after_days": 10}"#).unwrap();
        assert_eq!(p.suspend_after_days, 10);
        assert_eq!(p.reminder_days_overdue, [1, 3, 7]);
        assert_eq!(
            serde_json::from_str::<DunningPolicy>("{}").unwrap(),
            DunningPolicy::default()
        );
        assert!(serde_json::from_str::<DunningPolicy>(r#"{"grace": 1}"#).is_err());
    }
}
