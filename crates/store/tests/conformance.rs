//! The store's conformance suite: every test runs on the engine the test run
//! selects (`MPANEL_TEST_ENGINE`), and the test command runs it on both.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use mpanel_domain::{NewTenant, TenantId};
use mpanel_store::testing::TestDatabase;
use mpanel_store::{ActorType, AuditEntry, Engine, PoolSettings, Store, StoreError};
use time::macros::datetime;

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

#[tokio::test]
async fn document_numbers_stay_gapless_and_unique_under_concurrency() {
    let (_db, store) = migrated().await;
    let now = datetime!(2026-11-21 10:00 UTC);
    let mut tenants = Vec::new();
    for i in 0..5 {
        let id = TenantId::new();
        let mut tx = store.begin().await.unwrap();
        let t = NewTenant::parse(&format!("shop{i}"), "Shop", "UTC", "EUR").unwrap();
        tx.insert_tenant(id, &t, now).await.unwrap();
        tx.commit().await.unwrap();
        tenants.push(id);
    }
    // 1,000 issuers across 5 tenants; every seventh one rolls back.
    let issuers = (0..1000).map(|i| {
        let store = store.clone();
        let tenant = tenants[i % 5];
        tokio::spawn(async move {
            let mut tx = store.begin().await?;
            let n = tx.next_document_number(tenant, "INV", 2026).await?;
            if i % 7 == 0 {
                tx.rollback().await?;
                return Ok::<_, StoreError>(None);
            }
            tx.commit().await?;
            Ok(Some((tenant, n)))
        })
    });
    let mut issued: std::collections::HashMap<TenantId, Vec<u64>> = Default::default();
    for handle in issuers.collect::<Vec<_>>() {
        if let Some((tenant, n)) = handle.await.unwrap().unwrap() {
            issued.entry(tenant).or_default().push(n);
        }
    }
    let mut total = 0;
    for (tenant, mut numbers) in issued {
        numbers.sort_unstable();
        let expected: Vec<u64> = (1..=numbers.len() as u64).collect();
        assert_eq!(numbers, expected, "tenant {tenant}: gapless and unique");
        total += numbers.len();
    }
    assert_eq!(total, 1000 - (0..1000).filter(|i| i % 7 == 0).count());
    // Years and kinds count separately.
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.next_document_number(tenants[0], "INV", 2027)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        tx.next_document_number(tenants[0], "CN", 2026)
            .await
            .unwrap(),
        1
    );
    tx.commit().await.unwrap();
}

/// The public catalog's prices come in one query for the whole tenant:
/// only active, public, live products' rules, grouped by product.
#[tokio::test]
async fn public_prices_are_those_of_the_tenants_public_products_only() {
    use mpanel_domain::catalog::{
        BillingModel, Category, Currency, Period, PriceRule, ProductStatus, ProvisioningTemplate,
        Visibility,
    };
    use mpanel_domain::{PriceId, ProductId};
    use mpanel_store::catalog::ProductFields;

    let (_db, store) = migrated().await;
    let now = datetime!(2026-11-21 10:00 UTC);
    let (acme_id, globex_id) = (TenantId::new(), TenantId::new());
    let globex = NewTenant::parse("globex", "Globex", "UTC", "EUR").unwrap();
    let fields = |slug: &str, visibility: Visibility| ProductFields {
        name: slug.to_owned(),
        slug: slug.to_owned(),
        description: String::new(),
        category: Category::Hosting,
        billing_model: BillingModel::Recurring,
        status: ProductStatus::Active,
        visibility,
        base_currency: Currency::parse("EUR").unwrap(),
        template: ProvisioningTemplate::None,
        usage: None,
    };
    let rule = |period: Period, amount_minor: i64| PriceRule {
        id: PriceId::new(),
        period,
        currency: Currency::parse("EUR").unwrap(),
        amount_minor,
        setup_fee_minor: 0,
        tenant: None,
        region: None,
    };
    let (shown, private, archived, elsewhere) = (
        ProductId::new(),
        ProductId::new(),
        ProductId::new(),
        ProductId::new(),
    );
    let mut tx = store.begin().await.unwrap();
    tx.insert_tenant(acme_id, &acme(), now).await.unwrap();
    tx.insert_tenant(globex_id, &globex, now).await.unwrap();
    for (id, tenant, f) in [
        (shown, acme_id, fields("shown", Visibility::Public)),
        (private, acme_id, fields("private", Visibility::Private)),
        (archived, acme_id, fields("archived", Visibility::Public)),
        (
            elsewhere,
            globex_id,
            fields("elsewhere", Visibility::Public),
        ),
    ] {
        tx.insert_product(id, tenant, &f, now).await.unwrap();
    }
    let archived_fields = fields("archived", Visibility::Public);
    tx.update_product(acme_id, archived, &archived_fields, Some(now), now)
        .await
        .unwrap()
        .expect("the archived product");
    let monthly = rule(Period::Monthly, 500);
    let yearly = rule(Period::Yearly, 5000);
    tx.insert_price(acme_id, shown, &monthly, now)
        .await
        .unwrap();
    tx.insert_price(acme_id, shown, &yearly, now).await.unwrap();
    for (tenant, product) in [
        (acme_id, private),
        (acme_id, archived),
        (globex_id, elsewhere),
    ] {
        tx.insert_price(tenant, product, &rule(Period::Monthly, 1), now)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();

    let prices = store.public_prices(acme_id).await.unwrap();
    assert_eq!(prices.len(), 1, "{prices:?}");
    let mut expected = vec![monthly, yearly];
    expected.sort_by_key(|r| r.id);
    assert_eq!(prices[&shown], expected);
    let none = store.public_prices(TenantId::new()).await.unwrap();
    assert!(none.is_empty());
}

/// The e-mail outbox: a message written in a transaction, its headers
/// fixed once, attempts counted, pages by status; a tenant's DKIM key
/// stored once per domain.
#[tokio::test]
async fn the_outbox_and_dkim_keys_keep_what_each_attempt_said() {
    use mpanel_domain::notify::{EmailKind, EmailStatus};
    use mpanel_domain::{DkimKeyId, EmailId};
    use mpanel_store::notify::{DkimKeyRecord, EmailFilter, EmailOutcome, EmailRecord};

    let (_db, store) = migrated().await;
    let at = datetime!(2026-11-21 10:00 UTC);
    let tenant = TenantId::new();
    let mut tx = store.begin().await.unwrap();
    tx.insert_tenant(tenant, &acme(), at).await.unwrap();
    let id = EmailId::new();
    tx.insert_email(&EmailRecord {
        id,
        tenant_id: tenant,
        kind: EmailKind::InvoiceIssued,
        recipient: "jane@example.com".into(),
        subject: "Invoice".into(),
        text_body: "text".into(),
        html_body: "<p>html</p>".into(),
        attachments: "[]".into(),
        link_sealed: None,
        sender: None,
        sender_name: None,
        message_id: None,
        status: EmailStatus::Queued,
        attempts: 0,
        last_error: None,
        created_at: at,
        updated_at: at,
        sent_at: None,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let first = store
        .fix_email_headers(tenant, id, Some("A"), "a@one.test", "<1@one.test>")
        .await
        .unwrap()
        .expect("the message");
    let again = store
        .fix_email_headers(tenant, id, Some("B"), "b@two.test", "<2@two.test>")
        .await
        .unwrap()
        .expect("the message");
    assert_eq!(again.message_id.as_deref(), Some("<1@one.test>"));
    assert_eq!(
        (&again.sender, &again.sender_name),
        (&first.sender, &Some("A".to_owned()))
    );

    let retry = EmailOutcome {
        status: EmailStatus::Queued,
        attempted: true,
        last_error: Some("451 later".into()),
        sent_at: None,
    };
    store
        .record_email_outcome(tenant, id, &retry, at)
        .await
        .unwrap();
    // Only one attempt claims a QUEUED message (QUEUED → SENDING).
    assert!(store.claim_email(tenant, id, at).await.unwrap());
    assert!(!store.claim_email(tenant, id, at).await.unwrap());
    assert_eq!(
        store
            .email(tenant, id)
            .await
            .unwrap()
            .expect("the message")
            .status,
        EmailStatus::Sending
    );
    let sent = EmailOutcome {
        status: EmailStatus::Sent,
        attempted: true,
        last_error: None,
        sent_at: Some(at),
    };
    store
        .record_email_outcome(tenant, id, &sent, at)
        .await
        .unwrap();
    let row = store.email(tenant, id).await.unwrap().expect("the message");
    assert_eq!(
        (row.status, row.attempts, row.sent_at),
        (EmailStatus::Sent, 2, Some(at))
    );
    // An outcome recorded late never undoes SENT.
    let late = EmailOutcome {
        status: EmailStatus::Failed,
        attempted: true,
        last_error: Some("late".into()),
        sent_at: None,
    };
    store
        .record_email_outcome(tenant, id, &late, at)
        .await
        .unwrap();
    let row = store.email(tenant, id).await.unwrap().expect("the message");
    assert_eq!(
        (row.status, row.attempts, row.last_error),
        (EmailStatus::Sent, 2, None)
    );
    assert!(!store.claim_email(tenant, id, at).await.unwrap());

    let page = |status| EmailFilter {
        status: Some(status),
        limit: 10,
        ..EmailFilter::default()
    };
    let of_kind = |kind| EmailFilter {
        kind: Some(kind),
        limit: 10,
        ..EmailFilter::default()
    };
    for (kind, n) in [
        (EmailKind::InvoiceIssued, 1),
        (EmailKind::InvoiceReminder, 0),
    ] {
        let found = store.list_emails(tenant, &of_kind(kind)).await.unwrap();
        assert_eq!(found.len(), n, "{kind:?}");
    }
    assert_eq!(
        store
            .list_emails(tenant, &page(EmailStatus::Sent))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .list_emails(tenant, &page(EmailStatus::Failed))
            .await
            .unwrap()
            .is_empty()
    );
    // Another tenant's message is not there for this one.
    assert!(store.email(TenantId::new(), id).await.unwrap().is_none());

    let key = |selector: &str| DkimKeyRecord {
        id: DkimKeyId::new(),
        tenant_id: tenant,
        domain: "one.test".into(),
        selector: selector.into(),
        private_key_sealed: "v1:sealed".into(),
        public_key: "QUJD".into(),
        created_at: at,
    };
    let mut tx = store.begin().await.unwrap();
    assert!(tx.insert_dkim_key(&key("mpfirst")).await.unwrap());
    assert!(
        !tx.insert_dkim_key(&key("mpsecond")).await.unwrap(),
        "one per domain"
    );
    tx.commit().await.unwrap();
    let stored = store.dkim_key(tenant, "one.test").await.unwrap().unwrap();
    assert_eq!(stored.selector, "mpfirst");
    assert!(store.dkim_key(tenant, "two.test").await.unwrap().is_none());
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

#[tokio::test]
async fn lines_written_ahead_of_an_invoice_that_never_comes_are_refused_and_leave_nothing() {
    let (_db, store) = migrated().await;
    let tenant = tenant_created(&store).await;
    let invoice = mpanel_domain::InvoiceId::new();
    let line = invoice_line(0, 1500);
    let mut tx = store.begin().await.unwrap();
    tx.defer_invoice_line_check().await.unwrap();
    // Accepted while the check waits for the invoice...
    tx.insert_invoice_lines(tenant, &[(invoice, line)])
        .await
        .unwrap();
    // ...which is never written: PostgreSQL refuses when the check is made
    // now, SQLite at commit.
    let outcome = match tx.check_invoice_lines_now().await {
        Ok(()) => tx.commit().await,
        Err(e) => Err(e),
    };
    assert!(outcome.is_err(), "a line without its invoice was committed");
    assert!(
        store
            .invoice_lines(tenant, invoice)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn an_issued_invoice_gets_no_lines_even_with_the_line_check_deferred() {
    use mpanel_domain::billing::invoice::InvoiceStatus;
    use mpanel_domain::billing::tax::TaxMode;
    use mpanel_domain::{CustomerId, InvoiceId};
    use mpanel_store::billing::InvoiceRecord;
    use mpanel_store::orders::CustomerRecord;

    let (_db, store) = migrated().await;
    let at = datetime!(2026-11-21 10:00 UTC);
    let tenant = tenant_created(&store).await;
    let customer = CustomerId::new();
    let invoice = InvoiceId::new();
    let mut tx = store.begin().await.unwrap();
    tx.save_customer(&CustomerRecord {
        id: customer,
        tenant_id: tenant,
        email: "jane@example.com".into(),
        name: "Jane".into(),
        company: None,
        country: "DE".into(),
        tax_id: None,
        address: None,
        credit_balance_minor: 0,
        portal_user_id: None,
        pending_for: None,
        created_at: at,
        updated_at: at,
    })
    .await
    .unwrap();
    tx.insert_invoices(&[InvoiceRecord {
        id: invoice,
        tenant_id: tenant,
        customer_id: customer,
        order_id: None,
        status: InvoiceStatus::Issued,
        number: Some("INV-2026-000001".into()),
        currency: "EUR".into(),
        tax_mode: TaxMode::Exclusive,
        subtotal_minor: 1500,
        tax_minor: 285,
        total_minor: 1785,
        paid_minor: 0,
        credited_minor: 0,
        refunded_minor: 0,
        customer_snapshot: None,
        seller_snapshot: None,
        notes: Vec::new(),
        disputed: false,
        issued_at: Some(at),
        due_at: Some(at),
        paid_at: None,
        voided_at: None,
        created_at: at,
        updated_at: at,
    }])
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    tx.defer_invoice_line_check().await.unwrap();
    let refused = tx
        .insert_invoice_lines(tenant, &[(invoice, invoice_line(5, 100))])
        .await;
    assert!(refused.is_err(), "a line was added to an issued invoice");
    drop(tx);
    assert!(
        store
            .invoice_lines(tenant, invoice)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Jobs about one thing under keys that share a prefix: an earlier live
/// one is found by prefix and by key (another thing's, whose key only
/// begins the same, is not), a finished one no longer counts, and a newer
/// request cancels the ones still waiting but not one running.
#[tokio::test]
async fn earlier_jobs_under_a_key_are_found_and_only_waiting_ones_cancelled() {
    use mpanel_store::jobs::NewJob;
    let (_db, store) = migrated().await;
    let now = datetime!(2027-01-01 00:00 UTC);
    let job = |key: &str| NewJob {
        queue: "default".into(),
        kind: "pod.reboot".into(),
        payload: serde_json::json!({}),
        priority: 0,
        run_at: now,
        max_attempts: 3,
        unique_key: Some(key.into()),
    };
    let (first, _) = store.enqueue(&job("pod.reboot:P1:1"), now).await.unwrap();
    let (before, _) = store.enqueue(&job("pod.reboot:P10:0"), now).await.unwrap();
    let (second, _) = store.enqueue(&job("pod.reboot:P1:2"), now).await.unwrap();
    let (other, _) = store.enqueue(&job("pod.reboot:P10:1"), now).await.unwrap();
    let under = |prefix: &'static str, job| {
        let store = store.clone();
        async move { store.earlier_job_under(prefix, job).await.unwrap() }
    };
    assert!(!under("pod.reboot:P1:", first).await);
    assert!(under("pod.reboot:P1:", second).await);
    assert!(under("pod.reboot:P1:1", second).await, "a whole key");
    assert!(!under("pod.reboot:P1:2", second).await, "not itself");
    assert!(under("pod.reboot:P10:", other).await, "P10's earlier job");
    assert!(
        !under("pod.reboot:P10:", before).await,
        "P1's are not P10's"
    );
    assert!(
        under("pod.reboot:P1", other).await,
        "a shorter prefix takes both"
    );
    let keyed = |key: &str| vec![key.to_owned()];
    assert!(
        store
            .earlier_job_unfinished(&keyed("pod.reboot:P1:1"), second)
            .await
            .unwrap()
    );
    assert!(
        !store
            .earlier_job_unfinished(&keyed("pod.reboot:P1:2"), first)
            .await
            .unwrap()
    );

    // Running still counts; completed does not.
    let lease = now + time::Duration::minutes(5);
    let claimed = store.claim_jobs("w", 2, now, lease).await.unwrap();
    let ids: Vec<_> = claimed.iter().map(|c| c.id).collect();
    assert_eq!(ids, [first, before]);
    assert!(under("pod.reboot:P1:", second).await);
    store.complete_jobs("w", &[first], now).await.unwrap();
    assert!(
        !under("pod.reboot:P1:", second).await,
        "P10's running job is not P1's"
    );
    assert!(under("pod.reboot:P10:", other).await, "running");
    store.complete_jobs("w", &[before], now).await.unwrap();
    assert!(!under("pod.reboot:P10:", other).await);

    // A newer request cancels what waits under its key, not what runs.
    let claimed = store.claim_jobs("w", 1, now, lease).await.unwrap();
    assert_eq!(claimed[0].id, second);
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.cancel_waiting_jobs("pod.reboot:P1:2", now)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        tx.cancel_waiting_jobs("pod.reboot:P10:1", now)
            .await
            .unwrap(),
        1
    );
    tx.commit().await.unwrap();
    assert!(under("pod.reboot:P1", other).await, "the second still runs");
    store.complete_jobs("w", &[second], now).await.unwrap();
    assert!(
        !under("pod.reboot:P1", other).await,
        "no earlier job is live"
    );
}

#[tokio::test]
async fn a_billing_chunk_in_flight_does_not_hold_up_usage_posted_to_its_subscriptions() {
    let (_db, store) = migrated().await;
    if store.engine() == Engine::Sqlite {
        // One writer at a time: every write waits for the chunk there.
        return;
    }
    let tenant = tenant_created(&store).await;
    let (customer, product, sub) = (
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
    );
    let t = tenant.as_uuid();
    for sql in [
        format!(
            "INSERT INTO customers (id, tenant_id, email, name, country, created_at, updated_at)
             VALUES ('{customer}', '{t}', 'c@example.test', 'C', 'DE', now(), now())"
        ),
        format!(
            "INSERT INTO products (id, tenant_id, name, slug, category, billing_model, status,
                 visibility, base_currency, template, created_at, updated_at)
             VALUES ('{product}', '{t}', 'Web', 'web', 'HOSTING', 'RECURRING', 'ACTIVE', 'PUBLIC',
                 'EUR', '{{}}', now(), now())"
        ),
        format!(
            "INSERT INTO subscriptions (id, tenant_id, customer_id, product_id, period, currency,
                 amount_minor, status, created_at, updated_at, next_period, next_bill_at)
             VALUES ('{sub}', '{t}', '{customer}', '{product}', 'MONTHLY', 'EUR', 1500, 'ACTIVE',
                 now(), now(), 1, now() - interval '1 hour')"
        ),
    ] {
        store.execute_raw_for_tests(&sql).await.unwrap();
    }
    let now = time::OffsetDateTime::now_utc();
    // A chunk of the billing run has read (and locked) the subscription.
    let mut chunk = store.begin().await.unwrap();
    let due = chunk
        .due_subscriptions(tenant, now, None, 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    // Usage posted to it meanwhile is written at once, not after the chunk.
    let usage = async {
        let mut tx = store.begin().await?;
        let records = [mpanel_store::billing::NewUsage {
            subscription: mpanel_domain::SubscriptionId::from_uuid(sub),
            metric: "bandwidth_gb".into(),
            quantity: 3,
            occurred_at: now,
            idempotency_key: "k1".into(),
        }];
        let n = tx.insert_usage(tenant, &records, now).await?;
        tx.commit().await?;
        Ok::<_, StoreError>(n)
    };
    let written = tokio::time::timeout(std::time::Duration::from_secs(10), usage)
        .await
        .expect("the usage insert waited for the billing chunk's lock")
        .unwrap();
    assert_eq!(written, 1);
    // A second run still skips what the first holds.
    let mut other = store.begin().await.unwrap();
    assert!(
        other
            .due_subscriptions(tenant, now, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    other.rollback().await.unwrap();
    chunk.rollback().await.unwrap();
}
