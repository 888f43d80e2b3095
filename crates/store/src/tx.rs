//! A transaction on either engine. Services open one, make every change of
//! one use case through it (audit row and jobs included), and commit.

use std::sync::Arc;

use sqlx::{Postgres, Sqlite, Transaction};
use tokio::sync::Notify;

use crate::connect::Pool;
use crate::{Engine, Store, StoreResult};

pub(crate) enum TxInner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// An open transaction. Dropped without [`Tx::commit`], it rolls back.
pub struct Tx {
    pub(crate) inner: TxInner,
    pub(crate) job_wakeup: Arc<Notify>,
    /// Jobs were enqueued: wake workers once this commits.
    pub(crate) enqueued: bool,
    /// The store's box for secrets at rest, for what a transaction seals.
    pub(crate) secrets: Option<crate::secret_box::SecretBox>,
}

impl Store {
    /// Begins a write transaction. On SQLite it runs on the write
    /// connection (writers of this process take turns for it in order) and
    /// takes the write lock at once (`BEGIN IMMEDIATE`), so a writer of
    /// another process waits on the busy timeout instead of failing when a
    /// read lock is upgraded.
    pub async fn begin(&self) -> StoreResult<Tx> {
        let inner = match &self.writer {
            Pool::Sqlite(p) => TxInner::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(p) => TxInner::Postgres(p.begin().await?),
        };
        Ok(Tx {
            inner,
            job_wakeup: self.job_wakeup.clone(),
            enqueued: false,
            secrets: self.secrets.clone(),
        })
    }
}

impl Store {
    /// A transaction for reading several things consistently; on SQLite it
    /// does not take the write lock.
    pub async fn begin_read(&self) -> StoreResult<Tx> {
        let inner = match &self.pool {
            Pool::Sqlite(p) => TxInner::Sqlite(p.begin().await?),
            Pool::Postgres(p) => TxInner::Postgres(p.begin().await?),
        };
        Ok(Tx {
            inner,
            job_wakeup: self.job_wakeup.clone(),
            enqueued: false,
            secrets: self.secrets.clone(),
        })
    }
}

impl Tx {
    /// The box that seals secrets at rest, when the store has one.
    pub fn secrets(&self) -> Option<&crate::secret_box::SecretBox> {
        self.secrets.as_ref()
    }

    pub fn engine(&self) -> Engine {
        match self.inner {
            TxInner::Sqlite(_) => Engine::Sqlite,
            TxInner::Postgres(_) => Engine::Postgres,
        }
    }

    pub async fn commit(self) -> StoreResult<()> {
        match self.inner {
            TxInner::Sqlite(t) => t.commit().await?,
            TxInner::Postgres(t) => t.commit().await?,
        }
        if self.enqueued {
            self.job_wakeup.notify_one();
        }
        Ok(())
    }

    pub async fn rollback(self) -> StoreResult<()> {
        match self.inner {
            TxInner::Sqlite(t) => t.rollback().await?,
            TxInner::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }
}
