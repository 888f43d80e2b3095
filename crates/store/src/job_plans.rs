//! SQLite's plans for the job queue's frequent statements: each reads the
//! index meant for it, looked up rather than walked (but the claim, which
//! takes the first entries in the index's order), and sorts nothing
//! (`job_indexes`). The plan of a statement without statistics
//! depends on the schema alone, so an empty database shows what a million
//! waiting jobs would get.

use sqlx::Row;

use crate::connect::Pool;
use crate::job_indexes::{JobIndex, jobs_via};
use crate::job_keys::{cancel_waiting_sql, earlier_under_sql, earlier_unfinished_sql};
use crate::jobs::{claim_sqlite_sql, prune_sql};
use crate::{Engine, Store};

/// The highest `$n` in `sql`.
fn parameters(sql: &str) -> usize {
    sql.split('$')
        .skip(1)
        .filter_map(|s| {
            let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .max()
        .unwrap_or(0)
}

/// SQLite's plan for `sql`, one line per step.
async fn plan(store: &Store, sql: &str) -> Vec<String> {
    let Pool::Sqlite(pool) = &store.pool else {
        panic!("a SQLite store");
    };
    let explain = format!("EXPLAIN QUERY PLAN {sql}");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(explain.as_str()));
    for _ in 0..parameters(sql) {
        q = q.bind(None::<String>);
    }
    q.fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| r.get::<String, _>("detail"))
        .collect()
}

#[tokio::test]
async fn the_queues_frequent_statements_read_their_index_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/plans.db", dir.path().display());
    let store = Store::connect(&url, &crate::PoolSettings::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let e = Engine::Sqlite;
    let statements = [
        ("claim", claim_sqlite_sql(), "jobs_ready"),
        ("prune", prune_sql(e), "jobs_finished"),
        (
            "earlier unfinished",
            earlier_unfinished_sql(e),
            "jobs_unique_live",
        ),
        ("earlier under", earlier_under_sql(e), "jobs_unique_live"),
        ("cancel waiting", cancel_waiting_sql(e), "jobs_unique_live"),
    ];
    for (name, sql, index) in statements {
        let steps = plan(&store, &sql).await;
        let reads = steps
            .iter()
            .find(|s| s.contains(&format!("INDEX {index}")))
            .unwrap_or_else(|| panic!("{name} reads {index}: {steps:?}"));
        assert!(
            name == "claim" || reads.starts_with("SEARCH "),
            "{name} looks up {index}: {steps:?}"
        );
        assert!(
            !steps.iter().any(|s| s.contains("TEMP B-TREE")),
            "{name} sorts nothing: {steps:?}"
        );
    }
    // The same statements on PostgreSQL name no index.
    assert_eq!(jobs_via(Engine::Postgres, JobIndex::Ready), "jobs");
    assert!(!prune_sql(Engine::Postgres).contains("INDEXED"));
}
