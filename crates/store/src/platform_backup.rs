//! What `mpanel backup` and `mpanel restore` ask of the database itself:
//! an online copy of a SQLite file, whether a database is empty, and its
//! schema version. (PostgreSQL is copied by `pg_dump`, outside the store.)

use std::path::Path;

use sqlx::Row;

use crate::connect::Pool;
use crate::{Store, StoreError, StoreResult};

impl Store {
    /// Writes a consistent copy of this SQLite database to `path` (which
    /// must not exist) with `VACUUM INTO`: one read transaction, so the
    /// copy is a point in time while other connections keep writing
    /// (WAL). The copy is compact and has no `-wal` file of its own.
    pub async fn sqlite_copy_into(&self, path: &Path) -> StoreResult<()> {
        let Pool::Sqlite(pool) = &self.pool else {
            return Err(StoreError::InvalidConfig(
                "VACUUM INTO is for SQLite; PostgreSQL is copied with pg_dump".into(),
            ));
        };
        let target = path.to_str().ok_or_else(|| {
            StoreError::InvalidConfig(format!("{} is not a UTF-8 path", path.display()))
        })?;
        sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(pool)
            .await?;
        Ok(())
    }

    /// SQLite's `PRAGMA quick_check`: `None` when the file is sound, else
    /// the first problem it reports.
    pub async fn sqlite_quick_check(&self) -> StoreResult<Option<String>> {
        let Pool::Sqlite(pool) = &self.pool else {
            return Ok(None);
        };
        let first: String = sqlx::query_scalar("PRAGMA quick_check")
            .fetch_one(pool)
            .await?;
        Ok((first != "ok").then_some(first))
    }

    /// How many tables the database holds (SQLite: outside SQLite's own;
    /// PostgreSQL: in the schema `public`). Zero: an empty database a
    /// backup may be restored into.
    pub async fn table_count(&self) -> StoreResult<i64> {
        let count = match &self.pool {
            Pool::Sqlite(p) => sqlx::query(
                "SELECT count(*) FROM sqlite_master \
                     WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_one(p)
            .await?
            .try_get::<i64, _>(0)?,
            Pool::Postgres(p) => sqlx::query(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
            )
            .fetch_one(p)
            .await?
            .try_get::<i64, _>(0)?,
        };
        Ok(count)
    }
}
