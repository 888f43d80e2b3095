//! A hosting account's disk quota meets billing: an over-quota suspension
//! and a suspension for non-payment are each lifted only by what caused
//! it, and the tenant is told once per stretch over quota. The measurement
//! itself (the node's `du-all`) is tested on the real web node in the
//! binary's `disk_quota` test; here the service records given figures.

use mpanel_domain::provisioning::disk_quota::{NodeStep, OverQuotaAction, QuotaPolicy};
use mpanel_domain::{ResourceId, ServerId};
use mpanel_services::hosting_disk;
use mpanel_store::provisioning::{ResourceKind, ResourceRecord};

use super::*;

const MB: i64 = 1024 * 1024;

const SUSPEND: QuotaPolicy = QuotaPolicy {
    action: OverQuotaAction::Suspend,
    grace: Duration::ZERO,
};

/// An ACTIVE site of 1 MB quota for the subscription.
async fn site(app: &TestApp, shop: &Shop, server: ServerId, sub: &Value, name: &str) -> ResourceId {
    let now = app.clock_now();
    let record = ResourceRecord {
        id: ResourceId::new(),
        tenant_id: shop.tenant,
        customer_id: shop.customer.parse().unwrap(),
        subscription_id: sub["id"].as_str().unwrap().parse().unwrap(),
        server_id: server,
        name: name.into(),
        status: mpanel_domain::provisioning::ResourceStatus::Active,
        quota_mb: Some(1),
        php_version: None,
        archive_path: None,
        created_at: now,
        updated_at: now,
    };
    app.store
        .insert_resource(ResourceKind::HostingAccount, &record)
        .await
        .unwrap();
    record.id
}

async fn measure(app: &TestApp, id: ResourceId, used: i64) -> NodeStep {
    hosting_disk::record(
        &app.store,
        app.clock.as_ref(),
        app.clock_now(),
        SUSPEND,
        id,
        used,
    )
    .await
    .unwrap()
    .unwrap()
    .step
}

/// The jobs of `kind` queued for account `id`.
async fn jobs_for(app: &TestApp, kind: &str, id: ResourceId) -> usize {
    let filter = JobFilter {
        kind: Some(kind.into()),
        ..JobFilter::default()
    };
    app.store
        .list_jobs(&filter, None, 100)
        .await
        .unwrap()
        .iter()
        .filter(|j| j.payload["hosting_account_id"] == id.to_string())
        .count()
}

/// What the suspend job records once the node has done it.
async fn suspended(app: &TestApp, id: ResourceId) {
    app.store
        .set_resource_status(
            ResourceKind::HostingAccount,
            id,
            mpanel_domain::provisioning::ResourceStatus::Suspended,
            None,
            app.clock_now(),
        )
        .await
        .unwrap();
}

async fn account(app: &TestApp, shop: &Shop, id: ResourceId) -> Value {
    let list: Value = app
        .get_as(&shop.admin(app).await.access_token, "/api/hosting/accounts")
        .await
        .json()
        .await
        .unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id.to_string())
        .unwrap()
        .clone()
}

#[tokio::test]
async fn payment_leaves_an_over_quota_site_suspended_and_freeing_space_leaves_a_dunned_one() {
    let app = TestApp::start().await;
    let start = datetime!(2027-09-01 08:00 UTC);
    app.clock.set(start);
    let shop = shop(&app, "quota", "UTC").await;
    let plan = product(&app, &shop, "quota-plan", "MONTHLY", 1000, None).await;
    let body = json!({"customer_id": shop.customer, "product_id": plan, "period": "MONTHLY"});
    let (pays, frees) = (
        subscribe(&app, &shop, body.clone()).await,
        subscribe(&app, &shop, body).await,
    );
    let server = app.web_server("web-quota").await;
    let a = site(&app, &shop, server, &pays, "pays.example").await;
    let b = site(&app, &shop, server, &frees, "frees.example").await;

    // Measured over quota: the tenant is told, the sites suspended.
    app.clock.set(start + Duration::hours(1));
    assert_eq!(measure(&app, a, 2 * MB).await, NodeStep::Suspend);
    assert_eq!(measure(&app, b, 2 * MB).await, NodeStep::Suspend);
    assert_eq!(jobs_for(&app, "hosting.account.suspend", a).await, 1);
    // Measured again before the node did it: the waiting job is not asked
    // for, nor audited, twice.
    app.clock.set(start + Duration::minutes(90));
    assert_eq!(measure(&app, a, 2 * MB).await, NodeStep::Suspend);
    assert_eq!(jobs_for(&app, "hosting.account.suspend", a).await, 1);
    let actions = app.store.audit_actions(shop.tenant).await.unwrap();
    assert_eq!(
        actions
            .iter()
            .filter(|x| *x == "hosting.account.suspend")
            .count(),
        2,
        "one per account"
    );
    suspended(&app, a).await;
    suspended(&app, b).await;
    let shown = account(&app, &shop, a).await;
    assert_eq!(shown["over_quota"], true, "{shown}");
    assert_eq!(shown["suspended_for_quota"], true);
    assert_eq!(shown["disk_used_bytes"], 2 * MB);
    assert_eq!(shown["disk_quota_bytes"], MB);
    assert_eq!(shown["disk_measured_at"], rfc3339(app.clock_now()));
    assert_eq!(
        shown["over_quota_since"],
        rfc3339(start + Duration::hours(1)),
        "the first measurement over"
    );
    assert_eq!(shown["status"], "SUSPENDED");

    // An hour later, still over: told once, suspended once.
    app.clock.set(start + Duration::hours(2));
    assert_eq!(measure(&app, a, 3 * MB).await, NodeStep::Nothing);
    let told = |actions: &[String]| {
        actions
            .iter()
            .filter(|a| *a == "hosting.disk.over_quota")
            .count()
    };
    let actions = app.store.audit_actions(shop.tenant).await.unwrap();
    assert_eq!(told(&actions), 2, "once per account, not every hour");
    assert_eq!(account(&app, &shop, a).await["disk_used_bytes"], 3 * MB);

    // Both subscriptions go unpaid and are suspended for it.
    let all = invoices(&app, &shop).await;
    let invoice_of = |sub: &Value| {
        all.iter()
            .find(|i| i["lines"][0]["subscription_id"] == sub["id"])
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let due = start + Duration::days(14);
    app.clock.set(due + Duration::days(7) + Duration::hours(1));
    assert_eq!(bill(&app, &shop).await.suspended, 2);

    // b frees its space: the quota no longer holds it, non-payment does.
    assert_eq!(measure(&app, b, MB / 2).await, NodeStep::Nothing);
    assert_eq!(jobs_for(&app, "hosting.account.unsuspend", b).await, 0);
    let shown = account(&app, &shop, b).await;
    assert_eq!(
        (&shown["over_quota"], &shown["suspended_for_quota"]),
        (&json!(false), &json!(false)),
        "{shown}"
    );

    // a's invoice is paid: its subscription is restored, its site is not.
    let pay = |inv: String| {
        let (app, shop) = (&app, &shop);
        async move {
            let res = post(
                app,
                shop,
                &format!("/api/billing/invoices/{inv}/pay"),
                json!({"amount_minor": 1000, "provider": "BANK_TRANSFER"}),
            )
            .await;
            assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        }
    };
    pay(invoice_of(&pays)).await;
    assert_eq!(
        get_sub(&app, &shop, pays["id"].as_str().unwrap()).await["status"],
        "ACTIVE"
    );
    assert_eq!(jobs_for(&app, "hosting.account.unsuspend", a).await, 0);

    // a frees its space: now it is restored.
    assert_eq!(measure(&app, a, MB).await, NodeStep::Unsuspend);
    assert_eq!(jobs_for(&app, "hosting.account.unsuspend", a).await, 1);
    let actions = app.store.audit_actions(shop.tenant).await.unwrap();
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "hosting.disk.under_quota")
            .count(),
        2
    );

    // b's invoice is paid: the payment restores it.
    pay(invoice_of(&frees)).await;
    assert_eq!(jobs_for(&app, "hosting.account.unsuspend", b).await, 1);
}
