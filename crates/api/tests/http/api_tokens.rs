//! API tokens: shown once, scoped, never beyond their creator's role.

use mpanel_domain::identity::Role;
use serde_json::{Value, json};
use time::Duration;

use crate::support::{TestApp, problem};

#[tokio::test]
async fn a_token_is_shown_once_and_works_within_its_scopes() {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    let res = app
        .post_as(
            &admin.access_token,
            "/api/security/tokens",
            json!({"name": "ci", "scopes": ["READ"]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("mpt_"), "{token}");
    assert!(token.starts_with(created["token_start"].as_str().unwrap()));

    let listed: Value = app
        .get_as(&admin.access_token, "/api/security/tokens")
        .await
        .json()
        .await
        .unwrap();
    let text = listed.to_string();
    assert!(!text.contains(&token), "the secret is never shown again");
    assert_eq!(listed["items"][0]["scopes"], json!(["READ"]));

    let me: Value = app
        .get_as(&token, "/api/auth/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["api_token_id"], created["id"]);
    assert_eq!(me["scopes"], json!(["READ"]));
    assert_eq!(app.get_as(&token, "/api/users").await.status(), 200);
    let res = app
        .post_as(
            &token,
            "/api/users",
            json!({"email": "x@acme.test", "role": "SUPPORT", "password": "long enough password"}),
        )
        .await;
    assert_eq!(res.status(), 403, "READ does not write");
    assert_eq!(problem(res).await["code"], "forbidden");

    let listed: Value = app
        .get_as(&admin.access_token, "/api/security/tokens")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        listed["items"][0]["last_used_at"].is_string(),
        "use is recorded: {listed}"
    );
}

#[tokio::test]
async fn a_token_never_exceeds_its_creator() {
    let app = TestApp::start().await;
    let customer = app.account("acme", "c@acme.test", Role::Customer).await;
    for scope in ["ADMIN", "BILLING", "PROVISIONING"] {
        let res = app
            .post_as(
                &customer.access_token,
                "/api/security/tokens",
                json!({"name": "x", "scopes": [scope]}),
            )
            .await;
        assert_eq!(res.status(), 403, "{scope}");
    }
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    let (security_only, _) = app.api_token(&admin.access_token, &["SECURITY"]).await;
    let res = app
        .post_as(
            &security_only,
            "/api/security/tokens",
            json!({"name": "wider", "scopes": ["ADMIN"]}),
        )
        .await;
    assert_eq!(res.status(), 403, "a token cannot mint a wider one");

    // Demoting the creator shrinks what their tokens can do.
    let (admin_token, _) = app.api_token(&admin.access_token, &["READ", "ADMIN"]).await;
    let other_admin = app
        .account("acme", "boss@acme.test", Role::TenantAdmin)
        .await;
    let res = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/users/{}", admin.user_id),
            Some(&other_admin.access_token),
            Some(json!({"role": "CUSTOMER"})),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.get_as(&admin_token, "/api/users").await.status(), 403);
}

#[tokio::test]
async fn revoked_expired_and_mistyped_tokens_are_refused() {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    let (token, id) = app.api_token(&admin.access_token, &["READ"]).await;
    let res = app
        .post_as(
            &admin.access_token,
            &format!("/api/security/tokens/{id}/revoke"),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 204);
    assert_eq!(app.get_as(&token, "/api/auth/me").await.status(), 401);

    let expires = (app.clock_now() + Duration::days(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let res = app
        .post_as(
            &admin.access_token,
            "/api/security/tokens",
            json!({"name": "day", "scopes": ["READ"], "expires_at": expires}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let day_token = res.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.get_as(&day_token, "/api/auth/me").await.status(), 200);
    app.clock.advance(Duration::days(1));
    assert_eq!(app.get_as(&day_token, "/api/auth/me").await.status(), 401);

    let mut typo = day_token.clone().into_bytes();
    typo[8] = if typo[8] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    assert_eq!(app.get_as(&typo, "/api/auth/me").await.status(), 401);

    let tenant = admin.tenant_id;
    let events = app.security_events(tenant).await;
    assert!(events.contains(&"API_TOKEN_CREATED".to_owned()));
    assert!(events.contains(&"API_TOKEN_REVOKED".to_owned()));
}
