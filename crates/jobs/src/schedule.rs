//! Recurring jobs, enqueued once per slot across every node: the slot is
//! recorded in the same transaction as the job, under a primary key, so a
//! second node (or a second tick) finds it taken.

use std::sync::Arc;
use std::time::Duration;

use mpanel_domain::Clock;
use mpanel_store::Store;
use serde_json::Value;
use time::OffsetDateTime;

use crate::enqueue::JobOptions;

/// When a recurring job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Every so many seconds, slots aligned on the Unix epoch.
    Every(u32),
    /// Every day at this UTC time.
    DailyAt { hour: u8, minute: u8 },
}

impl Schedule {
    /// The start of the slot `now` falls in.
    pub fn slot_start(self, now: OffsetDateTime) -> OffsetDateTime {
        match self {
            Self::Every(secs) => {
                let secs = i64::from(secs.max(1));
                let t = now.unix_timestamp();
                OffsetDateTime::from_unix_timestamp(t - t.rem_euclid(secs)).unwrap_or(now)
            }
            Self::DailyAt { hour, minute } => {
                let today = now.replace_time(
                    time::Time::from_hms(hour.min(23), minute.min(59), 0)
                        .unwrap_or(time::Time::MIDNIGHT),
                );
                if today <= now {
                    today
                } else {
                    today - time::Duration::days(1)
                }
            }
        }
    }
}

/// A recurring job.
#[derive(Debug, Clone)]
pub struct Recurring {
    /// Unique among recurring jobs; part of each slot's key.
    pub name: String,
    pub schedule: Schedule,
    pub kind: String,
    pub payload: Value,
    pub options: JobOptions,
}

pub struct Scheduler {
    store: Store,
    clock: Arc<dyn Clock>,
    jobs: Vec<Recurring>,
}

impl Scheduler {
    pub fn new(store: Store, clock: Arc<dyn Clock>, jobs: Vec<Recurring>) -> Self {
        Self { store, clock, jobs }
    }

    /// Enqueues each recurring job for the current slot unless a node
    /// already did; returns how many this call enqueued.
    pub async fn tick(&self) -> Result<usize, mpanel_store::StoreError> {
        let now = self.clock.now();
        let mut enqueued = 0;
        for r in &self.jobs {
            let slot = r.schedule.slot_start(now);
            let slot_key = slot
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| slot.unix_timestamp().to_string());
            let mut payload = r.payload.clone();
            if let Value::Object(map) = &mut payload {
                map.insert("slot".into(), Value::String(slot_key.clone()));
            }
            let job = mpanel_store::jobs::NewJob {
                queue: r.options.queue.clone(),
                kind: r.kind.clone(),
                payload,
                priority: r.options.priority,
                run_at: slot.max(now),
                max_attempts: r.options.max_attempts.max(1),
                unique_key: Some(format!("{}@{slot_key}", r.name)),
            };
            let mut tx = self.store.begin().await?;
            if tx
                .enqueue_for_slot(&r.name, &slot_key, &job, now)
                .await?
                .is_some()
            {
                enqueued += 1;
                metrics::counter!("jobs_enqueued_total", "kind" => r.kind.clone()).increment(1);
                tracing::info!(name = %r.name, slot = %slot_key, "recurring job enqueued");
            }
            tx.commit().await?;
        }
        Ok(enqueued)
    }

    /// Ticks every `every` until `shutdown` resolves.
    pub async fn run(self, every: Duration, shutdown: impl std::future::Future<Output = ()>) {
        let mut interval = tokio::time::interval(every);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = interval.tick() => {
                    if let Err(err) = self.tick().await {
                        tracing::warn!(error = %err, "scheduler tick failed");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn slots_are_aligned() {
        let now = datetime!(2026-11-21 10:17:42 UTC);
        assert_eq!(
            Schedule::Every(60).slot_start(now),
            datetime!(2026-11-21 10:17 UTC)
        );
        assert_eq!(
            Schedule::Every(3600).slot_start(now),
            datetime!(2026-11-21 10:00 UTC)
        );
        let nightly = Schedule::DailyAt {
            hour: 2,
            minute: 30,
        };
        assert_eq!(nightly.slot_start(now), datetime!(2026-11-21 02:30 UTC));
        assert_eq!(
            nightly.slot_start(datetime!(2026-11-21 01:00 UTC)),
            datetime!(2026-11-20 02:30 UTC)
        );
    }
}
