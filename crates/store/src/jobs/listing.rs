//! The queue as operators read it: one job, a page of jobs, counts.

use mpanel_domain::JobId;
use mpanel_domain::jobs::JobState;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{QueryBuilder, Row};
use time::OffsetDateTime;

use super::{COLUMNS, JobFilter, JobRecord, QueueStat, parse_state};
use crate::{Store, StoreResult};

impl Store {
    /// The job; `None` when there is none (pruned, or never was).
    pub async fn job(&self, id: JobId) -> StoreResult<Option<JobRecord>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"));
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(sql)
                .bind(id.as_uuid())
                .fetch_optional(p)
                .await?
            {
                Some(row) => Some(job_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// A page of jobs, newest first, older than `before`.
    pub async fn list_jobs(
        &self,
        filter: &JobFilter,
        before: Option<JobId>,
        limit: u32,
    ) -> StoreResult<Vec<JobRecord>> {
        let records = on_pool!(self.pool, |p| {
            // Only the filters given: `($1 IS NULL OR state = $1)` kept
            // SQLite from `jobs_by_state`, so listing the dead jobs among
            // two million walked through all of them (283 ms).
            let mut q = QueryBuilder::new(format!("SELECT {COLUMNS} FROM jobs WHERE TRUE"));
            if let Some(state) = filter.state {
                q.push(" AND state = ").push_bind(state.as_str());
            }
            if let Some(kind) = &filter.kind {
                q.push(" AND kind = ").push_bind(kind);
            }
            if let Some(queue) = &filter.queue {
                q.push(" AND queue = ").push_bind(queue);
            }
            if let Some(before) = before {
                q.push(" AND id < ").push_bind(before.as_uuid());
            }
            q.push(" ORDER BY id DESC LIMIT ")
                .push_bind(i64::from(limit));
            let mut out = Vec::new();
            for row in q.build().fetch_all(p).await? {
                out.push(job_from_row!(&row));
            }
            out
        });
        Ok(records)
    }

    pub async fn count_jobs(&self, state: JobState) -> StoreResult<i64> {
        let n = on_pool!(self.pool, |p| {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM jobs WHERE state = $1")
                .bind(state.as_str())
                .fetch_one(p)
                .await?
        });
        Ok(n)
    }

    /// Counts by queue, kind and state, with the oldest due pending job.
    pub async fn queue_stats(&self, now: OffsetDateTime) -> StoreResult<Vec<QueueStat>> {
        let stats = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(
                "SELECT queue, kind, state, COUNT(*) AS n,
                        MIN(CASE WHEN state IN ('pending', 'failed') AND run_at <= $1 THEN run_at END) AS oldest_due
                 FROM jobs GROUP BY queue, kind, state ORDER BY queue, kind, state",
            )
            .bind(now)
            .fetch_all(p)
            .await?
            {
                let state: String = row.try_get("state")?;
                out.push(QueueStat {
                    queue: row.try_get("queue")?,
                    kind: row.try_get("kind")?,
                    state: parse_state(&state)?,
                    count: row.try_get("n")?,
                    oldest_due: row.try_get("oldest_due")?,
                });
            }
            out
        });
        Ok(stats)
    }
}
