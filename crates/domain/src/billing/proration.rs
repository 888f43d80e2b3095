//! Proration of a plan change inside the current period.
//!
//! The period is measured in units: seconds for an hourly plan, the
//! tenant's local calendar days otherwise. `total` is the period's length
//! in units and `remaining` what is left of it at the change:
//!
//! - hourly: `total = end − start`, `remaining = end − at` (whole seconds);
//! - monthly/yearly: `total = date(end) − date(start)` and
//!   `remaining = date(end) − date(at)` in local dates, so the day of the
//!   change is charged at the new price.
//!
//! The customer is credited `old × remaining / total` for the unused part
//! of the old plan and charged `new × remaining / total` for the rest of
//! the period on the new one, each rounded half away from zero to minor
//! units, in exact integer arithmetic.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use time::OffsetDateTime;

use super::calendar::{Cycle, to_ts};

/// A plan change inside the current period.
#[derive(Debug, Clone)]
pub struct PlanChange {
    pub old_amount_minor: i64,
    pub new_amount_minor: i64,
    pub period_start: OffsetDateTime,
    pub period_end: OffsetDateTime,
    pub at: OffsetDateTime,
    pub cycle: Cycle,
    pub zone: TimeZone,
}

/// What a plan change credits and charges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proration {
    /// Credit for the unused part of the old plan (>= 0).
    pub credit_minor: i64,
    /// Charge for the rest of the period on the new one (>= 0).
    pub charge_minor: i64,
    /// Units left in the period (seconds for hourly, days otherwise).
    pub remaining: i64,
    /// Units in the period.
    pub total: i64,
}

impl Proration {
    /// What the customer owes for the change (negative: what they get back).
    pub fn net_minor(&self) -> i64 {
        self.charge_minor - self.credit_minor
    }
}

/// Prorates `change`. `Err(message)` when `at` is not inside
/// `[period_start, period_end)`, an amount is negative, or the period is
/// empty in its units (shorter than a second, or inside one local day).
pub fn prorate(change: &PlanChange) -> Result<Proration, String> {
    let c = change;
    if c.old_amount_minor < 0 || c.new_amount_minor < 0 {
        return Err("plan amounts must not be negative".into());
    }
    if !(c.period_start <= c.at && c.at < c.period_end) {
        return Err("the change must fall inside the current period".into());
    }
    let (remaining, total) = match c.cycle {
        Cycle::Hourly => (
            (c.period_end - c.at).whole_seconds(),
            (c.period_end - c.period_start).whole_seconds(),
        ),
        Cycle::Monthly | Cycle::Yearly => {
            let (start, end, at) = (
                local_date(c.period_start, &c.zone),
                local_date(c.period_end, &c.zone),
                local_date(c.at, &c.zone),
            );
            (days_between(at, end), days_between(start, end))
        }
    };
    if total <= 0 {
        return Err("the period is empty".into());
    }
    Ok(Proration {
        credit_minor: share(c.old_amount_minor, remaining, total),
        charge_minor: share(c.new_amount_minor, remaining, total),
        remaining,
        total,
    })
}

/// `amount × part / whole` rounded half away from zero; all non-negative,
/// `part <= whole`, so the result fits.
fn share(amount: i64, part: i64, whole: i64) -> i64 {
    let num = 2 * i128::from(amount) * i128::from(part) + i128::from(whole);
    let q = num / (2 * i128::from(whole));
    i64::try_from(q).unwrap_or(amount)
}

fn local_date(t: OffsetDateTime, zone: &TimeZone) -> Date {
    to_ts(t).to_zoned(zone.clone()).date()
}

fn days_between(a: Date, b: Date) -> i64 {
    let epoch_day = |d: Date| {
        // Days since 1970-01-01 (civil proleptic Gregorian).
        let (y, m, day) = (
            i64::from(d.year()),
            i64::from(d.month()),
            i64::from(d.day()),
        );
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    };
    epoch_day(b) - epoch_day(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::calendar::Schedule;
    use proptest::prelude::*;
    use time::macros::datetime;

    fn change(old: i64, new: i64, s: &Schedule, n: u32, at: OffsetDateTime) -> PlanChange {
        let (period_start, period_end) = s.period(n);
        PlanChange {
            old_amount_minor: old,
            new_amount_minor: new,
            period_start,
            period_end,
            at,
            cycle: s.cycle,
            zone: s.zone.clone(),
        }
    }

    #[test]
    fn days_between_counts_civil_days() {
        use jiff::civil::date;
        assert_eq!(days_between(date(2027, 1, 1), date(2027, 2, 1)), 31);
        assert_eq!(days_between(date(2028, 2, 1), date(2028, 3, 1)), 29);
        assert_eq!(days_between(date(1969, 12, 31), date(1970, 1, 1)), 1);
        assert_eq!(days_between(date(2000, 1, 1), date(2100, 1, 1)), 36_525);
    }

    #[test]
    fn example_31_day_month() {
        // 2027-01-01 00:00 Berlin → 2027-02-01; upgrade 10.00 → 25.00 on Jan 21.
        let s = Schedule::new(
            datetime!(2026-12-31 23:00 UTC),
            Cycle::Monthly,
            "Europe/Berlin",
        )
        .unwrap();
        let p = prorate(&change(1000, 2500, &s, 0, datetime!(2027-01-21 08:00 UTC))).unwrap();
        assert_eq!((p.remaining, p.total), (11, 31));
        // 1000 × 11 / 31 = 354.8… → 355; 2500 × 11 / 31 = 887.09… → 887.
        assert_eq!(
            (p.credit_minor, p.charge_minor, p.net_minor()),
            (355, 887, 532)
        );
    }

    #[test]
    fn example_february() {
        // 2027-02-15 → 2027-03-15 (28 days) in New York; downgrade 30.00 → 12.00
        // on Mar 1, local evening (already Mar 2 in UTC).
        let s = Schedule::new(
            datetime!(2027-01-15 17:00 UTC),
            Cycle::Monthly,
            "America/New_York",
        )
        .unwrap();
        let p = prorate(&change(3000, 1200, &s, 1, datetime!(2027-03-02 03:00 UTC))).unwrap();
        assert_eq!((p.remaining, p.total), (14, 28));
        assert_eq!(
            (p.credit_minor, p.charge_minor, p.net_minor()),
            (1500, 600, -900)
        );
    }

    #[test]
    fn example_hourly() {
        // 0.10/h → 0.25/h, 20 minutes into the hour: 2400 of 3600 s left.
        let s = Schedule::new(datetime!(2027-05-01 12:00 UTC), Cycle::Hourly, "UTC").unwrap();
        let p = prorate(&change(10, 25, &s, 3, datetime!(2027-05-01 15:20 UTC))).unwrap();
        assert_eq!((p.remaining, p.total), (2400, 3600));
        // 10 × 2/3 = 6.67 → 7; 25 × 2/3 = 16.67 → 17.
        assert_eq!((p.credit_minor, p.charge_minor, p.net_minor()), (7, 17, 10));
    }

    #[test]
    fn half_rounds_away_from_zero_and_day_of_change_is_new_price() {
        let s = Schedule::new(datetime!(2027-04-01 0:00 UTC), Cycle::Monthly, "UTC").unwrap();
        // April: 30 days; change on Apr 16 → 15 days left.
        let p = prorate(&change(1, 3, &s, 0, datetime!(2027-04-16 23:59 UTC))).unwrap();
        assert_eq!((p.remaining, p.total), (15, 30));
        assert_eq!((p.credit_minor, p.charge_minor), (1, 2)); // 0.5 → 1, 1.5 → 2
        // At the very start everything is credited and charged.
        let p = prorate(&change(999, 1234, &s, 0, s.anchor)).unwrap();
        assert_eq!((p.credit_minor, p.charge_minor), (999, 1234));
    }

    #[test]
    fn bad_input() {
        let s = Schedule::new(datetime!(2027-04-01 0:00 UTC), Cycle::Monthly, "UTC").unwrap();
        let (start, end) = s.period(0);
        assert!(prorate(&change(-1, 5, &s, 0, start)).is_err());
        assert!(prorate(&change(1, -5, &s, 0, start)).is_err());
        assert!(prorate(&change(1, 5, &s, 0, end)).is_err());
        assert!(prorate(&change(1, 5, &s, 0, start - time::Duration::SECOND)).is_err());
    }

    const ZONES: [&str; 4] = [
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Pacific/Auckland",
    ];

    proptest! {
        /// For any change inside a period: 0 <= credit <= old, 0 <= charge <= new,
        /// remaining <= total, so -old <= net <= new and |net| <= max(old, new);
        /// and A→B then B→A at the same instant nets to exactly zero (the
        /// brief's bound, |net1 + net2| <= 2, is asserted too).
        #[test]
        fn prorations_are_bounded_and_reversible(
            old in 0i64..=10_000_000,
            new in 0i64..=10_000_000,
            anchor in 946_684_800i64..2_524_608_000,
            zone in 0usize..ZONES.len(),
            cycle in prop_oneof![Just(Cycle::Hourly), Just(Cycle::Monthly), Just(Cycle::Yearly)],
            n in 0u32..400,
            frac in 0u64..1_000_000,
        ) {
            let s = Schedule::new(
                OffsetDateTime::from_unix_timestamp(anchor).unwrap(),
                cycle,
                ZONES[zone],
            ).unwrap();
            let (start, end) = s.period(n);
            let len = (end - start).whole_seconds();
            let offset = i64::try_from(u64::try_from(len).unwrap() * frac / 1_000_000).unwrap();
            let at = start + time::Duration::seconds(offset);
            let p = prorate(&change(old, new, &s, n, at)).unwrap();
            prop_assert!(0 <= p.remaining && p.remaining <= p.total);
            prop_assert!(0 <= p.credit_minor && p.credit_minor <= old);
            prop_assert!(0 <= p.charge_minor && p.charge_minor <= new);
            prop_assert!(-old <= p.net_minor() && p.net_minor() <= new);
            prop_assert!(p.net_minor().abs() <= old.max(new));
            let back = prorate(&change(new, old, &s, n, at)).unwrap();
            prop_assert_eq!(p.net_minor() + back.net_minor(), 0);
            prop_assert!((p.net_minor() + back.net_minor()).abs() <= 2);
        }
    }
}
