//! Which index the job queue's frequent statements read on SQLite.
//!
//! mPanel never runs `ANALYZE`, so SQLite's planner chooses by the shape of
//! a statement's terms alone. For the claim it chose `jobs_overview`
//! (`state = ?`), read every pending job and sorted them: after a billing
//! run of a million invoices left a million messages to deliver, each
//! claim took about 230 ms with the write lock held. A partial index is
//! only considered when each term of its condition appears in the
//! statement's or follows from one (`unique_key = ?` gives `unique_key IS
//! NOT NULL`), an IN list written as the index writes it, so `state IN
//! ('pending', 'running', 'failed')` missed `jobs_unique_live`. These
//! statements name their index on SQLite (`INDEXED BY`: a statement that
//! cannot use it fails to prepare rather than read the table another
//! way) and write its IN list as it does; PostgreSQL plans from its
//! statistics. `job_plans` (a test) checks each plan.

use crate::Engine;

/// An index of `jobs` a statement is meant to read (their definitions:
/// the migrations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobIndex {
    /// `(priority DESC, run_at, id) WHERE state IN ('pending', 'failed')`:
    /// claims, in the order jobs are taken.
    Ready,
    /// `(unique_key) WHERE unique_key IS NOT NULL AND state IN ('pending',
    /// 'failed', 'running')`: the live job under a key.
    UniqueLive,
    /// `(finished_at) WHERE state IN ('completed', 'cancelled')`: pruning.
    Finished,
}

impl JobIndex {
    fn name(self) -> &'static str {
        match self {
            Self::Ready => "jobs_ready",
            Self::UniqueLive => "jobs_unique_live",
            Self::Finished => "jobs_finished",
        }
    }
}

/// `jobs` as a statement names it: read through `index` on SQLite.
pub(crate) fn jobs_via(engine: Engine, index: JobIndex) -> String {
    match engine {
        Engine::Sqlite => format!("jobs INDEXED BY {}", index.name()),
        Engine::Postgres => "jobs".to_owned(),
    }
}
