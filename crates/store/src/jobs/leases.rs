//! A worker's hold on the jobs it runs: renewed while they run, given
//! back when it stops, and taken back when it vanished.

use mpanel_domain::JobId;
use sqlx::QueryBuilder;
use time::OffsetDateTime;

use crate::{Store, StoreResult};

impl Store {
    /// Extends the leases of `ids`, those of them `worker` still holds.
    pub async fn renew_leases(
        &self,
        worker: &str,
        ids: &[JobId],
        until: OffsetDateTime,
    ) -> StoreResult<u64> {
        let mut renewed = 0;
        for chunk in ids.chunks(1000) {
            renewed += on_pool!(self.writer, |p| {
                let mut q = QueryBuilder::new("UPDATE jobs SET locked_until = ");
                q.push_bind(until)
                    .push(" WHERE locked_by = ")
                    .push_bind(worker)
                    .push(" AND id IN (");
                let mut sep = q.separated(", ");
                for id in chunk {
                    sep.push_bind(id.as_uuid());
                }
                q.push(")");
                q.build().execute(p).await?.rows_affected()
            });
        }
        Ok(renewed)
    }

    /// Gives back the jobs `worker` holds (graceful shutdown), uncounted,
    /// so another worker takes them at once.
    pub async fn release_jobs(
        &self,
        worker: &str,
        ids: Option<&[JobId]>,
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        let n = on_pool!(self.writer, |p| {
            let mut q = QueryBuilder::new(
                "UPDATE jobs SET state = 'pending', attempts = attempts - 1, locked_by = NULL, locked_until = NULL, updated_at = ",
            );
            q.push_bind(now)
                .push(" WHERE state = 'running' AND locked_by = ")
                .push_bind(worker);
            if let Some(ids) = ids {
                if ids.is_empty() {
                    return Ok(0);
                }
                q.push(" AND id IN (");
                let mut sep = q.separated(", ");
                for id in ids {
                    sep.push_bind(id.as_uuid());
                }
                q.push(")");
            }
            q.build().execute(p).await?.rows_affected()
        });
        if n > 0 {
            self.job_wakeup.notify_one();
        }
        Ok(n)
    }

    /// Jobs whose worker vanished (lease lapsed) become claimable again, or
    /// dead when that was their last attempt.
    pub async fn requeue_expired_leases(&self, now: OffsetDateTime) -> StoreResult<u64> {
        let n = on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE jobs SET
                     state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'pending' END,
                     finished_at = CASE WHEN attempts >= max_attempts THEN $1 ELSE NULL END,
                     last_error = 'the worker holding this job stopped renewing its lease',
                     locked_by = NULL, locked_until = NULL, run_at = $1, updated_at = $1
                 WHERE state = 'running' AND locked_until < $1",
            )
            .bind(now)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n)
    }
}
