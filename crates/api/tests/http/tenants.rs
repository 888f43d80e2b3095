//! Tenants over the API for the platform's operator: create, read, change
//! and suspend; a suspended tenant's users cannot sign in and its public
//! catalog and order webhook refuse; tenant staff cannot reach any of it.

use mpanel_domain::identity::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{PASSWORD, TestApp};

async fn patch(app: &TestApp, bearer: &str, id: &str, body: Value) -> reqwest::Response {
    app.call(
        Method::PATCH,
        &format!("/api/tenants/{id}"),
        Some(bearer),
        Some(body),
    )
    .await
}

async fn code(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_operator_creates_changes_and_suspends_tenants() {
    let app = TestApp::start().await;
    let ops = app
        .account("platform", "ops@platform.test", Role::SuperAdmin)
        .await;
    let res = app
        .post_as(
            &ops.access_token,
            "/api/tenants",
            json!({"slug": "globex", "name": "Globex Hosting", "timezone": "Europe/Berlin",
                   "default_currency": "EUR", "support_email": "help@globex.example",
                   "sender_name": "Globex Billing", "sender_address": "billing@globex.example",
                   "logo_url": "https://globex.example/logo.png"}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let created: Value = res.json().await.unwrap();
    let secret = created["webhook_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let globex = created["tenant"].clone();
    assert_eq!(globex["status"], "ACTIVE");
    assert_eq!(globex["sender_name"], "Globex Billing");
    let id = globex["id"].as_str().unwrap().to_owned();

    // Bad input names the field and makes nothing.
    for (body, field) in [
        (
            json!({"slug": "Bad Slug", "name": "X", "timezone": "UTC", "default_currency": "EUR"}),
            "slug",
        ),
        (
            json!({"slug": "initech", "name": "X", "timezone": "Mars/Base", "default_currency": "EUR"}),
            "timezone",
        ),
        (
            json!({"slug": "initech", "name": "X", "timezone": "UTC", "default_currency": "EUR",
                "support_email": "help@-initech.example"}),
            "support_email",
        ),
        (
            json!({"slug": "initech", "name": "X", "timezone": "UTC", "default_currency": "EUR",
                "logo_url": "http://initech.example/logo.png"}),
            "logo_url",
        ),
        (
            json!({"slug": "initech", "name": "X", "timezone": "UTC", "default_currency": "EUR",
                "sender_name": "Initech\r\nBcc: all@victims.example"}),
            "sender_name",
        ),
    ] {
        let res = app
            .post_as(&ops.access_token, "/api/tenants", body.clone())
            .await;
        let (status, problem) = code(res).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(problem["field"], field, "{problem}");
    }
    let res = app
        .post_as(
            &ops.access_token,
            "/api/tenants",
            json!({"slug": "globex", "name": "Again", "timezone": "UTC", "default_currency": "EUR"}),
        )
        .await;
    assert_eq!(res.status(), 409);
    let listed: Value = app
        .get_as(&ops.access_token, "/api/tenants")
        .await
        .json()
        .await
        .unwrap();
    let slugs: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    assert_eq!(
        slugs,
        ["globex", "platform"],
        "newest first, nothing half-made"
    );

    // Changes; an empty string clears a detail.
    let res = patch(
        &app,
        &ops.access_token,
        &id,
        json!({"name": "Globex Corp", "logo_url": ""}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let changed: Value = res.json().await.unwrap();
    assert_eq!(changed["name"], "Globex Corp");
    assert!(changed["logo_url"].is_null());
    assert_eq!(changed["support_email"], "help@globex.example");

    // Globex trades: its admin signs in, its catalog and webhook answer.
    let admin = app
        .account("globex", "admin@globex.example", Role::TenantAdmin)
        .await;
    let order = json!({"customer": {"email": "c@example.com", "name": "C", "country": "DE"},
                       "items": [], "currency": "EUR"});
    let (status, _) = code(app.get("/api/public/products?tenant=globex").await).await;
    assert_eq!(status, 200);

    // Suspended: no sign-in, no session, no catalog, no orders.
    let res = patch(&app, &ops.access_token, &id, json!({"status": "SUSPENDED"})).await;
    assert_eq!(res.status(), 200);
    let (status, problem) = code(
        app.login_raw("globex", "admin@globex.example", PASSWORD)
            .await,
    )
    .await;
    assert_eq!(
        (status, problem["code"].clone()),
        (403, json!("tenant_suspended"))
    );
    let (status, problem) = code(app.get_as(&admin.access_token, "/api/auth/me").await).await;
    assert_eq!(
        (status, problem["code"].clone()),
        (403, json!("tenant_suspended"))
    );
    let res = app
        .client
        .post(app.url("/api/auth/refresh"))
        .json(&json!({"refresh_token": admin.refresh_token}))
        .send()
        .await
        .unwrap();
    let (status, problem) = code(res).await;
    assert_eq!(
        (status, problem["code"].clone()),
        (403, json!("tenant_suspended"))
    );
    let (status, problem) = code(app.get("/api/public/products?tenant=globex").await).await;
    assert_eq!(
        (status, problem["code"].clone()),
        (403, json!("tenant_suspended"))
    );
    let (status, problem) = code(app.post_order("globex", &secret, "o-1", &order).await).await;
    assert_eq!(
        (status, problem["code"].clone()),
        (403, json!("tenant_suspended"))
    );
    // Without its secret, a stranger learns nothing new.
    let wrong = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let (status, problem) = code(app.post_order("globex", wrong, "o-2", &order).await).await;
    assert_eq!(
        (status, problem["code"].clone()),
        (401, json!("invalid_signature"))
    );

    // The operator cannot lock themselves out.
    let res = patch(
        &app,
        &ops.access_token,
        &ops.tenant_id.to_string(),
        json!({"status": "SUSPENDED"}),
    )
    .await;
    assert_eq!(res.status(), 409);

    // Restored, it trades again.
    let res = patch(&app, &ops.access_token, &id, json!({"status": "ACTIVE"})).await;
    assert_eq!(res.status(), 200);
    let res = app
        .login_raw("globex", "admin@globex.example", PASSWORD)
        .await;
    assert_eq!(res.status(), 200);

    // Audited in the tenant's own log, where its admin reads it.
    let admin = app
        .sign_in("globex", "admin@globex.example", admin.user_id)
        .await;
    let audit: Value = app
        .get_as(&admin.access_token, "/api/audit?target=tenant")
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "tenant.create",
        "tenant.update",
        "tenant.suspend",
        "tenant.restore",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
}

#[tokio::test]
async fn tenant_staff_cannot_reach_the_tenants() {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    app.tenant("rival").await;
    let rival = app.store.tenant_by_slug("rival").await.unwrap().unwrap();
    let own = admin.tenant_id;
    for (method, path) in [
        (Method::GET, "/api/tenants".to_owned()),
        (Method::POST, "/api/tenants".to_owned()),
        (Method::GET, format!("/api/tenants/{}", rival.id)),
        (Method::GET, format!("/api/tenants/{own}")),
        (Method::PATCH, format!("/api/tenants/{}", rival.id)),
    ] {
        let res = app
            .call(
                method.clone(),
                &path,
                Some(&admin.access_token),
                Some(json!({"name": "mine"})),
            )
            .await;
        assert_eq!(res.status(), 403, "{method} {path}");
    }
}
