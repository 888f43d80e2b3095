//! Subscriptions and the billing run over HTTP, with the server's clock
//! moved by the test: month ends and leap days, DST in a non-UTC tenant,
//! hourly billing across a DST change, trials, cancellation, catch-up after
//! an outage, proration, usage, and dunning with restoration on payment.

mod calendar;
mod changes;
mod chunks;
mod collection;
mod disk_quota;
mod reminder_mail;
mod staff_orders;

use mpanel_domain::identity::Role;
use mpanel_domain::{Clock, TenantId};
use mpanel_services::billing::run::{RunReport, RunScope, run};
use mpanel_store::jobs::JobFilter;
use serde_json::{Value, json};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::billing::{customer, put_settings};
use crate::support::{Account, TestApp};

struct Shop {
    tenant: TenantId,
    account: Account,
    customer: String,
}

impl Shop {
    /// The billing admin with an API token made at the clock's current
    /// time: the clock moves by years here, further than any token lives.
    async fn admin(&self, app: &TestApp) -> Account {
        let mut admin = self.account.clone();
        admin.access_token = app
            .fixture_api_token(&admin, &["READ", "WRITE", "BILLING"])
            .await;
        admin
    }
}

async fn shop(app: &TestApp, slug: &str, zone: &str) -> Shop {
    mpanel_services::tenants::create_tenant(
        &app.store,
        app.clock.as_ref(),
        &mpanel_services::Actor::cli("test"),
        &mpanel_services::tenants::CreateTenant {
            slug: slug.into(),
            name: slug.into(),
            timezone: zone.into(),
            default_currency: "EUR".into(),
            profile: Default::default(),
        },
    )
    .await
    .unwrap();
    let admin = app
        .account(slug, &format!("billing@{slug}.test"), Role::TenantAdmin)
        .await;
    let customer = customer(app, &admin, &format!("jane@{slug}.test"), "FR", None).await;
    Shop {
        tenant: admin.tenant_id,
        account: admin,
        customer,
    }
}

/// A product priced `amount` per `period`, with an optional usage block.
async fn product(
    app: &TestApp,
    shop: &Shop,
    slug: &str,
    period: &str,
    amount: i64,
    usage: Option<Value>,
) -> String {
    let (model, category) = match &usage {
        Some(_) => ("USAGE_TIERED", "CLOUDPOD"),
        None => ("RECURRING", "HOSTING"),
    };
    let mut body = json!({"name": slug, "slug": slug, "category": category, "billing_model": model,
        "status": "ACTIVE", "visibility": "PUBLIC", "base_currency": "EUR",
        "provisioning_template": {"type": "NONE"}});
    if let Some(u) = usage {
        body["usage"] = u;
    }
    let res = app
        .post_as(
            &shop.admin(app).await.access_token,
            "/api/billing/products",
            body,
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .post_as(
            &shop.admin(app).await.access_token,
            &format!("/api/billing/products/{id}/prices"),
            json!({"period": period, "currency": "EUR", "amount_minor": amount, "setup_fee_minor": 0}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    id
}

async fn subscribe(app: &TestApp, shop: &Shop, body: Value) -> Value {
    let res = app
        .post_as(
            &shop.admin(app).await.access_token,
            "/api/billing/subscriptions",
            body,
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    res.json().await.unwrap()
}

/// Runs the `billing.final_usage` jobs queued so far, as a worker would
/// (each is a no-op once done).
async fn bill_final_usage(app: &TestApp) {
    use mpanel_services::billing::final_usage::{FINAL_USAGE_JOB, FinalUsage, bill_final_usage};
    let filter = JobFilter {
        kind: Some(FINAL_USAGE_JOB.into()),
        ..JobFilter::default()
    };
    let jobs = app.store.list_jobs(&filter, None, 100).await.unwrap();
    assert!(!jobs.is_empty(), "no billing.final_usage job was queued");
    for job in jobs {
        let job: FinalUsage = serde_json::from_value(job.payload).unwrap();
        bill_final_usage(&app.store, app.clock.as_ref(), &job)
            .await
            .unwrap();
    }
}

async fn bill(app: &TestApp, shop: &Shop) -> RunReport {
    let scope = RunScope::new(Some(shop.tenant), app.clock.now());
    run(&app.store, app.clock.as_ref(), &scope, &|_| {})
        .await
        .unwrap()
}

/// The shop's customer's invoices, oldest first, with their lines.
async fn invoices(app: &TestApp, shop: &Shop) -> Vec<Value> {
    invoices_of(app, shop, &shop.customer).await
}

/// `customer`'s invoices in the shop, oldest first, with their lines.
async fn invoices_of(app: &TestApp, shop: &Shop, customer: &str) -> Vec<Value> {
    let page: Value = app
        .get_as(
            &shop.admin(app).await.access_token,
            &format!("/api/billing/invoices?customer_id={customer}&limit=200"),
        )
        .await
        .json()
        .await
        .unwrap();
    let mut out = Vec::new();
    for inv in page["items"].as_array().unwrap().iter().rev() {
        let id = inv["id"].as_str().unwrap();
        out.push(crate::billing::get_invoice(app, &shop.admin(app).await, id).await);
    }
    out
}

fn first_line(inv: &Value) -> String {
    inv["lines"][0]["description"].as_str().unwrap().to_owned()
}

async fn get_sub(app: &TestApp, shop: &Shop, id: &str) -> Value {
    app.get_as(
        &shop.admin(app).await.access_token,
        &format!("/api/billing/subscriptions/{id}"),
    )
    .await
    .json()
    .await
    .unwrap()
}

async fn post(app: &TestApp, shop: &Shop, path: &str, body: Value) -> reqwest::Response {
    app.post_as(&shop.admin(app).await.access_token, path, body)
        .await
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// A shop and a monthly subscription (EUR 5.00) of a product metering
/// `bandwidth_gb` at EUR 0.02, started 2027-06-01 (its first period billed).
async fn metered_subscription(app: &TestApp, slug: &str) -> (Shop, String) {
    app.clock.set(datetime!(2027-06-01 00:00 UTC));
    let shop = shop(app, slug, "UTC").await;
    let usage = json!({"metric": "bandwidth_gb", "tier_mode": "GRADUATED",
        "tiers": [{"unit_price": "0.02"}]});
    let plan = product(app, &shop, slug, "MONTHLY", 500, Some(usage)).await;
    let sub = subscribe(
        app,
        &shop,
        json!({"customer_id": shop.customer, "product_id": plan, "period": "MONTHLY"}),
    )
    .await;
    (shop, sub["id"].as_str().unwrap().to_owned())
}

/// Posts one usage record of `bandwidth_gb`; answers the status.
async fn record_usage(
    app: &TestApp,
    shop: &Shop,
    id: &str,
    key: &str,
    occurred_at: &str,
    quantity: i64,
) -> u16 {
    post(app, shop, &format!("/api/billing/subscriptions/{id}/usage"),
        json!({"metric": "bandwidth_gb", "quantity": quantity, "occurred_at": occurred_at, "idempotency_key": key}))
        .await
        .status()
        .as_u16()
}

/// The one invoice issued since `billed_before` invoices: the usage of
/// [`metered_subscription`]'s 120 units at EUR 0.02, on a usage line.
async fn one_usage_invoice(app: &TestApp, shop: &Shop, billed_before: usize) -> Value {
    let mut all = invoices(app, shop).await;
    assert_eq!(
        all.len(),
        billed_before + 1,
        "no invoice for the usage so far"
    );
    let last = all.pop().unwrap();
    assert_eq!(last["total_minor"], 120 * 2);
    assert_eq!(last["lines"][0]["source"], "USAGE");
    last
}

/// Nothing resumed a subscription (no `subscription.resume` audited).
async fn assert_nothing_resumed(app: &TestApp, shop: &Shop) {
    let actions = app.store.audit_actions(shop.tenant).await.unwrap();
    assert!(
        !actions.iter().any(|a| a == "subscription.resume"),
        "a subscription being ended was resumed: {actions:?}"
    );
}
