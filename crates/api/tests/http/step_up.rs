//! Sensitive changes need the user, not just a token: creating API tokens,
//! enrolling a TOTP or passkey, changing Stripe keys and rotating the
//! webhook secret need the password (or a second factor) entered within
//! the last 5 minutes; an API token can never make them. Also: tokens live
//! at most 90 days, a password change revokes API tokens unless asked not
//! to, a rotated webhook secret can be revoked at once, and the TOTP check
//! when disabling MFA is throttled like a login.

use mpanel_domain::identity::Role;
use reqwest::Method;
use serde_json::{Value, json};
use time::Duration;

use crate::security_center::{code, enrol_totp, reauthenticate, set_policy};
use crate::support::{Account, PASSWORD, TestApp, problem};

/// The sensitive changes, as (what, method, path, body).
fn sensitive() -> Vec<(&'static str, Method, &'static str, Value)> {
    vec![
        (
            "an API token",
            Method::POST,
            "/api/security/tokens",
            json!({"name": "ci", "scopes": ["READ"]}),
        ),
        (
            "TOTP enrolment",
            Method::POST,
            "/api/security/me/mfa/enable",
            json!({}),
        ),
        (
            "passkey enrolment",
            Method::POST,
            "/api/security/me/webauthn/register/start",
            json!({"name": "key"}),
        ),
        (
            "Stripe keys",
            Method::PUT,
            "/api/billing/settings",
            json!({"stripe_secret_key": "sk_test_new"}),
        ),
        (
            "webhook secret",
            Method::POST,
            "/api/settings/webhook-secret/rotate",
            json!({}),
        ),
        (
            "a staff user",
            Method::POST,
            "/api/users",
            json!({"email": format!("new-{}@acme.test", uuid::Uuid::now_v7().simple()),
                   "role": "SUPPORT", "password": "a long enough password"}),
        ),
        (
            "the security policy",
            Method::PUT,
            "/api/security/policy",
            json!({"password_min_length": 12, "mfa_required": "OPTIONAL",
                   "session_idle_timeout_minutes": 0, "session_max_lifetime_hours": 720,
                   "api_token_max_lifetime_days": 90, "ip_allow_list": []}),
        ),
    ]
}

async fn attempt(
    app: &TestApp,
    bearer: &str,
    method: &Method,
    path: &str,
    body: &Value,
) -> (u16, Value) {
    let res = app
        .call(method.clone(), path, Some(bearer), Some(body.clone()))
        .await;
    let status = res.status().as_u16();
    (status, res.json::<Value>().await.unwrap_or(Value::Null))
}

async fn assert_needs_step_up(app: &TestApp, bearer: &str, label: &str) {
    for (what, method, path, body) in sensitive() {
        let (status, v) = attempt(app, bearer, &method, path, &body).await;
        assert_eq!(status, 403, "{label}: {what}: {v}");
        assert_eq!(
            v["code"], "reauthentication_required",
            "{label}: {what}: {v}"
        );
    }
}

async fn assert_allowed(app: &TestApp, bearer: &str, label: &str) {
    for (what, method, path, body) in sensitive() {
        let (status, v) = attempt(app, bearer, &method, path, &body).await;
        assert!(
            (200..300).contains(&status),
            "{label}: {what}: {status} {v}"
        );
    }
}

#[tokio::test]
async fn sensitive_changes_need_the_password_entered_within_five_minutes() {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    // Just signed in: the login counts.
    let (token, _) = app
        .api_token(
            &admin.access_token,
            &["READ", "WRITE", "SECURITY", "ADMIN", "BILLING"],
        )
        .await;
    app.clock.advance(Duration::minutes(6));
    assert_needs_step_up(&app, &admin.access_token, "a session 6 minutes old").await;
    assert_needs_step_up(&app, &token, "an API token").await;

    // A wrong password is refused, recorded and throttled; the right one opens
    // the window.
    let res = app
        .post_as(
            &admin.access_token,
            "/api/auth/reauthenticate",
            json!({"password": "not my password"}),
        )
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(problem(res).await["field"], "password");
    let res = app
        .post_as(
            &token,
            "/api/auth/reauthenticate",
            json!({"password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), 403, "a token cannot re-authenticate");
    reauthenticate(&app, &admin.access_token).await;
    assert_allowed(&app, &admin.access_token, "re-authenticated").await;
    app.clock.advance(Duration::minutes(6));
    assert_needs_step_up(
        &app,
        &admin.access_token,
        "6 minutes after re-authenticating",
    )
    .await;

    let kinds = app.security_events(admin.tenant_id).await;
    assert!(
        kinds.iter().any(|k| k == "REAUTHENTICATION_FAILED"),
        "{kinds:?}"
    );
    assert!(kinds.iter().any(|k| k == "REAUTHENTICATED"), "{kinds:?}");
    for _ in 0..6 {
        app.post_as(
            &admin.access_token,
            "/api/auth/reauthenticate",
            json!({"password": "not my password"}),
        )
        .await;
    }
    let res = app
        .post_as(
            &admin.access_token,
            "/api/auth/reauthenticate",
            json!({"password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), 429, "guessing is throttled like a login");
}

#[tokio::test]
async fn a_second_factor_re_authenticates_too_and_its_guesses_are_throttled() {
    let app = TestApp::start().await;
    let alice = app
        .account("acme", "alice@acme.test", Role::TenantAdmin)
        .await;
    let (secret, _) = enrol_totp(&app, &alice).await;
    app.clock.advance(Duration::minutes(6));
    assert_needs_step_up(&app, &alice.access_token, "before").await;
    let res = app
        .post_as(
            &alice.access_token,
            "/api/auth/reauthenticate",
            json!({"code": code(&app, &secret)}),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let (status, v) = attempt(
        &app,
        &alice.access_token,
        &Method::POST,
        "/api/security/tokens",
        &json!({"name": "x", "scopes": ["READ"]}),
    )
    .await;
    assert_eq!(status, 201, "{v}");

    // Disabling MFA: a right password and wrong codes, again and again, are
    // throttled (each guess used to clear the count with the password).
    let mut last = 0;
    for _ in 0..7 {
        let res = app
            .post_as(
                &alice.access_token,
                "/api/security/me/mfa/disable",
                json!({"password": PASSWORD, "code": "000000"}),
            )
            .await;
        last = res.status().as_u16();
    }
    assert_eq!(last, 429);
}

#[tokio::test]
async fn only_a_tenant_admin_changes_stripe_keys_and_tokens_live_ninety_days_at_most() {
    let app = TestApp::start().await;
    let billing = app
        .account("acme", "billing@acme.test", Role::Billing)
        .await;
    let (status, v) = attempt(
        &app,
        &billing.access_token,
        &Method::PUT,
        "/api/billing/settings",
        &json!({"stripe_secret_key": "sk_test_x"}),
    )
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (403, Some("forbidden")),
        "{v}"
    );
    let (status, v) = attempt(
        &app,
        &billing.access_token,
        &Method::PUT,
        "/api/billing/settings",
        &json!({}),
    )
    .await;
    assert_eq!(status, 200, "other settings need only the permission: {v}");

    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    let days = |d: i64| {
        (app.clock_now() + Duration::days(d))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let res = app
        .post_as(
            &admin.access_token,
            "/api/security/tokens",
            json!({"name": "long", "scopes": ["READ"], "expires_at": days(91)}),
        )
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(problem(res).await["field"], "expires_at");
    let res = app
        .post_as(
            &admin.access_token,
            "/api/security/tokens",
            json!({"name": "default", "scopes": ["READ"]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let token = res.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.clock.advance(Duration::days(90) + Duration::seconds(1));
    assert_eq!(
        app.get_as(&token, "/api/auth/me").await.status(),
        401,
        "expired after 90 days"
    );
}

async fn token_works(app: &TestApp, token: &str) -> bool {
    app.get_as(token, "/api/auth/me").await.status() == 200
}

async fn change_password(app: &TestApp, who: &Account, new: &str, body: Value) {
    let mut body = body;
    body["current_password"] = json!(PASSWORD);
    body["new_password"] = json!(new);
    let res = app
        .post_as(&who.access_token, "/api/auth/password", body)
        .await;
    assert_eq!(res.status(), 204, "{}", res.text().await.unwrap());
}

#[tokio::test]
async fn a_password_change_revokes_api_tokens_unless_asked_not_to() {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    let (token, _) = app.api_token(&admin.access_token, &["READ"]).await;
    change_password(
        &app,
        &admin,
        "a brand new passphrase",
        json!({"revoke_api_tokens": false}),
    )
    .await;
    assert!(token_works(&app, &token).await, "kept when asked");

    let bob = app
        .account("acme", "bob@acme.test", Role::TenantAdmin)
        .await;
    let (token, _) = app.api_token(&bob.access_token, &["READ"]).await;
    change_password(&app, &bob, "another new passphrase", json!({})).await;
    assert!(!token_works(&app, &token).await, "revoked by default");
}

#[tokio::test]
async fn a_leaked_webhook_secret_can_be_revoked_at_once() {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    let old = app.webhook_secret("acme");
    let signed_with = |secret: &str| {
        let raw = br#"{}"#.to_vec();
        let sig = mpanel_domain::orders::signature::sign(
            secret,
            app.clock_now().unix_timestamp(),
            &mpanel_domain::orders::signature::order_payload("k", &raw),
        );
        app.client
            .post(app.url("/api/orders"))
            .header("content-type", "application/json")
            .header("x-mpanel-tenant", "acme")
            .header("x-mpanel-signature", sig)
            .header("idempotency-key", "k")
            .body(raw)
            .send()
    };
    // A signature that verifies gets past 401 (the empty order is a 422).
    assert_eq!(signed_with(&old).await.unwrap().status(), 422);
    let rotate = |query: &'static str| {
        let app = &app;
        let token = admin.access_token.clone();
        async move {
            let res = app
                .post_as(
                    &token,
                    &format!("/api/settings/webhook-secret/rotate{query}"),
                    json!({}),
                )
                .await;
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()["webhook_secret"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    // A routine rotation: the previous secret keeps working for a day.
    let middle = rotate("").await;
    assert_eq!(
        signed_with(&old).await.unwrap().status(),
        422,
        "in its grace"
    );
    // A leak: every previous secret stops at once, the one in its grace too.
    let new = rotate("?revoke_previous=true").await;
    assert_eq!(
        signed_with(&old).await.unwrap().status(),
        401,
        "the older one stops at once"
    );
    assert_eq!(
        signed_with(&middle).await.unwrap().status(),
        401,
        "the leaked one stops at once"
    );
    assert_eq!(signed_with(&new).await.unwrap().status(), 422);
}

#[tokio::test]
async fn removing_mfa_revokes_api_tokens_unless_asked_not_to() {
    let app = TestApp::start().await;
    for (email, keep) in [("keep@acme.test", true), ("drop@acme.test", false)] {
        let who = app.account("acme", email, Role::TenantAdmin).await;
        let (secret, _) = enrol_totp(&app, &who).await;
        let (token, _) = app.api_token(&who.access_token, &["READ"]).await;
        app.clock.advance(Duration::seconds(30));
        let mut body = json!({"password": PASSWORD, "code": code(&app, &secret)});
        if keep {
            body["revoke_api_tokens"] = json!(false);
        }
        let res = app
            .post_as(&who.access_token, "/api/security/me/mfa/disable", body)
            .await;
        assert_eq!(res.status(), 204, "{}", res.text().await.unwrap());
        assert_eq!(token_works(&app, &token).await, keep, "{email}");
    }
}

#[tokio::test]
async fn no_token_outlives_the_policy_even_one_made_before_it() {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    // Made as tokens were before the ceiling: no expiry at all.
    let legacy = app.fixture_api_token(&admin, &["READ"]).await;
    let (recent, _) = app.api_token(&admin.access_token, &["READ"]).await;
    app.clock.advance(Duration::days(20));
    assert!(token_works(&app, &legacy).await);
    // The tenant lowers the longest life to 14 days: both are too old now.
    let admin = app.sign_in("acme", "admin@acme.test", admin.user_id).await;
    set_policy(&app, &admin, json!({"api_token_max_lifetime_days": 14})).await;
    assert!(!token_works(&app, &recent).await, "made 20 days ago");
    assert!(!token_works(&app, &legacy).await, "no expiry of its own");
}
