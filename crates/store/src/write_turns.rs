//! Turns at SQLite's one write lock for the writers of this process.
//!
//! SQLite lets one writer in at a time. A writer that finds the lock taken
//! sleeps in SQLite's busy handler, in steps of 1, 2, 5, 10 … 100 ms, so it
//! can oversleep the lock's release by tens of milliseconds, and it holds
//! a pooled connection while it sleeps. Under 16 clients enqueueing jobs
//! that put the worker's claim 464 ms (p99) behind the enqueue it follows
//! (`bench/queue.sh`). Writers of this process take turns here first, in
//! arrival order, holding no connection, and each goes in as the one ahead
//! of it leaves; the busy handler is left for writers of other processes
//! (a CLI command run next to `serve`). On PostgreSQL there are no turns.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The turns of one store (shared by its clones).
#[derive(Clone)]
pub(crate) struct WriteTurns {
    turns: Option<Arc<Semaphore>>,
    /// The longest a writer waits for its turn before it goes to SQLite
    /// anyway (its busy timeout then applies): a writer that holds a turn
    /// and asks for another in the same task is slowed, never stuck.
    patience: Duration,
}

/// A writer's turn: the next writer's begins when this is dropped.
pub(crate) struct WriteTurn {
    _permit: Option<OwnedSemaphorePermit>,
}

impl WriteTurns {
    pub(crate) fn sqlite(patience: Duration) -> Self {
        Self {
            turns: Some(Arc::new(Semaphore::new(1))),
            patience,
        }
    }

    pub(crate) fn none() -> Self {
        Self {
            turns: None,
            patience: Duration::ZERO,
        }
    }

    /// Waits for this writer's turn (at once on PostgreSQL).
    pub(crate) async fn take(&self) -> WriteTurn {
        let Some(turns) = &self.turns else {
            return WriteTurn { _permit: None };
        };
        match tokio::time::timeout(self.patience, turns.clone().acquire_owned()).await {
            Ok(Ok(permit)) => WriteTurn {
                _permit: Some(permit),
            },
            _ => WriteTurn { _permit: None },
        }
    }
}
