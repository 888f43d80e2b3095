//! mPanel's durable job queue.
//!
//! Jobs live in the business database: [`enqueue`] takes the caller's open
//! transaction, so a job exists if and only if the change that asked for it
//! committed. A [`WorkerPool`] claims jobs in batches under a lease it
//! renews, runs them through typed handlers from a [`Registry`], and
//! completes them in batches, retries them with back-off, or marks them
//! dead. A [`Scheduler`] enqueues recurring jobs once per slot across all
//! nodes.
#![forbid(unsafe_code)]

mod enqueue;
mod handler;
mod pool;
mod schedule;

pub use enqueue::{JobOptions, enqueue, enqueue_job, enqueue_jobs};
pub use handler::{JobContext, JobError, Registry, UNKNOWN_KIND_GIVE_UP, UNKNOWN_KIND_RETRY};
pub use mpanel_domain::jobs::JobPayload;
pub use pool::{PoolConfig, WorkerPool};
pub use schedule::{Recurring, Schedule, Scheduler};
