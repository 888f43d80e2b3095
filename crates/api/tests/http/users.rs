//! Managing users, and the audit trail it leaves.

use mpanel_domain::identity::Role;
use serde_json::{Value, json};

use crate::support::{TestApp, problem};

#[tokio::test]
async fn admins_create_users_who_can_then_log_in() {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    let res = app
        .post_as(
            &admin.access_token,
            "/api/users",
            json!({"email": "Carol@Acme.test", "display_name": "Carol", "role": "BILLING", "password": "carol's long password"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let carol: Value = res.json().await.unwrap();
    assert_eq!(carol["role"], "BILLING");
    assert_eq!(carol["status"], "ACTIVE");
    assert!(carol.get("password_hash").is_none());
    assert_eq!(
        app.login_raw("acme", "carol@acme.test", "carol's long password")
            .await
            .status(),
        200
    );

    // The same address in any case is taken.
    let res = app
        .post_as(
            &admin.access_token,
            "/api/users",
            json!({"email": "carol@ACME.test", "role": "SUPPORT", "password": "another long password"}),
        )
        .await;
    assert_eq!(res.status(), 409);

    for (body, field) in [
        (
            json!({"email": "nope", "role": "SUPPORT", "password": "long enough password"}),
            "email",
        ),
        (
            json!({"email": "d@acme.test", "role": "SUPPORT", "password": "short"}),
            "password",
        ),
    ] {
        let res = app.post_as(&admin.access_token, "/api/users", body).await;
        assert_eq!(res.status(), 422);
        assert_eq!(problem(res).await["field"], field);
    }
    let res = app
        .post_as(&admin.access_token, "/api/users", json!({"email": "e@acme.test", "role": "SUPER_ADMIN", "password": "long enough password"}))
        .await;
    assert_eq!(
        res.status(),
        403,
        "nobody hands out SUPER_ADMIN over the API"
    );
}

#[tokio::test]
async fn role_changes_are_audited_with_before_and_after() {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    let bob = app.user("acme", "bob@acme.test", Role::Support).await;
    let res = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/users/{bob}"),
            Some(&admin.access_token),
            Some(json!({"role": "BILLING"})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();

    let page: Value = app
        .get_as(&admin.access_token, "/api/audit?action=user.role_change")
        .await
        .json()
        .await
        .unwrap();
    let rows = page["items"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row["target_id"], bob.to_string());
    assert_eq!(row["before"]["role"], "SUPPORT");
    assert_eq!(row["after"]["role"], "BILLING");
    assert_eq!(row["actor_label"], "admin@acme.test");
    assert_eq!(row["actor_type"], "USER");
    assert_eq!(row["request_id"], request_id);
}

#[tokio::test]
async fn the_last_admin_cannot_be_demoted_or_disabled_and_nobody_disables_themselves() {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    let path = format!("/api/users/{}", admin.user_id);
    let res = app
        .call(
            reqwest::Method::PATCH,
            &path,
            Some(&admin.access_token),
            Some(json!({"role": "SUPPORT"})),
        )
        .await;
    assert_eq!(res.status(), 409);
    let res = app
        .post_as(&admin.access_token, &format!("{path}/disable"), json!({}))
        .await;
    assert_eq!(res.status(), 409);
    assert_eq!(
        app.get_as(&admin.access_token, "/api/auth/me")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn lists_are_paginated_and_the_audit_log_filters() {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    for i in 0..5 {
        app.user("acme", &format!("u{i}@acme.test"), Role::Customer)
            .await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/users?limit=2&cursor={c}"),
            None => "/api/users?limit=2".to_owned(),
        };
        let page: Value = app
            .get_as(&admin.access_token, &path)
            .await
            .json()
            .await
            .unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|u| u["email"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    assert_eq!(
        app.get_as(&admin.access_token, "/api/users?limit=0")
            .await
            .status(),
        422
    );
    assert_eq!(
        app.get_as(&admin.access_token, "/api/users?cursor=zzz")
            .await
            .status(),
        422
    );

    let page: Value = app
        .get_as(&admin.access_token, "/api/audit?action=user.create&limit=3")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    assert!(page["next_cursor"].is_string());
    let by_actor: Value = app
        .get_as(&admin.access_token, "/api/audit?actor=cli:test&limit=200")
        .await
        .json()
        .await
        .unwrap();
    assert!(by_actor["items"].as_array().unwrap().len() >= 6);
    let future: Value = app
        .get_as(&admin.access_token, "/api/audit?from=2099-01-01T00:00:00Z")
        .await
        .json()
        .await
        .unwrap();
    assert!(future["items"].as_array().unwrap().is_empty());
}
