//! Billing calendars: when a subscription's periods start.
//!
//! Hourly periods are absolute (`anchor + n × 3600 s`), so a DST change never
//! bills an hour twice or skips one. Monthly and yearly periods follow the
//! tenant's wall clock: period `n` starts at the anchor's local civil
//! date-time plus `n` months (or years), computed from the anchor each time
//! (never chained), with the day clamped to the month's last day (Jan 31 →
//! Feb 28/29 → Mar 31 → Apr 30; Feb 29 yearly → Feb 28 in common years). A
//! local time that does not exist (DST gap) moves forward by the gap; an
//! ambiguous one (DST fold) takes the earlier instant.
//!
//! Results are in UTC and keep the anchor's sub-second part, so `start(0)` is
//! the anchor itself. Instants beyond the calendar's range (year 9999)
//! saturate at its end.

use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::catalog::{Period, upper_enum};

upper_enum!(
    /// How often a subscription renews.
    Cycle { Hourly => "HOURLY", Monthly => "MONTHLY", Yearly => "YEARLY" }
);

impl Cycle {
    /// The cycle a price period renews on; `None` for a one-time price.
    pub fn from_period(p: Period) -> Option<Cycle> {
        match p {
            Period::OneTime => None,
            Period::Hourly => Some(Cycle::Hourly),
            Period::Monthly => Some(Cycle::Monthly),
            Period::Yearly => Some(Cycle::Yearly),
        }
    }
}

/// When a subscription's periods start: period n starts at the anchor's
/// local civil date-time (in the tenant's time zone) plus n cycles.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub anchor: OffsetDateTime,
    pub cycle: Cycle,
    pub zone: TimeZone,
}

const HOUR_NANOS: i128 = 3_600_000_000_000;

impl Schedule {
    /// A schedule in the IANA zone `zone`; `Err(message)` for an unknown zone.
    pub fn new(anchor: OffsetDateTime, cycle: Cycle, zone: &str) -> Result<Schedule, String> {
        let zone = TimeZone::get(zone).map_err(|_| format!("{zone:?} is not a known time zone"))?;
        Ok(Schedule {
            anchor,
            cycle,
            zone,
        })
    }

    /// Start of period n (n = 0 starts at the anchor).
    pub fn start(&self, n: u32) -> OffsetDateTime {
        let anchor = to_ts(self.anchor);
        let ts = match self.cycle {
            Cycle::Hourly => {
                Timestamp::from_nanosecond(anchor.as_nanosecond() + i128::from(n) * HOUR_NANOS)
                    .unwrap_or(Timestamp::MAX)
            }
            Cycle::Monthly => self.civil_plus(anchor, Span::new().try_months(i64::from(n))),
            Cycle::Yearly => self.civil_plus(anchor, Span::new().try_years(i64::from(n))),
        };
        from_ts(ts)
    }

    /// The half-open period `[start(n), start(n+1))`.
    pub fn period(&self, n: u32) -> (OffsetDateTime, OffsetDateTime) {
        (self.start(n), self.start(n.saturating_add(1)))
    }

    /// Index of the period containing `at`; 0 when `at` is before the anchor.
    pub fn index_at(&self, at: OffsetDateTime) -> u32 {
        if at <= self.anchor {
            return 0;
        }
        let (a, t) = (to_ts(self.anchor), to_ts(at));
        let estimate: i64 = match self.cycle {
            Cycle::Hourly => {
                let hours = (t.as_nanosecond() - a.as_nanosecond()) / HOUR_NANOS;
                i64::try_from(hours).unwrap_or(i64::MAX)
            }
            Cycle::Monthly | Cycle::Yearly => {
                let (ad, td) = (
                    a.to_zoned(self.zone.clone()).date(),
                    t.to_zoned(self.zone.clone()).date(),
                );
                let years = i64::from(td.year()) - i64::from(ad.year());
                if self.cycle == Cycle::Yearly {
                    years
                } else {
                    years * 12 + i64::from(td.month()) - i64::from(ad.month())
                }
            }
        };
        let mut n = u32::try_from(estimate.max(0)).unwrap_or(u32::MAX);
        // The estimate is off by at most one; adjust both ways.
        while n > 0 && self.start(n) > at {
            n -= 1;
        }
        while n < u32::MAX && self.start(n + 1) <= at && self.start(n + 1) > self.start(n) {
            n += 1;
        }
        n
    }

    /// The anchor's local civil date-time plus `span`, back to an instant
    /// with the compatible disambiguation.
    fn civil_plus(&self, anchor: Timestamp, span: Result<Span, jiff::Error>) -> Timestamp {
        let local = anchor.to_zoned(self.zone.clone()).datetime();
        span.and_then(|s| local.checked_add(s))
            .and_then(|dt| self.zone.to_ambiguous_zoned(dt).compatible())
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::MAX)
    }
}

/// A `time` instant as a `jiff` one, saturating at jiff's range.
pub(crate) fn to_ts(t: OffsetDateTime) -> Timestamp {
    let nanos = t.unix_timestamp_nanos();
    Timestamp::from_nanosecond(nanos).unwrap_or(if nanos < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// A `jiff` instant as a `time` one in UTC.
pub(crate) fn from_ts(ts: Timestamp) -> OffsetDateTime {
    let nanos = ts.as_nanosecond();
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(if nanos < 0 {
        PrimitiveDateTime::MIN.assume_utc()
    } else {
        PrimitiveDateTime::MAX.assume_utc()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{Date, date};
    use proptest::prelude::*;
    use time::macros::datetime;

    fn local(s: &Schedule, t: OffsetDateTime) -> jiff::civil::DateTime {
        to_ts(t).to_zoned(s.zone.clone()).datetime()
    }

    fn local_date(s: &Schedule, t: OffsetDateTime) -> Date {
        local(s, t).date()
    }

    #[test]
    fn cycle_from_period() {
        assert_eq!(Cycle::from_period(Period::OneTime), None);
        assert_eq!(Cycle::from_period(Period::Hourly), Some(Cycle::Hourly));
        assert_eq!(Cycle::from_period(Period::Monthly), Some(Cycle::Monthly));
        assert_eq!(Cycle::from_period(Period::Yearly), Some(Cycle::Yearly));
    }

    #[test]
    fn unknown_zone_is_an_error() {
        let err = Schedule::new(
            datetime!(2026-01-01 0:00 UTC),
            Cycle::Monthly,
            "Mars/Olympus",
        )
        .unwrap_err();
        assert!(err.contains("Mars/Olympus"));
    }

    #[test]
    fn monthly_from_jan_31_clamps_and_returns_to_the_31st() {
        // 2027-01-31 10:00 in Berlin (CET, +01:00).
        let s = Schedule::new(
            datetime!(2027-01-31 9:00 UTC),
            Cycle::Monthly,
            "Europe/Berlin",
        )
        .unwrap();
        let expected = [
            date(2027, 1, 31),
            date(2027, 2, 28),
            date(2027, 3, 31),
            date(2027, 4, 30),
            date(2027, 5, 31),
            date(2027, 6, 30),
            date(2027, 7, 31),
            date(2027, 8, 31),
            date(2027, 9, 30),
            date(2027, 10, 31),
            date(2027, 11, 30),
            date(2027, 12, 31),
            date(2028, 1, 31),
            date(2028, 2, 29),
            date(2028, 3, 31),
            date(2028, 4, 30),
            date(2028, 5, 31),
            date(2028, 6, 30),
            date(2028, 7, 31),
            date(2028, 8, 31),
            date(2028, 9, 30),
            date(2028, 10, 31),
            date(2028, 11, 30),
            date(2028, 12, 31),
            date(2029, 1, 31),
        ];
        for (n, want) in expected.iter().enumerate() {
            let n = u32::try_from(n).unwrap();
            let dt = local(&s, s.start(n));
            assert_eq!(dt.date(), *want, "period {n}");
            assert_eq!(
                (dt.hour(), dt.minute(), dt.second()),
                (10, 0, 0),
                "period {n}"
            );
            assert_eq!(s.index_at(s.start(n)), n);
        }
        assert_eq!(s.start(0), s.anchor);
        assert_eq!(s.period(1), (s.start(1), s.start(2)));
    }

    #[test]
    fn yearly_from_feb_29() {
        let s = Schedule::new(datetime!(2028-02-29 12:00 UTC), Cycle::Yearly, "UTC").unwrap();
        let got: Vec<Date> = (0..6).map(|n| local_date(&s, s.start(n))).collect();
        assert_eq!(
            got,
            [
                date(2028, 2, 29),
                date(2029, 2, 28),
                date(2030, 2, 28),
                date(2031, 2, 28),
                date(2032, 2, 29),
                date(2033, 2, 28),
            ]
        );
        assert_eq!(s.index_at(datetime!(2032-02-29 11:59:59 UTC)), 3);
        assert_eq!(s.index_at(datetime!(2032-02-29 12:00 UTC)), 4);
    }

    #[test]
    fn monthly_keeps_the_local_time_across_dst() {
        for zone in ["America/New_York", "Europe/Berlin"] {
            let s = Schedule::new(datetime!(2026-01-15 14:30 UTC), Cycle::Monthly, zone).unwrap();
            let first = local(&s, s.start(0)).time();
            for n in 0..24 {
                let (a, b) = s.period(n);
                assert_eq!(local(&s, a).time(), first, "{zone} period {n}");
                let secs = (b - a).whole_seconds();
                assert!(
                    (28 * 86_400 - 3_600..=31 * 86_400 + 3_600).contains(&secs),
                    "{zone} period {n}: {secs}"
                );
                assert!(b > a);
            }
        }
    }

    #[test]
    fn anchor_time_in_a_later_dst_gap_moves_forward() {
        // 2027-02-14 02:30 EST; 2027-03-14 02:30 does not exist in New York.
        let s = Schedule::new(
            datetime!(2027-02-14 7:30 UTC),
            Cycle::Monthly,
            "America/New_York",
        )
        .unwrap();
        let march = local(&s, s.start(1));
        assert_eq!(march.date(), date(2027, 3, 14));
        assert_eq!((march.hour(), march.minute()), (3, 30));
        let april = local(&s, s.start(2));
        assert_eq!((april.hour(), april.minute()), (2, 30));
        for n in 0..36 {
            assert!(s.start(n + 1) > s.start(n));
        }
    }

    #[test]
    fn ambiguous_local_time_takes_the_earlier_instant() {
        // 2026-10-25 02:30 happens twice in Berlin; the first is 00:30 UTC.
        let s = Schedule::new(
            datetime!(2026-09-25 0:30 UTC),
            Cycle::Monthly,
            "Europe/Berlin",
        )
        .unwrap();
        assert_eq!(s.start(1), datetime!(2026-10-25 0:30 UTC));
    }

    #[test]
    fn hourly_is_absolute_across_both_dst_changes() {
        // Berlin: 2026-03-29 has 23 hours, 2026-10-25 has 25.
        let s = Schedule::new(
            datetime!(2026-03-28 23:00 UTC),
            Cycle::Hourly,
            "Europe/Berlin",
        )
        .unwrap();
        let count_on = |day: Date| {
            (0..24 * 365)
                .filter(|&n| local_date(&s, s.start(n)) == day)
                .count()
        };
        for n in 0..24 * 365 {
            let (a, b) = s.period(n);
            assert_eq!((b - a).whole_seconds(), 3_600);
        }
        assert_eq!(count_on(date(2026, 3, 29)), 23);
        assert_eq!(count_on(date(2026, 10, 25)), 25);
        assert_eq!(count_on(date(2026, 6, 1)), 24);
        assert_eq!(s.index_at(datetime!(2026-03-29 1:59:59 UTC)), 2);
    }

    #[test]
    fn index_at_before_the_anchor_is_zero_and_far_future_saturates() {
        let s = Schedule::new(datetime!(2026-01-01 0:00 UTC), Cycle::Hourly, "UTC").unwrap();
        assert_eq!(s.index_at(datetime!(2020-01-01 0:00 UTC)), 0);
        assert_eq!(s.index_at(datetime!(2036-01-01 0:00 UTC)), 87_648);
        let far = s.start(u32::MAX);
        assert!(far > s.start(1));
    }

    const ZONES: [&str; 5] = [
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
    ];

    fn cycle_strategy() -> impl Strategy<Value = Cycle> {
        prop_oneof![
            Just(Cycle::Hourly),
            Just(Cycle::Monthly),
            Just(Cycle::Yearly)
        ]
    }

    proptest! {
        #[test]
        fn index_at_agrees_with_start(
            anchor in 946_684_800i64..2_524_608_000, // 2000..2050
            nanos in prop_oneof![Just(0u32), 0u32..1_000_000_000],
            zone in 0usize..ZONES.len(),
            cycle in cycle_strategy(),
            offset in -1_000_000i64..1_000_000_000, // up to ~31 years
        ) {
            let a = OffsetDateTime::from_unix_timestamp(anchor).unwrap()
                + time::Duration::nanoseconds(i64::from(nanos));
            let s = Schedule::new(a, cycle, ZONES[zone]).unwrap();
            let t = a + time::Duration::seconds(offset);
            let i = s.index_at(t);
            if t < a {
                prop_assert_eq!(i, 0);
            } else {
                prop_assert!(s.start(i) <= t);
                prop_assert!(t < s.start(i + 1));
                prop_assert!(s.start(i) < s.start(i + 1));
            }
        }
    }
}
