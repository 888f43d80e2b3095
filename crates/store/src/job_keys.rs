//! Jobs about one thing (a hosting account) under a shared key: they run
//! in the order they were asked for, and a newer request may replace the
//! ones still waiting.

use mpanel_domain::JobId;
use time::OffsetDateTime;

use crate::job_indexes::{JobIndex, jobs_via};
use crate::{Engine, Store, StoreResult, Tx};

// On SQLite each reads `jobs_unique_live`, its IN list written as the
// index writes it (`job_indexes`).

/// How many live jobs under the key `$1` were enqueued before `$2`.
pub(crate) fn earlier_unfinished_sql(engine: Engine) -> String {
    format!(
        "SELECT COUNT(*) FROM {jobs} WHERE unique_key = $1
           AND state IN ('pending', 'failed', 'running') AND id < $2",
        jobs = jobs_via(engine, JobIndex::UniqueLive)
    )
}

/// How many live jobs under a key starting with `$1` were enqueued before
/// `$2`; `$3` is the first key past the prefix's. The keys between are
/// looked up in byte order: `jobs_unique_live` on SQLite (its TEXT order),
/// `jobs_unique_live_bytes` (`COLLATE "C"`) on PostgreSQL. Every message to
/// deliver has a key, so walking the live keys took as long as walking
/// the jobs. The prefix test itself stays, exact.
pub(crate) fn earlier_under_sql(engine: Engine) -> String {
    let key = match engine {
        Engine::Sqlite => "unique_key",
        Engine::Postgres => "(unique_key COLLATE \"C\")",
    };
    format!(
        "SELECT COUNT(*) FROM {jobs} WHERE unique_key IS NOT NULL
           AND state IN ('pending', 'failed', 'running') AND id < $2
           AND {key} >= $1 AND {key} < $3
           AND substr(unique_key, 1, length(CAST($1 AS TEXT))) = CAST($1 AS TEXT)",
        jobs = jobs_via(engine, JobIndex::UniqueLive)
    )
}

/// The first string after every one that starts with `prefix` and goes
/// on below U+10FFFF (in UTF-8 byte order): keys are ASCII, made of job
/// kinds and ids.
fn past_prefix(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

/// The jobs under the key `$1` that wait, cancelled at `$2`.
pub(crate) fn cancel_waiting_sql(engine: Engine) -> String {
    format!(
        "UPDATE {jobs} SET state = 'cancelled', finished_at = $2, updated_at = $2
         WHERE unique_key = $1
           AND state IN ('pending', 'failed', 'running') AND state <> 'running'",
        jobs = jobs_via(engine, JobIndex::UniqueLive)
    )
}

impl Store {
    /// Whether a job holding one of `keys` and enqueued before `job` is
    /// still to finish (pending, running or failed and retrying): jobs on
    /// one thing then run in the order they were asked for.
    pub async fn earlier_job_unfinished(&self, keys: &[String], job: JobId) -> StoreResult<bool> {
        let sql = earlier_unfinished_sql(self.engine());
        let mut found = false;
        for key in keys {
            let hit = on_pool!(self.pool, |p| {
                sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(key)
                    .bind(job.as_uuid())
                    .fetch_one(p)
                    .await?
            });
            found |= hit > 0;
        }
        Ok(found)
    }
}

impl Store {
    /// Whether a live job (pending, running, or failed and retrying)
    /// whose key starts with `prefix`, enqueued before `job`, is still to
    /// finish: the jobs of one thing, queued each under its own key (two
    /// requests are never merged), run in the order asked. The prefix is
    /// compared byte for byte (no collation), among live jobs only.
    pub async fn earlier_job_under(&self, prefix: &str, job: JobId) -> StoreResult<bool> {
        let sql = sqlx::AssertSqlSafe(earlier_under_sql(self.engine()));
        let hit: i64 = on_pool!(self.pool, |p| {
            sqlx::query_scalar(sql)
                .bind(prefix)
                .bind(job.as_uuid())
                .bind(past_prefix(prefix))
                .fetch_one(p)
                .await?
        });
        Ok(hit > 0)
    }
}

impl Tx {
    /// Cancels the jobs under `unique_key` that wait (pending, or failed and
    /// waiting for a retry): a newer request replaces them. Returns how
    /// many. A running one is left to finish.
    pub async fn cancel_waiting_jobs(
        &mut self,
        unique_key: &str,
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        let sql = sqlx::AssertSqlSafe(cancel_waiting_sql(self.engine()));
        let n = on_tx!(self, |conn| {
            sqlx::query(sql)
                .bind(unique_key)
                .bind(now)
                .execute(conn)
                .await?
                .rows_affected()
        });
        Ok(n)
    }
}
