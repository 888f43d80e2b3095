//! The job queue's SQL. Claims use `FOR UPDATE SKIP LOCKED` on PostgreSQL
//! and SQLite's single writer (`BEGIN IMMEDIATE`) on SQLite; everything
//! else is shared. Every change a worker makes to a running job is guarded
//! by `locked_by`, so a worker whose lease lapsed cannot touch a job another
//! worker has since claimed.

use std::sync::Arc;

use mpanel_domain::JobId;
use mpanel_domain::jobs::JobState;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{QueryBuilder, Row};
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::connect::Pool;
use crate::job_indexes::{JobIndex, jobs_via};
use crate::{Engine, Store, StoreError, StoreResult, Tx};

/// The PostgreSQL channel that announces new jobs.
pub const CHANNEL: &str = "mpanel_jobs";

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub queue: String,
    pub kind: String,
    pub payload: Value,
    /// Higher runs first.
    pub priority: i32,
    pub run_at: OffsetDateTime,
    pub max_attempts: i32,
    /// A second enqueue while a job with this key is pending, failed or
    /// running returns that job instead of adding one.
    pub unique_key: Option<String>,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub id: JobId,
    pub queue: String,
    pub kind: String,
    pub payload: Value,
    pub state: JobState,
    pub priority: i32,
    pub run_at: OffsetDateTime,
    pub attempts: i32,
    pub max_attempts: i32,
    pub unique_key: Option<String>,
    pub locked_by: Option<String>,
    pub locked_until: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
}

/// A job a worker has claimed.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedJob {
    pub id: JobId,
    pub queue: String,
    pub kind: String,
    pub payload: Value,
    /// This attempt's number, from 1.
    pub attempt: i32,
    pub max_attempts: i32,
    /// When the job became due (its `run_at`).
    pub due_at: OffsetDateTime,
    /// When it was queued.
    pub created_at: OffsetDateTime,
}

/// Filters for listing jobs.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub state: Option<JobState>,
    pub kind: Option<String>,
    pub queue: Option<String>,
}

/// Counts for one queue, kind and state.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueStat {
    pub queue: String,
    pub kind: String,
    pub state: JobState,
    pub count: i64,
    /// The earliest `run_at` among due pending jobs.
    pub oldest_due: Option<OffsetDateTime>,
}

const COLUMNS: &str = "id, queue, kind, payload, state, priority, run_at, attempts, max_attempts, \
     unique_key, locked_by, locked_until, last_error, created_at, updated_at, started_at, finished_at";

/// The tenant a job works for: its payload's `tenant_id`, when it has
/// one (kept in a column so a tenant's share of the queues is indexed).
fn payload_tenant(payload: &Value) -> Option<uuid::Uuid> {
    payload
        .get("tenant_id")
        .and_then(Value::as_str)
        .and_then(|s| uuid::Uuid::parse_str(s).ok())
}

fn parse_state(s: &str) -> Result<JobState, sqlx::Error> {
    s.parse().map_err(|e: String| sqlx::Error::Decode(e.into()))
}

macro_rules! job_from_row {
    ($row:expr) => {{
        let row = $row;
        let payload: Json<Value> = row.try_get("payload")?;
        let state: String = row.try_get("state")?;
        JobRecord {
            id: JobId::from_uuid(row.try_get("id")?),
            queue: row.try_get("queue")?,
            kind: row.try_get("kind")?,
            payload: payload.0,
            state: parse_state(&state)?,
            priority: row.try_get("priority")?,
            run_at: row.try_get("run_at")?,
            attempts: row.try_get("attempts")?,
            max_attempts: row.try_get("max_attempts")?,
            unique_key: row.try_get("unique_key")?,
            locked_by: row.try_get("locked_by")?,
            locked_until: row.try_get("locked_until")?,
            last_error: row.try_get("last_error")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
        }
    }};
}

macro_rules! claimed_from_row {
    ($row:expr) => {{
        let row = $row;
        let payload: Json<Value> = row.try_get("payload")?;
        ClaimedJob {
            id: JobId::from_uuid(row.try_get("id")?),
            queue: row.try_get("queue")?,
            kind: row.try_get("kind")?,
            payload: payload.0,
            attempt: row.try_get("attempts")?,
            max_attempts: row.try_get("max_attempts")?,
            due_at: row.try_get("run_at")?,
            created_at: row.try_get("created_at")?,
        }
    }};
}

const INSERT: &str = "INSERT INTO jobs (id, queue, kind, payload, state, priority, run_at, max_attempts,
         unique_key, created_at, updated_at, tenant_id)
     VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9, $9, $10)
     ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state IN ('pending', 'failed', 'running')
     DO NOTHING
     RETURNING id";

mod leases;
mod listing;

impl Tx {
    /// Enqueues a job in this transaction: it exists if and only if the
    /// transaction commits. Returns the job's id and whether it is new (an
    /// enqueue whose `unique_key` is live returns the live job).
    pub async fn enqueue(
        &mut self,
        job: &NewJob,
        now: OffsetDateTime,
    ) -> StoreResult<(JobId, bool)> {
        let id = JobId::new();
        let inserted = on_tx!(self, |conn| {
            sqlx::query_scalar::<_, uuid::Uuid>(INSERT)
                .bind(id.as_uuid())
                .bind(&job.queue)
                .bind(&job.kind)
                .bind(Json(&job.payload))
                .bind(job.priority)
                .bind(job.run_at)
                .bind(job.max_attempts)
                .bind(&job.unique_key)
                .bind(now)
                .bind(payload_tenant(&job.payload))
                .fetch_optional(&mut *conn)
                .await?
        });
        if let Some(new_id) = inserted {
            self.announce_jobs().await?;
            return Ok((JobId::from_uuid(new_id), true));
        }
        let existing = on_tx!(self, |conn| {
            sqlx::query_scalar::<_, uuid::Uuid>(
                "SELECT id FROM jobs WHERE unique_key = $1 AND state IN ('pending', 'failed', 'running')",
            )
            .bind(&job.unique_key)
            .fetch_one(conn)
            .await?
        });
        Ok((JobId::from_uuid(existing), false))
    }

    /// Enqueues many jobs in this transaction, many rows per statement;
    /// a job whose unique key is live is not added. Answers how many were.
    pub async fn enqueue_new(&mut self, jobs: &[NewJob], now: OffsetDateTime) -> StoreResult<u64> {
        let mut added = 0;
        for chunk in jobs.chunks(1000) {
            added += on_tx!(self, |conn| {
                let mut q = QueryBuilder::new(
                    "INSERT INTO jobs (id, queue, kind, payload, state, priority, run_at, max_attempts,
                         unique_key, created_at, updated_at, tenant_id) ",
                );
                q.push_values(chunk, |mut b, job| {
                    b.push_bind(JobId::new().as_uuid())
                        .push_bind(&job.queue)
                        .push_bind(&job.kind)
                        .push_bind(Json(&job.payload))
                        .push_bind("pending")
                        .push_bind(job.priority)
                        .push_bind(job.run_at)
                        .push_bind(job.max_attempts)
                        .push_bind(&job.unique_key)
                        .push_bind(now)
                        .push_bind(now)
                        .push_bind(payload_tenant(&job.payload));
                });
                q.push(
                    " ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL
                       AND state IN ('pending', 'failed', 'running') DO NOTHING",
                );
                q.build().execute(&mut *conn).await?.rows_affected()
            });
        }
        if added > 0 {
            self.announce_jobs().await?;
        }
        Ok(added)
    }

    /// Wakes workers when this transaction commits: in this process at
    /// once, and on PostgreSQL every listening process.
    async fn announce_jobs(&mut self) -> StoreResult<()> {
        if !self.enqueued {
            self.enqueued = true;
            if let crate::tx::TxInner::Postgres(t) = &mut self.inner {
                sqlx::query("SELECT pg_notify($1, '')")
                    .bind(CHANNEL)
                    .execute(&mut **t)
                    .await?;
            }
        }
        Ok(())
    }

    /// Enqueues a recurring job's run for `slot` unless any node already
    /// did; returns the job when this call enqueued it.
    pub async fn enqueue_for_slot(
        &mut self,
        name: &str,
        slot: &str,
        job: &NewJob,
        now: OffsetDateTime,
    ) -> StoreResult<Option<JobId>> {
        let id = JobId::new();
        let claimed = on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO schedule_slots (name, slot, job_id, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name, slot) DO NOTHING",
            )
            .bind(name)
            .bind(slot)
            .bind(id.as_uuid())
            .bind(now)
            .execute(conn)
            .await?
            .rows_affected()
        });
        if claimed == 0 {
            return Ok(None);
        }
        let (job_id, _) = self.enqueue(job, now).await?;
        Ok(Some(job_id))
    }

    /// The job, read inside this transaction; `None` when there is none.
    pub async fn job(&mut self, id: JobId) -> StoreResult<Option<JobRecord>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"));
        let found = on_tx!(self, |conn| {
            match sqlx::query(sql)
                .bind(id.as_uuid())
                .fetch_optional(conn)
                .await?
            {
                Some(row) => Some(job_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// An operator's move: back to pending now, with fresh attempts; only
    /// from failed, dead or cancelled (`false`: it moved meanwhile).
    pub async fn requeue_job(&mut self, id: JobId, now: OffsetDateTime) -> StoreResult<bool> {
        let n = on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE jobs SET state = 'pending', run_at = $2, attempts = 0, locked_by = NULL,
                     locked_until = NULL, finished_at = NULL, updated_at = $2
                 WHERE id = $1 AND state IN ('failed', 'dead', 'cancelled')",
            )
            .bind(id.as_uuid())
            .bind(now)
            .execute(conn)
            .await?
            .rows_affected()
        });
        if n == 1 {
            self.announce_jobs().await?;
        }
        Ok(n == 1)
    }

    /// The live (pending, failed or running) job holding `unique_key`.
    pub async fn live_job(&mut self, unique_key: &str) -> StoreResult<Option<(JobId, JobState)>> {
        let found = on_tx!(self, |conn| {
            sqlx::query_as::<_, (uuid::Uuid, String)>(
                "SELECT id, state FROM jobs
                 WHERE unique_key = $1 AND state IN ('pending', 'failed', 'running')",
            )
            .bind(unique_key)
            .fetch_optional(conn)
            .await?
        });
        found
            .map(|(id, state)| {
                let state = state
                    .parse::<JobState>()
                    .map_err(|e| StoreError::InvalidConfig(format!("job {id}: {e}")))?;
                Ok((JobId::from_uuid(id), state))
            })
            .transpose()
    }

    /// Makes a pending or failed job due now (`false`: it moved meanwhile).
    pub async fn run_job_now(&mut self, id: JobId, now: OffsetDateTime) -> StoreResult<bool> {
        let n = on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE jobs SET run_at = $2, updated_at = $2
                 WHERE id = $1 AND state IN ('pending', 'failed')",
            )
            .bind(id.as_uuid())
            .bind(now)
            .execute(conn)
            .await?
            .rows_affected()
        });
        if n == 1 {
            self.announce_jobs().await?;
        }
        Ok(n == 1)
    }

    /// Cancels a job that has not started (`false`: it moved meanwhile).
    pub async fn cancel_job(&mut self, id: JobId, now: OffsetDateTime) -> StoreResult<bool> {
        let n = on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE jobs SET state = 'cancelled', finished_at = $2, updated_at = $2
                 WHERE id = $1 AND state IN ('pending', 'failed')",
            )
            .bind(id.as_uuid())
            .bind(now)
            .execute(conn)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }
}

/// The claim on SQLite: the first due jobs in the order they are taken,
/// read from `jobs_ready` (whatever else waits).
pub(crate) fn claim_sqlite_sql() -> String {
    format!(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_by = $3,
             locked_until = $4, started_at = $1, updated_at = $1
         WHERE id IN (
             SELECT id FROM {jobs}
             WHERE state IN ('pending', 'failed') AND run_at <= $1
             ORDER BY priority DESC, run_at, id
             LIMIT $2
         )
         RETURNING id, queue, kind, payload, attempts, max_attempts, run_at, created_at",
        jobs = jobs_via(Engine::Sqlite, JobIndex::Ready)
    )
}

/// Up to `$2` ended jobs finished before `$1`, deleted.
pub(crate) fn prune_sql(engine: Engine) -> String {
    format!(
        "DELETE FROM jobs WHERE id IN (
             SELECT id FROM {jobs} WHERE state IN ('completed', 'cancelled') AND finished_at < $1
             LIMIT $2)",
        jobs = jobs_via(engine, JobIndex::Finished)
    )
}

impl Store {
    /// Enqueues one job in a transaction of its own.
    pub async fn enqueue(&self, job: &NewJob, now: OffsetDateTime) -> StoreResult<(JobId, bool)> {
        let mut tx = self.begin().await?;
        let out = tx.enqueue(job, now).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Enqueues many jobs in one transaction, in multi-row inserts: for
    /// bulk work and benchmarks.
    pub async fn enqueue_many(&self, jobs: &[NewJob], now: OffsetDateTime) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        tx.enqueue_new(jobs, now).await?;
        tx.commit().await
    }

    /// Claims up to `limit` due jobs for `worker`, leased until `lease_until`.
    pub async fn claim_jobs(
        &self,
        worker: &str,
        limit: u32,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> StoreResult<Vec<ClaimedJob>> {
        let limit = i64::from(limit);
        let claimed = match &self.writer {
            Pool::Postgres(p) => {
                let rows = sqlx::query(
                    "WITH picked AS (
                         SELECT id FROM jobs
                         WHERE state IN ('pending', 'failed') AND run_at <= $1
                         ORDER BY priority DESC, run_at, id
                         LIMIT $2
                         FOR UPDATE SKIP LOCKED
                     )
                     UPDATE jobs j SET state = 'running', attempts = j.attempts + 1, locked_by = $3,
                         locked_until = $4, started_at = $1, updated_at = $1
                     FROM picked WHERE j.id = picked.id
                     RETURNING j.id, j.queue, j.kind, j.payload, j.attempts, j.max_attempts, j.run_at,
                         j.created_at",
                )
                .bind(now)
                .bind(limit)
                .bind(worker)
                .bind(lease_until)
                .fetch_all(p)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    out.push(claimed_from_row!(row));
                }
                out
            }
            Pool::Sqlite(p) => {
                // One writer at a time: the IMMEDIATE transaction is the lock.
                let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                let rows = sqlx::query(sqlx::AssertSqlSafe(claim_sqlite_sql()))
                    .bind(now)
                    .bind(limit)
                    .bind(worker)
                    .bind(lease_until)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    out.push(claimed_from_row!(row));
                }
                out
            }
        };
        Ok(claimed)
    }

    /// Marks jobs of `worker` completed; returns how many it still held.
    pub async fn complete_jobs(
        &self,
        worker: &str,
        ids: &[JobId],
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        let mut done = 0;
        for chunk in ids.chunks(1000) {
            done += on_pool!(self.writer, |p| {
                let mut q =
                    QueryBuilder::new("UPDATE jobs SET state = 'completed', finished_at = ");
                q.push_bind(now)
                    .push(", updated_at = ")
                    .push_bind(now)
                    // locked_by is set only while running; no `state` test here,
                    // so the planner finds the rows by primary key.
                    .push(", locked_by = NULL, locked_until = NULL WHERE locked_by = ")
                    .push_bind(worker)
                    .push(" AND id IN (");
                let mut ids = q.separated(", ");
                for id in chunk {
                    ids.push_bind(id.as_uuid());
                }
                q.push(")");
                q.build().execute(p).await?.rows_affected()
            });
        }
        Ok(done)
    }

    /// Records a failed attempt: `Failed` with a retry at `retry_at`, or
    /// `Dead`. `false` when the worker no longer held the job.
    pub async fn fail_job(
        &self,
        worker: &str,
        id: JobId,
        next: JobState,
        retry_at: OffsetDateTime,
        error: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let finished = (next == JobState::Dead).then_some(now);
        let changed = on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE jobs SET state = $3, run_at = $4, last_error = $5, locked_by = NULL,
                     locked_until = NULL, updated_at = $6, finished_at = $7
                 WHERE id = $1 AND locked_by = $2",
            )
            .bind(id.as_uuid())
            .bind(worker)
            .bind(next.as_str())
            .bind(retry_at)
            .bind(error)
            .bind(now)
            .bind(finished)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(changed == 1)
    }

    /// Puts a job `worker` holds back to pending until `run_at`, giving
    /// back the attempt its claim counted: it waited, it did not fail.
    /// `note` says what it waits for (shown as its last error). `false`
    /// when the worker no longer held the job.
    pub async fn defer_job(
        &self,
        worker: &str,
        id: JobId,
        run_at: OffsetDateTime,
        note: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let changed = on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE jobs SET state = 'pending', run_at = $3, last_error = $4,
                     attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,
                     locked_by = NULL, locked_until = NULL, updated_at = $5
                 WHERE id = $1 AND locked_by = $2",
            )
            .bind(id.as_uuid())
            .bind(worker)
            .bind(run_at)
            .bind(note)
            .bind(now)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(changed == 1)
    }

    /// Clears the job table's dead row versions now (PostgreSQL's
    /// `VACUUM`) instead of when autovacuum next comes round, a minute or
    /// more later. Every claim leaves the job's pending version in the
    /// ready index, and each later claim walks past all of them until they
    /// are cleared: after 150,000 jobs, the pickups of a burst that
    /// followed were about 3 times slower (docs/benchmarks.md, "Job
    /// queue"). `SKIP_LOCKED`: when another vacuum (a worker's, or
    /// autovacuum, an index being built) holds the table, that one does
    /// it. On a connection of its own (`application_name`
    /// `mpanel-vacuum`), outside the pool: a long vacuum keeps no pool
    /// slot, and one whose worker stops while it runs is finished by
    /// PostgreSQL on its own (it holds that server process, and its lock
    /// on `jobs`, until then). Its notices (a skipped table, a missing
    /// privilege) and its duration are not logged. SQLite has nothing to
    /// clear: it frees a row's space as it writes.
    pub async fn vacuum_jobs(&self) -> StoreResult<()> {
        use sqlx::{ConnectOptions, Connection};
        let Pool::Postgres(p) = &self.writer else {
            return Ok(());
        };
        let options = (*p.connect_options())
            .clone()
            .application_name("mpanel-vacuum")
            .disable_statement_logging();
        let timeout = p.options().get_acquire_timeout();
        let mut conn = tokio::time::timeout(timeout, sqlx::PgConnection::connect_with(&options))
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolTimedOut))??;
        // Separate statements: VACUUM refuses to run in a multi-statement
        // query (an implicit transaction block).
        sqlx::raw_sql("SET client_min_messages = error")
            .execute(&mut conn)
            .await?;
        sqlx::raw_sql("VACUUM (SKIP_LOCKED) jobs")
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(())
    }

    /// Deletes completed and cancelled jobs finished before `before`, at
    /// most `limit` per call.
    pub async fn prune_jobs(&self, before: OffsetDateTime, limit: u32) -> StoreResult<u64> {
        let sql = sqlx::AssertSqlSafe(prune_sql(self.engine()));
        let n = on_pool!(self.writer, |p| {
            sqlx::query(sql)
                .bind(before)
                .bind(i64::from(limit))
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(n)
    }

    /// Resolves when jobs may be waiting: a commit that enqueued in this
    /// process, or (after [`Store::listen_for_jobs`]) in any process.
    pub fn job_wakeup(&self) -> Arc<Notify> {
        self.job_wakeup.clone()
    }

    /// On PostgreSQL, listens for other processes' enqueues and forwards
    /// them to [`Store::job_wakeup`]; on SQLite (one process) does nothing.
    /// Returns the listening task, which reconnects on failure.
    pub async fn listen_for_jobs(&self) -> StoreResult<Option<tokio::task::JoinHandle<()>>> {
        let Pool::Postgres(pool) = &self.pool else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen(CHANNEL).await?;
        let wake = self.job_wakeup.clone();
        Ok(Some(tokio::spawn(async move {
            loop {
                match listener.recv().await {
                    Ok(_) => wake.notify_one(),
                    Err(err) => {
                        // The poll keeps work moving while the listener reconnects.
                        tracing::warn!(error = %err, "job notifications interrupted; reconnecting");
                        wake.notify_one();
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    }
                }
            }
        })))
    }
}
