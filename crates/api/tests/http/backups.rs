//! `/api/hosting/accounts/{id}/backups` and `/api/mail/accounts/{id}/backups`:
//! staff and the account's customer see them; another customer's or
//! tenant's account is 404; a role without the permission is 403; an
//! account not yet taken in by the schedule answers 409 to a backup or a
//! restore. (The backups themselves, on the real nodes, are proven in the
//! binary tests.)

use mpanel_domain::identity::Role;
use serde_json::{Value, json};

use crate::support::TestApp;

async fn call(app: &TestApp, token: &str, post: Option<Value>, path: &str) -> (u16, Value) {
    let res = match post {
        Some(body) => app.post_as(token, path, body).await,
        None => app.get_as(token, path).await,
    };
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn backups_are_the_accounts_customer_and_staffs_and_nobody_elses() {
    let app = TestApp::start().await;
    let (admin, customer, site) = crate::hosting_sftp::shop(&app).await;
    let list = format!("/api/hosting/accounts/{site}/backups");
    for token in [&admin.access_token, &customer.access_token] {
        let (status, body) = call(&app, token, None, &list).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, json!({"target": null, "snapshots": [], "runs": []}));
        // Not taken in yet: nothing to back up or restore.
        let (status, body) = call(&app, token, Some(json!({})), &list).await;
        assert_eq!(status, 409, "{body}");
        let restore = format!("{list}/0123abcd/restore");
        let (status, body) = call(&app, token, Some(json!({})), &restore).await;
        assert_eq!(status, 409, "{body}");
    }

    let other = app
        .account("alpha", "other@alpha.test", Role::Customer)
        .await;
    let rival_admin = app
        .account("bravo", "admin@bravo.test", Role::TenantAdmin)
        .await;
    let rival_customer = app.account("bravo", "c@bravo.test", Role::Customer).await;
    for token in [
        &other.access_token,
        &rival_admin.access_token,
        &rival_customer.access_token,
    ] {
        for (post, path) in [
            (None, list.clone()),
            (Some(json!({})), list.clone()),
            (
                Some(json!({"to": "BESIDE"})),
                format!("{list}/0123abcd/restore"),
            ),
        ] {
            let (status, body) = call(&app, token, post, &path).await;
            assert_eq!(status, 404, "{path}: {body}");
        }
    }
    let nobody = mpanel_domain::ResourceId::new();
    for path in [
        format!("/api/mail/accounts/{nobody}/backups"),
        format!("/api/hosting/accounts/{nobody}/backups"),
    ] {
        let (status, _) = call(&app, &admin.access_token, None, &path).await;
        assert_eq!(status, 404, "{path}");
    }

    // Billing staff hold neither permission.
    let billing = app
        .account("alpha", "billing@alpha.test", Role::Billing)
        .await;
    let (status, _) = call(&app, &billing.access_token, None, &list).await;
    assert_eq!(status, 403);
    let (status, _) = call(&app, &billing.access_token, Some(json!({})), &list).await;
    assert_eq!(status, 403);
}
