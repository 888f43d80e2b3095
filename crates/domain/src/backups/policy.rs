//! A plan's backup policy: the local time of day the backup runs and how
//! many daily and weekly snapshots are kept.

use serde::{Deserialize, Serialize};

/// From the plan's template (`backup: {at, keep_daily, keep_weekly}`),
/// defaults where it is silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupPolicy {
    /// Local time (the tenant's zone), `HH:MM`.
    #[serde(with = "hh_mm")]
    #[schema(value_type = String, example = "03:00")]
    pub at: time::Time,
    pub keep_daily: u32,
    pub keep_weekly: u32,
}

impl Default for BackupPolicy {
    fn default() -> Self {
        Self {
            at: time::Time::from_hms(3, 0, 0).unwrap_or(time::Time::MIDNIGHT),
            keep_daily: 7,
            keep_weekly: 4,
        }
    }
}

/// Why a policy is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyError {
    Keep,
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("keep_daily and keep_weekly must be 0 to 366 and keep at least one snapshot")
    }
}

impl BackupPolicy {
    pub fn check(&self) -> Result<(), PolicyError> {
        if self.keep_daily > 366
            || self.keep_weekly > 366
            || self.keep_daily + self.keep_weekly == 0
        {
            return Err(PolicyError::Keep);
        }
        Ok(())
    }

    /// The first run strictly after `now`: today at `at` in the tenant's
    /// zone when that is still ahead, else the next day's (a time that a
    /// daylight-saving change skips runs at the first instant after it).
    pub fn next_run(
        &self,
        now: time::OffsetDateTime,
        zone: &jiff::tz::TimeZone,
    ) -> time::OffsetDateTime {
        let ts = jiff::Timestamp::from_second(now.unix_timestamp())
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let today = ts.to_zoned(zone.clone()).date();
        let at = jiff::civil::time(self.at.hour() as i8, self.at.minute() as i8, 0, 0);
        let mut day = today;
        for _ in 0..3 {
            if let Ok(z) = day.to_datetime(at).to_zoned(zone.clone()) {
                let run = z.timestamp().as_second();
                if run > now.unix_timestamp() {
                    return time::OffsetDateTime::from_unix_timestamp(run).unwrap_or(now);
                }
            }
            day = day.tomorrow().unwrap_or(day);
        }
        now + time::Duration::days(1)
    }
}

mod hh_mm {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &time::Time, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:02}:{:02}", t.hour(), t.minute()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<time::Time, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).ok_or_else(|| serde::de::Error::custom("expected HH:MM (00:00 to 23:59)"))
    }

    pub fn parse(s: &str) -> Option<time::Time> {
        let (h, m) = s.split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        time::Time::from_hms(h.parse().ok()?, m.parse().ok()?, 0).ok()
    }
}

pub use hh_mm::parse as parse_hh_mm;

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn next_run_is_today_when_ahead_else_tomorrow_in_the_tenants_zone() {
        let p = BackupPolicy::default();
        let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        // 01:00 UTC is 02:00 in Berlin in winter: 03:00 local is ahead.
        assert_eq!(
            p.next_run(datetime!(2026-12-03 01:00 UTC), &berlin),
            datetime!(2026-12-03 02:00 UTC)
        );
        assert_eq!(
            p.next_run(datetime!(2026-12-03 02:00 UTC), &berlin),
            datetime!(2026-12-04 02:00 UTC)
        );
        // Summer time: 03:00 in Berlin is 01:00 UTC.
        assert_eq!(
            p.next_run(datetime!(2026-07-01 00:00 UTC), &berlin),
            datetime!(2026-07-01 01:00 UTC)
        );
    }

    #[test]
    fn policy_is_read_with_defaults_and_checked() {
        let p: BackupPolicy =
            serde_json::from_str(r#"{"at":"23:30","keep_daily":7,"keep_weekly":0}"#).unwrap();
        assert_eq!(p.at, time::Time::from_hms(23, 30, 0).unwrap());
        assert!(p.check().is_ok());
        assert!(
            serde_json::from_str::<BackupPolicy>(
                r#"{"at":"24:00","keep_daily":1,"keep_weekly":0}"#
            )
            .is_err()
        );
        assert!(
            BackupPolicy {
                keep_daily: 0,
                keep_weekly: 0,
                ..p
            }
            .check()
            .is_err()
        );
    }
}
