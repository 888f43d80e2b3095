//! The store's conformance suite: every test runs on the engine the test run
//! selects (`MPANEL_TEST_ENGINE`), and the test command runs it on both.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use mpanel_domain::{NewTenant, TenantId};
use mpanel_store::testing::TestDatabase;
use mpanel_store::{ActorType, AuditEntry, Engine, PoolSettings, Store, StoreError};
use time::macros::datetime;

mod billing;
mod outbox_and_jobs;

async fn fresh() -> (TestDatabase, Store) {
    let db = TestDatabase::create().await.unwrap();
    let store = Store::connect(db.url(), &PoolSettings::default())
        .await
        .unwrap();
    (db, store)
}

async fn migrated() -> (TestDatabase, Store) {
    let (db, store) = fresh().await;
    store.migrate().await.unwrap();
    (db, store)
}

fn acme() -> NewTenant {
    NewTenant::parse("acme", "Acme Hosting", "Europe/Berlin", "EUR").unwrap()
}

/// A committed tenant `acme`.
async fn tenant_created(store: &Store) -> TenantId {
    let tenant = TenantId::new();
    let mut tx = store.begin().await.unwrap();
    tx.insert_tenant(tenant, &acme(), datetime!(2026-11-21 10:00 UTC))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    tenant
}

/// An invoice line of `amount_minor`, untaxed.
fn invoice_line(position: i32, amount_minor: i64) -> mpanel_store::billing::InvoiceLineRecord {
    mpanel_store::billing::InvoiceLineRecord {
        id: uuid::Uuid::now_v7(),
        position,
        kind: "PLAN".into(),
        source: "MANUAL".into(),
        description: "Web Pro".into(),
        quantity: "1".into(),
        unit_price: "1.00".into(),
        amount_minor,
        tax_rate: "0".into(),
        net_minor: amount_minor,
        tax_minor: 0,
        subscription_id: None,
    }
}

fn audit_for(tenant: TenantId) -> AuditEntry {
    AuditEntry {
        tenant_id: Some(tenant),
        actor_type: ActorType::Cli,
        actor_id: None,
        actor_label: "cli".into(),
        action: "tenant.create".into(),
        target_type: "tenant".into(),
        target_id: Some(tenant.to_string()),
        before: None,
        after: Some(serde_json::json!({"slug": "acme"})),
        request_id: None,
        at: datetime!(2026-11-21 10:00 UTC),
    }
}

#[tokio::test]
async fn runs_on_the_selected_engine() {
    let (db, store) = fresh().await;
    assert_eq!(store.engine(), TestDatabase::selected_engine().unwrap());
    assert_eq!(store.engine(), db.engine());
    store.ping().await.unwrap();
}

#[tokio::test]
async fn migrate_applies_everything_once_and_reports_it() {
    let (_db, store) = fresh().await;
    let before = store.migration_status().await.unwrap();
    assert!(!before.is_current());
    assert!(before.applied.is_empty());
    assert_eq!(before.pending.len(), mpanel_store::known_migrations().len());

    let applied = store.migrate().await.unwrap();
    assert_eq!(applied, mpanel_store::known_migrations());
    assert!(store.migration_status().await.unwrap().is_current());

    let again = store.migrate().await.unwrap();
    assert!(
        again.is_empty(),
        "a second migrate applies nothing: {again:?}"
    );
}

#[tokio::test]
async fn nodes_migrating_at_once_apply_each_migration_once() {
    let (db, store) = fresh().await;
    let other = Store::connect(db.url(), &PoolSettings::default())
        .await
        .unwrap();
    let (a, b) = tokio::join!(store.migrate(), other.migrate());
    a.unwrap();
    b.unwrap();
    let status = store.migration_status().await.unwrap();
    assert!(status.is_current());
    assert_eq!(status.applied.len(), mpanel_store::known_migrations().len());
}

#[tokio::test]
async fn status_tells_pending_from_newer_migrations() {
    let (db, store) = migrated().await;
    // A newer binary applied version 9999: this binary stays current.
    let raw = Store::connect(db.url(), &PoolSettings::default())
        .await
        .unwrap();
    raw.execute_raw_for_tests(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (9999, 'from the future', TRUE, '00', 0)",
    )
    .await
    .unwrap();
    let status = store.migration_status().await.unwrap();
    assert_eq!(status.unknown, vec![9999]);
    assert!(status.is_current());

    // A migration of this binary missing: not current, and named.
    raw.execute_raw_for_tests("DELETE FROM _sqlx_migrations WHERE version = 1")
        .await
        .unwrap();
    let status = store.migration_status().await.unwrap();
    assert!(!status.is_current());
    assert_eq!(status.pending[0].version, 1);
}

#[tokio::test]
async fn a_change_and_its_audit_row_commit_together() {
    let (_db, store) = migrated().await;
    let id = TenantId::new();
    let mut tx = store.begin().await.unwrap();
    let record = tx
        .insert_tenant(id, &acme(), datetime!(2026-11-21 10:00 UTC))
        .await
        .unwrap();
    tx.record_audit(&audit_for(id)).await.unwrap();
    tx.commit().await.unwrap();

    assert_eq!(record.slug, "acme");
    assert_eq!(record.created_at, datetime!(2026-11-21 10:00 UTC));
    let found = store.tenant_by_slug("acme").await.unwrap().unwrap();
    assert_eq!(found, record);
    assert_eq!(
        store.audit_actions(id).await.unwrap(),
        vec!["tenant.create"]
    );
}

#[tokio::test]
async fn a_rolled_back_change_leaves_nothing() {
    let (_db, store) = migrated().await;
    let id = TenantId::new();
    let mut tx = store.begin().await.unwrap();
    tx.insert_tenant(id, &acme(), datetime!(2026-11-21 10:00 UTC))
        .await
        .unwrap();
    tx.record_audit(&audit_for(id)).await.unwrap();
    drop(tx);

    assert_eq!(store.tenant_by_slug("acme").await.unwrap(), None);
    assert!(store.audit_actions(id).await.unwrap().is_empty());
    assert!(store.list_tenants().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_taken_slug_is_a_conflict() {
    let (_db, store) = migrated().await;
    let now = datetime!(2026-11-21 10:00 UTC);
    let mut tx = store.begin().await.unwrap();
    tx.insert_tenant(TenantId::new(), &acme(), now)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let err = tx
        .insert_tenant(TenantId::new(), &acme(), now)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

#[tokio::test]
async fn foreign_keys_are_enforced() {
    let (_db, store) = migrated().await;
    let mut tx = store.begin().await.unwrap();
    // An audit row pointing at a tenant that does not exist.
    let err = tx
        .record_audit(&audit_for(TenantId::new()))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

#[tokio::test]
async fn concurrent_writers_queue_instead_of_failing() {
    let (_db, store) = migrated().await;
    let now = datetime!(2026-11-21 10:00 UTC);
    let writes = (0..20).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let tenant = NewTenant::parse(&format!("t{i}"), "T", "UTC", "USD").unwrap();
            let mut tx = store.begin().await?;
            let id = TenantId::new();
            tx.insert_tenant(id, &tenant, now).await?;
            tx.record_audit(&audit_for(id)).await?;
            tx.commit().await
        })
    });
    for write in writes.collect::<Vec<_>>() {
        write.await.unwrap().unwrap();
    }
    assert_eq!(store.list_tenants().await.unwrap().len(), 20);
}

#[tokio::test]
async fn a_closed_store_reports_unavailable() {
    let (_db, store) = migrated().await;
    store.close().await;
    let err = store.ping().await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode_with_foreign_keys() {
    let (_db, store) = migrated().await;
    if store.engine() != Engine::Sqlite {
        return;
    }
    assert_eq!(
        store.sqlite_pragma_for_tests("journal_mode").await.unwrap(),
        "wal"
    );
    assert_eq!(
        store.sqlite_pragma_for_tests("foreign_keys").await.unwrap(),
        "1"
    );
}

/// SQLite's reads and writes go to two pools; an in-memory URL must give
/// both the same database (sqlx names each parse of `:memory:` anew).
#[tokio::test]
async fn an_in_memory_sqlite_reads_what_it_wrote() {
    let store = Store::connect("sqlite::memory:", &PoolSettings::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    assert!(store.migration_status().await.unwrap().is_current());
    store.close().await;
}

/// `serve` and `worker` keep their whole pool open, so a burst after a quiet
/// spell does not wait for PostgreSQL to start server processes. SQLite's
/// connections are threads in this process: nothing to keep.
#[tokio::test]
async fn a_pool_told_to_keep_connections_open_has_them_open_before_any_query() {
    let db = TestDatabase::create().await.unwrap();
    if db.engine() != Engine::Postgres {
        return;
    }
    let settings = PoolSettings {
        max_connections: 3,
        keep_open: true,
        ..PoolSettings::default()
    };
    let store = Store::connect(db.url(), &settings).await.unwrap();
    assert_eq!(db.connections_from("mpanel").await.unwrap(), 3);
    store.close().await;
}
