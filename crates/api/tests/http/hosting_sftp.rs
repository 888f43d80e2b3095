//! `PUT /api/hosting/accounts/{id}/sftp` (staff) and
//! `PUT /api/me/hosting/accounts/{id}/sftp` (the account's customer): the
//! job carries a SHA-512-crypt hash, never the password; another
//! customer's account is 404, a role without the permission 403, bad input
//! 422 and queues nothing.

use mpanel_domain::identity::Role;
use mpanel_store::jobs::JobFilter;
use serde_json::{Value, json};

use crate::support::{Account, TestApp};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHJ6c3VyZS1ub3QtYS1yZWFsLWtleS1hdC1hbGwh me@laptop";

/// Tenant `alpha` with an admin, a customer (from an order) whose portal
/// user can sign in, and that customer's hosting account.
pub(crate) async fn shop(app: &TestApp) -> (Account, Account, mpanel_domain::ResourceId) {
    let admin = app
        .account("alpha", "admin@alpha.test", Role::TenantAdmin)
        .await;
    let product = crate::orders::product(
        app,
        &admin,
        "web",
        "ACTIVE",
        "PUBLIC",
        json!({"type": "NONE"}),
    )
    .await;
    let res = app
        .post_order(
            "alpha",
            &app.webhook_secret("alpha"),
            "alpha-1",
            &json!({"customer": {"email": "c@alpha.test", "name": "C", "country": "DE"},
                    "items": [{"product_id": product, "period": "MONTHLY", "domain": "alpha.example"}],
                    "currency": "EUR"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let placed: Value = res.json().await.unwrap();
    let customer_id: mpanel_domain::CustomerId =
        placed["customer_id"].as_str().unwrap().parse().unwrap();
    // The customer's portal user, signed in.
    let customer = app.account("alpha", "me@alpha.test", Role::Customer).await;
    let mut record = app
        .store
        .customer(admin.tenant_id, customer_id)
        .await
        .unwrap()
        .unwrap();
    record.portal_user_id = Some(customer.user_id);
    let mut tx = app.store.begin().await.unwrap();
    tx.save_customer(&record).await.unwrap();
    tx.commit().await.unwrap();

    let now = app.clock_now();
    let server_id = app.web_server("web-1").await;
    let site = mpanel_store::provisioning::ResourceRecord {
        id: mpanel_domain::ResourceId::new(),
        tenant_id: admin.tenant_id,
        customer_id,
        subscription_id: placed["items"][0]["subscription_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
        server_id,
        name: "alpha.example".into(),
        status: mpanel_domain::provisioning::ResourceStatus::Active,
        quota_mb: None,
        php_version: None,
        archive_path: None,
        created_at: now,
        updated_at: now,
    };
    app.store
        .insert_resource(
            mpanel_store::provisioning::ResourceKind::HostingAccount,
            &site,
        )
        .await
        .unwrap();
    (admin, customer, site.id)
}

async fn sftp_jobs(app: &TestApp) -> Vec<Value> {
    let filter = JobFilter {
        state: None,
        kind: Some("hosting.account.sftp".into()),
        queue: None,
    };
    app.store
        .list_jobs(&filter, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.payload)
        .collect()
}

async fn put(app: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value) {
    let res = app
        .call(reqwest::Method::PUT, path, Some(token), Some(body))
        .await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn staff_and_the_accounts_customer_queue_sftp_access_as_a_hash() {
    let app = TestApp::start().await;
    let (admin, customer, site) = shop(&app).await;
    let staff = format!("/api/hosting/accounts/{site}/sftp");
    let mine = format!("/api/me/hosting/accounts/{site}/sftp");

    let (status, body) = put(
        &app,
        &admin.access_token,
        &staff,
        json!({"password": "a long sftp password", "keys": [KEY]}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let jobs = sftp_jobs(&app).await;
    assert_eq!(jobs.len(), 1);
    let hash = jobs[0]["password_hash"].as_str().unwrap();
    assert!(hash.starts_with("$6$"), "{hash}");
    assert!(!jobs[0].to_string().contains("a long sftp password"));
    assert_eq!(jobs[0]["keys"], json!([KEY]));
    assert_eq!(jobs[0]["hosting_account_id"], site.to_string());

    // The customer sets their own; keys only leaves the password alone.
    let (status, body) = put(&app, &customer.access_token, &mine, json!({"keys": []})).await;
    assert_eq!(status, 202, "{body}");
    let jobs = sftp_jobs(&app).await;
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0]["password_hash"], Value::Null);
    assert_eq!(jobs[0]["keys"], json!([]));
    // The newer change replaced the older one still waiting: the key it
    // removed cannot come back when the older one would have been retried.
    let states: Vec<String> = app
        .store
        .list_jobs(
            &JobFilter {
                state: None,
                kind: Some("hosting.account.sftp".into()),
                queue: None,
            },
            None,
            100,
        )
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.state.as_str().to_owned())
        .collect();
    assert_eq!(states, vec!["pending", "cancelled"], "newest first");

    // Another customer of the same tenant: not found; the customer on the
    // staff route, or billing staff: forbidden.
    let other = app
        .account("alpha", "other@alpha.test", Role::Customer)
        .await;
    let (status, _) = put(&app, &other.access_token, &mine, json!({"keys": []})).await;
    assert_eq!(status, 404);
    let (status, _) = put(&app, &customer.access_token, &staff, json!({"keys": []})).await;
    assert_eq!(status, 403);
    let billing = app
        .account("alpha", "billing@alpha.test", Role::Billing)
        .await;
    let (status, _) = put(&app, &billing.access_token, &staff, json!({"keys": []})).await;
    assert_eq!(status, 403);
    let (status, _) = put(
        &app,
        &admin.access_token,
        &format!("/api/hosting/accounts/{}/sftp", uuid::Uuid::now_v7()),
        json!({"keys": []}),
    )
    .await;
    assert_eq!(status, 404);
    // Another tenant's staff and customers, with this account's real id.
    let rival_admin = app
        .account("bravo", "admin@bravo.test", Role::TenantAdmin)
        .await;
    let (status, _) = put(&app, &rival_admin.access_token, &staff, json!({"keys": []})).await;
    assert_eq!(status, 404, "another tenant's staff");
    let rival_customer = app
        .account("bravo", "customer@bravo.test", Role::Customer)
        .await;
    let (status, _) = put(
        &app,
        &rival_customer.access_token,
        &mine,
        json!({"keys": []}),
    )
    .await;
    assert_eq!(status, 404, "another tenant's customer");

    // Bad input: 422, nothing queued.
    for bad in [
        json!({}),
        json!({"password": "short"}),
        json!({"keys": ["command=\"sh\" ssh-ed25519 AAAA"]}),
        json!({"keys": ["ssh-ed25519 AAAA\nssh-ed25519 BBBB"]}),
    ] {
        let (status, body) = put(&app, &admin.access_token, &staff, bad.clone()).await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
    assert_eq!(sftp_jobs(&app).await.len(), 2);
}
