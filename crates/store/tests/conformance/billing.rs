//! Billing: gapless numbers, public prices, invoice lines and the billing
//! run's locks against usage being posted.

use mpanel_domain::billing::subscription::SubscriptionStatus;
use mpanel_domain::{ProductId, SubscriptionId};
use mpanel_store::billing::NewUsage;

use super::*;

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
    let (_db, store) = migrated().await;
    let tenant = tenant_created(&store).await;
    let invoice = issued_invoice(&store, tenant, "INV-2026-000001").await;

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

/// A customer, a product and one ACTIVE monthly subscription of the
/// tenant whose next period began an hour ago (PostgreSQL SQL).
async fn one_due_subscription(store: &Store, tenant: TenantId) -> SubscriptionId {
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
    SubscriptionId::from_uuid(sub)
}

/// An invoice issued to a new customer of `tenant`, numbered `number`.
async fn issued_invoice(store: &Store, tenant: TenantId, number: &str) -> mpanel_domain::InvoiceId {
    invoice_of(store, tenant, Some(number)).await
}

/// A draft invoice of a new customer of `tenant` (no number), or with
/// `number` an issued one.
async fn invoice_of(
    store: &Store,
    tenant: TenantId,
    number: Option<&str>,
) -> mpanel_domain::InvoiceId {
    use mpanel_domain::billing::invoice::InvoiceStatus;
    use mpanel_domain::billing::tax::TaxMode;
    use mpanel_domain::{CustomerId, InvoiceId};
    use mpanel_store::billing::InvoiceRecord;
    use mpanel_store::orders::CustomerRecord;

    let at = datetime!(2026-11-21 10:00 UTC);
    let customer = CustomerId::new();
    let invoice = InvoiceId::new();
    let mut tx = store.begin().await.unwrap();
    tx.save_customer(&CustomerRecord {
        id: customer,
        tenant_id: tenant,
        email: format!(
            "{}@example.com",
            number.map_or(invoice.to_string(), str::to_owned)
        ),
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
        status: if number.is_some() {
            InvoiceStatus::Issued
        } else {
            InvoiceStatus::Draft
        },
        number: number.map(str::to_owned),
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
        issued_at: number.map(|_| at),
        due_at: number.map(|_| at),
        paid_at: None,
        voided_at: None,
        created_at: at,
        updated_at: at,
    }])
    .await
    .unwrap();
    tx.commit().await.unwrap();
    invoice
}

/// Dunning's page takes its invoices after a payment (or void) in flight,
/// and one closed meanwhile leaves the page: its subscriptions are not
/// suspended after it was paid.
#[tokio::test]
async fn an_invoice_closed_while_dunning_waits_for_it_leaves_the_page() {
    let (_db, store) = migrated().await;
    if store.engine() == Engine::Sqlite {
        // One writer at a time: the page reads what is committed.
        return;
    }
    let tenant = tenant_created(&store).await;
    let closed = issued_invoice(&store, tenant, "INV-2026-000001").await;
    let open = issued_invoice(&store, tenant, "INV-2026-000002").await;
    let mut payment = store.begin().await.unwrap();
    payment
        .invoice_for_update(tenant, closed)
        .await
        .unwrap()
        .unwrap();
    payment
        .void_invoice(tenant, closed, datetime!(2026-11-22 10:00 UTC))
        .await
        .unwrap();
    let mut page = store.begin().await.unwrap();
    let ids = [closed, open];
    let mut taking = Box::pin(page.share_open_invoices(tenant, &ids));
    assert!(
        still_waiting(&mut taking).await,
        "the page took an invoice being paid"
    );
    payment.commit().await.unwrap();
    assert_eq!(taking.await.unwrap(), vec![open]);
    page.rollback().await.unwrap();
}

/// A dunning page about to suspend takes the subscriptions its invoices
/// charge as an update of their fields does: a staff change of one waits
/// for the page, usage checked against it does not (a termination's
/// `close_usage_of`, taken after, is what stops usage).
#[tokio::test]
async fn a_dunning_page_holds_its_subscriptions_without_holding_up_their_usage() {
    let Some((_db, store, tenant, sub)) = postgres_with_a_due_subscription().await else {
        return;
    };
    let invoice = invoice_of(&store, tenant, None).await;
    store
        .execute_raw_for_tests(&format!(
            "INSERT INTO invoice_lines (id, tenant_id, invoice_id, position, kind, source,
                 description, quantity, unit_price, amount_minor, tax_rate, net_minor,
                 tax_minor, subscription_id)
             VALUES ('{}', '{}', '{}', 1, 'ITEM', 'SUBSCRIPTION', 'Web', '1', '15.00', 1500,
                 '0', 1500, 0, '{}')",
            uuid::Uuid::now_v7(),
            tenant.as_uuid(),
            invoice.as_uuid(),
            sub.as_uuid()
        ))
        .await
        .unwrap();
    let mut page = store.begin().await.unwrap();
    page.lock_subscriptions_of_invoices(tenant, &[invoice])
        .await
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    usage_posted_at_once(&store, tenant, sub, now, "the dunning page").await;
    let mut change = Box::pin(async {
        let mut tx = store.begin().await?;
        let found = tx.subscription_for_update(tenant, sub).await?.is_some();
        tx.rollback().await?;
        Ok::<_, StoreError>(found)
    });
    assert!(
        still_waiting(&mut change).await,
        "a change of the subscription waits for the page"
    );
    page.rollback().await.unwrap();
    assert!(change.await.unwrap());
}

/// One usage record posted to `sub` is checked and written without waiting
/// on `holder` (10 s at most: past that, it waited).
async fn usage_posted_at_once(
    store: &Store,
    tenant: TenantId,
    sub: SubscriptionId,
    now: time::OffsetDateTime,
    holder: &str,
) {
    let usage = async {
        let mut tx = store.begin().await?;
        assert_eq!(tx.usage_targets(tenant, &[sub]).await?.len(), 1);
        let n = tx
            .insert_usage(tenant, &[usage_record(sub, "k1", now)], now)
            .await?;
        tx.commit().await?;
        Ok::<_, StoreError>(n)
    };
    let written = tokio::time::timeout(std::time::Duration::from_secs(10), usage)
        .await
        .unwrap_or_else(|_| panic!("the usage insert waited for {holder}"))
        .unwrap();
    assert_eq!(written, 1);
}

fn usage_record(sub: SubscriptionId, key: &str, at: time::OffsetDateTime) -> NewUsage {
    NewUsage {
        subscription: sub,
        metric: "bandwidth_gb".into(),
        quantity: 3,
        occurred_at: at,
        idempotency_key: key.into(),
    }
}

/// A billing chunk's transaction that has read (and locked) the tenant's
/// due subscriptions, and how many it read.
async fn chunk_reading_due(
    store: &Store,
    tenant: TenantId,
    now: time::OffsetDateTime,
) -> (mpanel_store::Tx, usize) {
    let mut chunk = store.begin().await.unwrap();
    let due = chunk
        .due_subscriptions(tenant, now, None, 10)
        .await
        .unwrap();
    (chunk, due.len())
}

/// On PostgreSQL, a migrated database with a tenant and one subscription
/// due (see [`one_due_subscription`]); `None` on SQLite, where writers take
/// turns and the lock tests have nothing to show.
async fn postgres_with_a_due_subscription()
-> Option<(TestDatabase, Store, TenantId, SubscriptionId)> {
    let (db, store) = migrated().await;
    if store.engine() == Engine::Sqlite {
        return None;
    }
    let tenant = tenant_created(&store).await;
    let sub = one_due_subscription(&store, tenant).await;
    Some((db, store, tenant, sub))
}

/// Whether `work` is still waiting after a moment (it waits on a lock
/// for as long as the lock is held, so a short look tells).
async fn still_waiting<F: std::future::Future + Unpin>(work: &mut F) -> bool {
    tokio::time::timeout(std::time::Duration::from_millis(300), work)
        .await
        .is_err()
}

#[tokio::test]
async fn a_billing_chunk_in_flight_does_not_hold_up_usage_posted_to_its_subscriptions() {
    // SQLite's writers take turns: nothing to race there.
    let Some((_db, store, tenant, sub)) = postgres_with_a_due_subscription().await else {
        return;
    };
    let now = time::OffsetDateTime::now_utc();
    // A chunk of the billing run has read (and locked) the subscription.
    let (chunk, due) = chunk_reading_due(&store, tenant, now).await;
    assert_eq!(due, 1);
    // Usage posted to it meanwhile is checked and written at once, not
    // after the chunk.
    usage_posted_at_once(&store, tenant, sub, now, "the billing chunk's lock").await;
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

/// A plan change moves a subscription to a metered product while usage is
/// being checked against it: the check waits for the change (which closes
/// the old product's usage first) and then reads the subscription on its
/// new product, not "no such subscription".
#[tokio::test]
async fn usage_checked_during_a_plan_change_reads_the_subscription_on_its_new_product() {
    // SQLite's writers take turns: nothing to race there.
    let Some((_db, store, tenant, sub)) = postgres_with_a_due_subscription().await else {
        return;
    };
    let metered = uuid::Uuid::now_v7();
    store
        .execute_raw_for_tests(&format!(
            "INSERT INTO products (id, tenant_id, name, slug, category, billing_model, status,
                 visibility, base_currency, template, usage, created_at, updated_at)
             VALUES ('{metered}', '{}', 'Metered', 'metered', 'HOSTING', 'RECURRING', 'ACTIVE',
                 'PUBLIC', 'EUR', '{{}}', '{{\"metric\": \"bandwidth_gb\"}}', now(), now())",
            tenant.as_uuid()
        ))
        .await
        .unwrap();

    let mut change = store.begin().await.unwrap();
    change.close_usage_of(&[sub]).await.unwrap();
    let mut moved = change
        .subscription_for_update(tenant, sub)
        .await
        .unwrap()
        .unwrap();
    moved.product_id = ProductId::from_uuid(metered);
    change.save_subscription(&moved).await.unwrap();
    let mut usage = store.begin().await.unwrap();
    let subs = [sub];
    let mut check = Box::pin(usage.usage_targets(tenant, &subs));
    assert!(
        still_waiting(&mut check).await,
        "usage was checked against a subscription being moved"
    );
    change.commit().await.unwrap();
    let targets = check.await.unwrap();
    assert_eq!(targets.len(), 1, "the moved subscription was not found");
    assert_eq!(
        targets[0].usage.as_ref().map(|u| u["metric"].clone()),
        Some(serde_json::json!("bandwidth_gb")),
        "read with its old product"
    );
    usage.rollback().await.unwrap();
}

#[tokio::test]
async fn a_term_ending_and_usage_posted_to_it_wait_for_each_other() {
    // SQLite's writers take turns: nothing to race there.
    let Some((_db, store, tenant, sub)) = postgres_with_a_due_subscription().await else {
        return;
    };
    let now = time::OffsetDateTime::now_utc();

    // Usage checked first: the chunk still takes the subscription (no
    // skip), but closing its usage waits until that usage is committed,
    // so the term's final invoice reads it.
    let mut usage = store.begin().await.unwrap();
    let targets = usage.usage_targets(tenant, &[sub]).await.unwrap();
    assert_eq!(targets[0].status, "ACTIVE");
    let (mut chunk, due) = chunk_reading_due(&store, tenant, now).await;
    assert_eq!(
        due, 1,
        "the run skipped a subscription usage was being posted to"
    );
    let subs = [sub];
    let mut close = Box::pin(chunk.close_usage_of(&subs));
    assert!(
        still_waiting(&mut close).await,
        "the term's usage was closed while usage was being posted to it"
    );
    usage
        .insert_usage(tenant, &[usage_record(sub, "before-the-end", now)], now)
        .await
        .unwrap();
    usage.commit().await.unwrap();
    close.await.unwrap();
    chunk.rollback().await.unwrap();

    // The term ends first: usage checked meanwhile waits for the end, then
    // reads the subscription ended (and is refused by the service).
    let (mut chunk, _) = chunk_reading_due(&store, tenant, now).await;
    chunk.close_usage_of(&[sub]).await.unwrap();
    let mut usage = store.begin().await.unwrap();
    let mut check = Box::pin(usage.usage_targets(tenant, &subs));
    assert!(
        still_waiting(&mut check).await,
        "usage was checked against a term that was being ended"
    );
    let mut ended = chunk
        .subscription_for_update(tenant, sub)
        .await
        .unwrap()
        .unwrap();
    ended.status = SubscriptionStatus::Cancelled;
    chunk.save_subscription(&ended).await.unwrap();
    chunk.commit().await.unwrap();
    let targets = check.await.unwrap();
    assert_eq!(targets[0].status, "CANCELLED");
    usage.rollback().await.unwrap();
}
