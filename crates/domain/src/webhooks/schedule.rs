//! When a failed delivery is tried again: the schedule the Standard
//! Webhooks specification recommends (5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
//! then every 10 h), until three days after the event; an endpoint whose
//! deliveries have failed without a success for five days is disabled.

use time::{Duration, OffsetDateTime};

/// No delivery is tried after this long since its event.
pub const GIVE_UP_AFTER: Duration = Duration::days(3);
/// An endpoint failing this long, with no success in between, is disabled.
pub const DISABLE_AFTER: Duration = Duration::days(5);

const DELAYS: [Duration; 6] = [
    Duration::seconds(5),
    Duration::minutes(5),
    Duration::minutes(30),
    Duration::hours(2),
    Duration::hours(5),
    Duration::hours(10),
];

/// After `failed_attempts` failures (≥ 1) of a delivery created at
/// `created`, the last at `now`: when to try again, or `None` to give up.
pub fn next_attempt(
    created: OffsetDateTime,
    failed_attempts: u32,
    now: OffsetDateTime,
) -> Option<OffsetDateTime> {
    let index = (failed_attempts.max(1) - 1) as usize;
    let delay = DELAYS[index.min(DELAYS.len() - 1)];
    let at = now + delay;
    (at <= created + GIVE_UP_AFTER).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn delays_grow_then_stop_after_three_days() {
        let created = datetime!(2026-01-01 0:00 UTC);
        let mut now = created;
        let mut waits = Vec::new();
        for attempt in 1.. {
            match next_attempt(created, attempt, now) {
                Some(at) => {
                    waits.push(at - now);
                    now = at;
                }
                None => break,
            }
        }
        assert_eq!(&waits[..6], &DELAYS[..]);
        assert!(waits.windows(2).all(|w| w[0] <= w[1]));
        assert!(now <= created + GIVE_UP_AFTER);
        assert!(now + Duration::hours(10) > created + GIVE_UP_AFTER);
        assert_eq!(waits.len(), 11);
    }
}
