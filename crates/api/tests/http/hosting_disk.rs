//! `GET /api/hosting/accounts` (staff) and `GET /api/me/hosting/accounts`
//! `[/{id}]` (the account's customer) show the measured disk use against
//! the plan's quota; another customer's or tenant's account is not shown
//! (404 by id), a caller without the permission gets 403.

use mpanel_domain::identity::Role;
use mpanel_domain::provisioning::disk_quota::{OverQuotaAction, QuotaPolicy};
use serde_json::Value;

use crate::support::TestApp;

const MB: i64 = 1024 * 1024;

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let res = app.get_as(token, path).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_customer_and_staff_see_the_measured_disk_use_and_no_one_else_does() {
    let app = TestApp::start().await;
    let (admin, customer, site) = crate::hosting_sftp::shop(&app).await;
    let record = app
        .store
        .resource(
            mpanel_store::provisioning::ResourceKind::HostingAccount,
            admin.tenant_id,
            site,
        )
        .await
        .unwrap()
        .unwrap();
    let mut tx = app.store.begin().await.unwrap();
    tx.set_subscription_quotas(record.subscription_id, Some(5), None, app.clock_now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mine = format!("/api/me/hosting/accounts/{site}");

    // Not measured yet: no figures, not over.
    let (status, body) = get(&app, &customer.access_token, &mine).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["disk_used_bytes"], Value::Null);
    assert_eq!(body["disk_quota_bytes"], 5 * MB);
    assert_eq!(body["over_quota"], false);

    let notify = QuotaPolicy {
        action: OverQuotaAction::Notify,
        grace: time::Duration::ZERO,
    };
    let a = mpanel_services::hosting_disk::record(
        &app.store,
        app.clock.as_ref(),
        app.clock_now(),
        notify,
        site,
        6 * MB,
    )
    .await
    .unwrap()
    .unwrap();
    assert!(a.over && a.newly_over);
    let at = app
        .clock_now()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    for (token, path) in [
        (&customer.access_token, mine.clone()),
        (&customer.access_token, "/api/me/hosting/accounts".into()),
        (&admin.access_token, "/api/hosting/accounts".into()),
    ] {
        let (status, body) = get(&app, token, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let item = if body["items"].is_array() {
            assert_eq!(body["items"].as_array().unwrap().len(), 1, "{body}");
            body["items"][0].clone()
        } else {
            body
        };
        assert_eq!(item["id"], site.to_string());
        assert_eq!(item["disk_used_bytes"], 6 * MB, "{path}: {item}");
        assert_eq!(item["disk_quota_bytes"], 5 * MB);
        assert_eq!(item["disk_measured_at"], at);
        assert_eq!(item["over_quota"], true);
        assert_eq!(item["suspended_for_quota"], false, "NOTIFY never suspends");
        assert_eq!(item["status"], "ACTIVE");
    }

    // Another customer of the tenant, and another tenant's people: none.
    let other = app
        .account("alpha", "other@alpha.test", Role::Customer)
        .await;
    let rival_customer = app
        .account("bravo", "customer@bravo.test", Role::Customer)
        .await;
    let rival_admin = app
        .account("bravo", "admin@bravo.test", Role::TenantAdmin)
        .await;
    for token in [&other.access_token, &rival_customer.access_token] {
        let (status, _) = get(&app, token, &mine).await;
        assert_eq!(status, 404);
        let (status, body) = get(&app, token, "/api/me/hosting/accounts").await;
        assert_eq!(status, 200);
        assert_eq!(body["items"], serde_json::json!([]));
    }
    let (status, body) = get(&app, &rival_admin.access_token, "/api/hosting/accounts").await;
    assert_eq!((status, &body["items"]), (200, &serde_json::json!([])));
    let (status, _) = get(
        &app,
        &customer.access_token,
        "/api/me/hosting/accounts/nope",
    )
    .await;
    assert_eq!(status, 404);

    // Without the permission: a customer on the staff list, and a token
    // of the customer's without the READ scope.
    let (status, _) = get(&app, &customer.access_token, "/api/hosting/accounts").await;
    assert_eq!(status, 403);
    let (token, _) = app.api_token(&customer.access_token, &["SECURITY"]).await;
    for path in [mine.as_str(), "/api/me/hosting/accounts"] {
        let (status, _) = get(&app, &token, path).await;
        assert_eq!(status, 403, "{path}");
    }
}
