//! A fresh, empty database per test, on the engine the test run selects.
//!
//! `MPANEL_TEST_ENGINE` picks the engine: `sqlite` (the default: a file in a
//! temporary folder) or `postgres` (a new database on the cluster that
//! `MPANEL_TEST_POSTGRES_URL` names, which the test script starts). The
//! test command runs the whole suite once per engine.

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use tempfile::TempDir;
use uuid::Uuid;

use crate::{Engine, StoreError, StoreResult};

/// A database that lives as long as this value (SQLite) or the test cluster
/// (PostgreSQL).
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    engine: Engine,
    _dir: Option<TempDir>,
}

impl TestDatabase {
    /// The engine the test run selected.
    pub fn selected_engine() -> StoreResult<Engine> {
        match std::env::var("MPANEL_TEST_ENGINE").as_deref() {
            Err(_) | Ok("") | Ok("sqlite") => Ok(Engine::Sqlite),
            Ok("postgres") => Ok(Engine::Postgres),
            Ok(other) => Err(StoreError::InvalidConfig(format!(
                "MPANEL_TEST_ENGINE={other:?}: expected sqlite or postgres"
            ))),
        }
    }

    pub async fn create() -> StoreResult<Self> {
        match Self::selected_engine()? {
            Engine::Sqlite => {
                let dir = tempfile::tempdir()
                    .map_err(|e| StoreError::InvalidConfig(format!("temp dir: {e}")))?;
                let url = format!("sqlite://{}/mpanel.db", dir.path().display());
                Ok(Self {
                    url,
                    engine: Engine::Sqlite,
                    _dir: Some(dir),
                })
            }
            Engine::Postgres => {
                let admin = std::env::var("MPANEL_TEST_POSTGRES_URL").map_err(|_| {
                    StoreError::InvalidConfig(
                        "MPANEL_TEST_ENGINE=postgres needs MPANEL_TEST_POSTGRES_URL".into(),
                    )
                })?;
                let name = format!("mpanel_test_{}", Uuid::now_v7().simple());
                let mut conn = PgConnection::connect(&admin).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
                Ok(Self {
                    url: with_database(&admin, &name),
                    engine: Engine::Postgres,
                    _dir: None,
                })
            }
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// PostgreSQL: the connections open to this database under the
    /// `application_name` (the store's pools are `mpanel`), counted from a
    /// connection of its own. SQLite: 0.
    pub async fn connections_from(&self, application: &str) -> StoreResult<i64> {
        if self.engine != Engine::Postgres {
            return Ok(0);
        }
        let mut outside = PgConnection::connect(&self.url).await?;
        let open = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = $1",
        )
        .bind(application)
        .fetch_one(&mut outside)
        .await?;
        outside.close().await?;
        Ok(open)
    }
}

/// `postgres://u@h:p/postgres?x=y` with the database `name` instead.
fn with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{name}?{q}"),
        None => format!("{host_part}/{name}"),
    }
}

impl crate::Store {
    /// Runs one statement as written; lets tests reach past the store's
    /// interface (to damage a migration table, say).
    pub async fn execute_raw_for_tests(&self, sql: &str) -> StoreResult<()> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        on_pool!(self.writer, |p| sqlx::query(sql).execute(p).await.map(drop))?;
        Ok(())
    }

    /// How many times `table` was vacuumed by hand (not by autovacuum);
    /// always 0 on SQLite.
    pub async fn vacuums_for_tests(&self, table: &str) -> StoreResult<i64> {
        let crate::connect::Pool::Postgres(pool) = &self.pool else {
            return Ok(0);
        };
        Ok(sqlx::query_scalar::<_, i64>(
            "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = $1",
        )
        .bind(table)
        .fetch_one(pool)
        .await?)
    }

    /// How many sessions wait for a lock now (PostgreSQL's
    /// `pg_stat_activity`); always 0 on SQLite.
    pub async fn lock_waits_for_tests(&self) -> StoreResult<i64> {
        let crate::connect::Pool::Postgres(pool) = &self.pool else {
            return Ok(0);
        };
        Ok(sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
        )
        .fetch_one(pool)
        .await?)
    }

    /// A SQLite pragma's value as text (`journal_mode`, `foreign_keys`).
    pub async fn sqlite_pragma_for_tests(&self, name: &str) -> StoreResult<String> {
        let crate::connect::Pool::Sqlite(pool) = &self.pool else {
            return Err(StoreError::InvalidConfig("not a SQLite store".into()));
        };
        let sql = sqlx::AssertSqlSafe(format!("SELECT CAST({name} AS TEXT) FROM pragma_{name}()"));
        Ok(sqlx::query_scalar::<_, String>(sql).fetch_one(pool).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn swaps_the_database_name_only() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/postgres?sslmode=disable", "t1"),
            "postgres://u:p@h/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "t1"), "postgres://h:1/t1");
    }
}
