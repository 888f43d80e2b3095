//! Second factors and tenant security policies, over HTTP.

use mpanel_domain::identity::Role;
use mpanel_domain::security::{base32, totp};
use serde_json::{Value, json};
use time::Duration;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::support::{Account, ORIGIN, PASSWORD, TestApp, problem};

pub fn code(app: &TestApp, secret: &str) -> String {
    let bytes = base32::decode(secret).unwrap();
    totp::code_at_step(
        &bytes,
        totp::step_of(app.clock_now().unix_timestamp()),
        totp::Algorithm::Sha1,
        6,
    )
}

/// Enrols TOTP for `who`; returns the secret and the recovery codes.
pub async fn enrol_totp(app: &TestApp, who: &Account) -> (String, Vec<String>) {
    let res = app
        .post_as(&who.access_token, "/api/security/me/mfa/enable", json!({}))
        .await;
    assert_eq!(res.status(), 200);
    let enrol: Value = res.json().await.unwrap();
    let secret = enrol["secret"].as_str().unwrap().to_owned();
    assert!(
        enrol["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let res = app
        .post_as(
            &who.access_token,
            "/api/security/me/mfa/confirm",
            json!({"code": "000000x"}),
        )
        .await;
    assert_eq!(res.status(), 422);
    let res = app
        .post_as(
            &who.access_token,
            "/api/security/me/mfa/confirm",
            json!({"code": code(app, &secret)}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let codes: Vec<String> = res.json::<Value>().await.unwrap()["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (secret, codes)
}

async fn mfa_login(app: &TestApp, email: &str) -> Value {
    let res = app.login_raw("acme", email, PASSWORD).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["mfa_required"], true, "{body}");
    assert!(body.get("access_token").is_none());
    body
}

async fn complete(app: &TestApp, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/auth/mfa"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn totp_enrol_confirm_login_replay_recovery_and_disable() {
    let app = TestApp::start().await;
    let alice = app.account("acme", "alice@acme.test", Role::Billing).await;
    let other_session = app.sign_in("acme", "alice@acme.test", alice.user_id).await;
    let (secret, recovery) = enrol_totp(&app, &alice).await;
    assert_eq!(recovery.len(), 10);
    assert_eq!(
        app.get_as(&other_session.access_token, "/api/auth/me")
            .await
            .status(),
        401,
        "enrolling ends other sessions"
    );
    assert_eq!(
        app.get_as(&alice.access_token, "/api/auth/me")
            .await
            .status(),
        200
    );

    // Login now needs the code.
    app.clock.advance(Duration::seconds(30));
    let pending = mfa_login(&app, "alice@acme.test").await;
    assert_eq!(pending["methods"], json!(["TOTP", "RECOVERY_CODE"]));
    let now_code = code(&app, &secret);
    let res = complete(
        &app,
        json!({"mfa_token": pending["mfa_token"], "code": now_code}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(res.json::<Value>().await.unwrap()["access_token"].is_string());
    let res = complete(
        &app,
        json!({"mfa_token": pending["mfa_token"], "code": now_code}),
    )
    .await;
    assert_eq!(res.status(), 401, "an MFA token works once");

    // The same code twice is a replay, even with a fresh login.
    let pending = mfa_login(&app, "alice@acme.test").await;
    let res = complete(
        &app,
        json!({"mfa_token": pending["mfa_token"], "code": now_code}),
    )
    .await;
    assert_eq!(res.status(), 422);
    assert!(
        problem(res).await["detail"]
            .as_str()
            .unwrap()
            .contains("used already")
    );

    // A recovery code works once.
    let pending = mfa_login(&app, "alice@acme.test").await;
    let res = complete(
        &app,
        json!({"mfa_token": pending["mfa_token"], "recovery_code": recovery[0]}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let session: Value = res.json().await.unwrap();
    let token = session["access_token"].as_str().unwrap().to_owned();
    let pending = mfa_login(&app, "alice@acme.test").await;
    let res = complete(
        &app,
        json!({"mfa_token": pending["mfa_token"], "recovery_code": recovery[0]}),
    )
    .await;
    assert_eq!(res.status(), 422);
    let profile: Value = app
        .get_as(&token, "/api/security/me/profile")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(profile["recovery_codes_left"], 9);
    assert_eq!(profile["mfa_methods"], json!(["TOTP", "RECOVERY_CODE"]));

    // An MFA token does not outlive five minutes.
    let pending = mfa_login(&app, "alice@acme.test").await;
    app.clock.advance(Duration::minutes(6));
    let res = complete(
        &app,
        json!({"mfa_token": pending["mfa_token"], "code": code(&app, &secret)}),
    )
    .await;
    assert_eq!(res.status(), 401);

    // Disabling needs the password and a factor.
    let res = app
        .post_as(
            &token,
            "/api/security/me/mfa/disable",
            json!({"password": "wrong password!!", "code": code(&app, &secret)}),
        )
        .await;
    assert_eq!(res.status(), 422);
    app.clock.advance(Duration::seconds(30));
    let res = app
        .post_as(
            &token,
            "/api/security/me/mfa/disable",
            json!({"password": PASSWORD, "code": code(&app, &secret)}),
        )
        .await;
    assert_eq!(res.status(), 204);
    let res = app.login_raw("acme", "alice@acme.test", PASSWORD).await;
    assert!(
        res.json::<Value>().await.unwrap()["access_token"].is_string(),
        "no second factor any more"
    );

    let events: Value = app
        .get_as(&token, "/api/security/events?limit=200")
        .await
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "MFA_ENROLLED",
        "MFA_USED",
        "MFA_REPLAY",
        "RECOVERY_CODE_USED",
        "MFA_FAILED",
        "MFA_DISABLED",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
}

#[tokio::test]
async fn wrong_codes_are_throttled_like_passwords() {
    let app = TestApp::start().await;
    let bob = app.account("acme", "bob@acme.test", Role::Support).await;
    let (secret, _) = enrol_totp(&app, &bob).await;
    for _ in 0..6 {
        let pending = mfa_login(&app, "bob@acme.test").await;
        let res = complete(
            &app,
            json!({"mfa_token": pending["mfa_token"], "code": "000001"}),
        )
        .await;
        assert_eq!(res.status(), 422);
    }
    let pending = mfa_login(&app, "bob@acme.test").await;
    let res = complete(
        &app,
        json!({"mfa_token": pending["mfa_token"], "code": code(&app, &secret)}),
    )
    .await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().get("retry-after").is_some());
}

#[tokio::test]
async fn a_passkey_registers_and_then_completes_logins() {
    let app = TestApp::start().await;
    let carol = app
        .account("acme", "carol@acme.test", Role::TenantAdmin)
        .await;
    let mut authenticator = SoftPasskey::new(true);
    let origin = url::Url::parse(ORIGIN).unwrap();

    let res = app
        .post_as(
            &carol.access_token,
            "/api/security/me/webauthn/register/start",
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let ceremony: Value = res.json().await.unwrap();
    let options = serde_json::from_value(ceremony["options"].clone()).unwrap();
    let credential = authenticator
        .do_registration(origin.clone(), options)
        .unwrap();
    let res = app
        .post_as(
            &carol.access_token,
            "/api/security/me/webauthn/register/finish",
            json!({"ceremony_id": ceremony["ceremony_id"], "credential": credential, "name": "laptop key"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let res = app
        .post_as(
            &carol.access_token,
            "/api/security/me/webauthn/register/finish",
            json!({"ceremony_id": ceremony["ceremony_id"], "credential": credential}),
        )
        .await;
    assert_eq!(res.status(), 422, "a ceremony works once");

    let pending = mfa_login(&app, "carol@acme.test").await;
    assert_eq!(pending["methods"], json!(["WEBAUTHN"]));
    let request = serde_json::from_value(pending["webauthn"].clone()).unwrap();
    let answer = authenticator
        .do_authentication(origin.clone(), request)
        .unwrap();
    let res = complete(
        &app,
        json!({"mfa_token": pending["mfa_token"], "webauthn_response": answer}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let signed: Value = res.json().await.unwrap();
    let profile: Value = app
        .get_as(
            signed["access_token"].as_str().unwrap(),
            "/api/security/me/profile",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(profile["webauthn_credentials"], json!(["laptop key"]));

    // A stranger with a real key of its own (registered to dave) answers
    // carol's login, the request pointed at its key as an attacker's
    // client would: refused.
    let dave = app.account("acme", "dave@acme.test", Role::Support).await;
    let mut stranger = SoftPasskey::new(true);
    let dave_key = register_passkey(&app, &dave, &mut stranger, &origin).await;
    let carol_key = serde_json::to_value(&credential).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pending = mfa_login(&app, "carol@acme.test").await;
    let mut request = pending["webauthn"].clone();
    request["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": dave_key}]);
    let foreign = stranger
        .do_authentication(origin.clone(), serde_json::from_value(request).unwrap())
        .expect("the stranger signs with its own key");
    let res = complete(
        &app,
        json!({"mfa_token": pending["mfa_token"], "webauthn_response": foreign}),
    )
    .await;
    assert_eq!(res.status(), 422, "another user's key does not pass");

    // The same signature relabelled with carol's key id: refused.
    let pending = mfa_login(&app, "carol@acme.test").await;
    let mut request = pending["webauthn"].clone();
    request["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": dave_key}]);
    let mut relabelled = serde_json::to_value(
        stranger
            .do_authentication(origin.clone(), serde_json::from_value(request).unwrap())
            .unwrap(),
    )
    .unwrap();
    relabelled["id"] = json!(carol_key);
    relabelled["rawId"] = json!(carol_key);
    let res = complete(
        &app,
        json!({"mfa_token": pending["mfa_token"], "webauthn_response": relabelled}),
    )
    .await;
    assert_eq!(res.status(), 422, "a relabelled signature does not pass");

    // Carol's own key, answering a page of another origin under the same
    // RP id (another port: what a browser signs there): refused.
    let pending = mfa_login(&app, "carol@acme.test").await;
    let elsewhere = url::Url::parse("http://localhost:8666").unwrap();
    let phished = authenticator
        .do_authentication(
            elsewhere,
            serde_json::from_value(pending["webauthn"].clone()).unwrap(),
        )
        .unwrap();
    let res = complete(
        &app,
        json!({"mfa_token": pending["mfa_token"], "webauthn_response": phished}),
    )
    .await;
    assert_eq!(
        res.status(),
        422,
        "an answer for another origin does not pass"
    );

    // A used MFA token is refused, and carol's events say so.
    let res = complete(
        &app,
        json!({"mfa_token": pending["mfa_token"], "webauthn_response": phished}),
    )
    .await;
    assert_eq!(res.status(), 401);
    let events = app.security_events(carol.tenant_id).await;
    let failed = events.iter().filter(|e| e.as_str() == "MFA_FAILED").count();
    assert!(failed >= 3, "{events:?}");
    assert!(events.iter().any(|e| e == "MFA_REPLAY"), "{events:?}");
}

/// Registers a passkey of `authenticator` for `account`; its credential id.
async fn register_passkey(
    app: &TestApp,
    account: &crate::support::Account,
    authenticator: &mut SoftPasskey,
    origin: &url::Url,
) -> String {
    let res = app
        .post_as(
            &account.access_token,
            "/api/security/me/webauthn/register/start",
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let ceremony: Value = res.json().await.unwrap();
    let options = serde_json::from_value(ceremony["options"].clone()).unwrap();
    let credential = authenticator
        .do_registration(origin.clone(), options)
        .unwrap();
    let credential = serde_json::to_value(credential).unwrap();
    let res = app
        .post_as(
            &account.access_token,
            "/api/security/me/webauthn/register/finish",
            json!({"ceremony_id": ceremony["ceremony_id"], "credential": credential, "name": "key"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    credential["id"].as_str().unwrap().to_owned()
}

/// Changes the fields of `patch` in the tenant's security policy.
pub async fn set_policy(app: &TestApp, admin: &Account, patch: Value) {
    let mut policy: Value = app
        .get_as(&admin.access_token, "/api/security/policy")
        .await
        .json()
        .await
        .unwrap();
    for (k, v) in patch.as_object().unwrap() {
        policy[k] = v.clone();
    }
    let res = app
        .call(
            reqwest::Method::PUT,
            "/api/security/policy",
            Some(&admin.access_token),
            Some(policy),
        )
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn an_mfa_policy_lets_staff_without_a_factor_in_only_to_enrol() {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    app.user("acme", "sam@acme.test", Role::Support).await;
    app.user("acme", "cust@acme.test", Role::Customer).await;
    let res = app
        .call(
            reqwest::Method::PUT,
            "/api/security/policy",
            Some(&admin.access_token),
            Some(json!({"password_min_length": 8})),
        )
        .await;
    assert_eq!(res.status(), 422, "an out-of-range policy is refused");
    set_policy(&app, &admin, json!({"mfa_required": "STAFF"})).await;

    let res = app.login_raw("acme", "sam@acme.test", PASSWORD).await;
    let sam: Value = res.json().await.unwrap();
    let token = sam["access_token"].as_str().unwrap();
    assert_eq!(app.get_as(token, "/api/auth/me").await.status(), 200);
    let res = app.get_as(token, "/api/users").await;
    assert_eq!(res.status(), 403);
    assert_eq!(problem(res).await["code"], "mfa_enrollment_required");
    let profile: Value = app
        .get_as(token, "/api/security/me/profile")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(profile["mfa_enrollment_required"], true);
    assert_eq!(
        app.post_as(token, "/api/security/me/mfa/enable", json!({}))
            .await
            .status(),
        200
    );

    let res = app.login_raw("acme", "cust@acme.test", PASSWORD).await;
    let cust: Value = res.json().await.unwrap();
    let profile: Value = app
        .get_as(
            cust["access_token"].as_str().unwrap(),
            "/api/security/me/profile",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        profile["mfa_enrollment_required"], false,
        "customers are not staff"
    );

    // The admin is staff too: held to the policy like everyone.
    let res = app.get_as(&admin.access_token, "/api/users").await;
    assert_eq!(problem(res).await["code"], "mfa_enrollment_required");
}

#[tokio::test]
async fn the_ip_allow_list_refuses_staff_logins_sessions_refreshes_and_tokens_from_elsewhere() {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    let (token, _) = app.api_token(&admin.access_token, &["READ"]).await;
    app.user("acme", "cust@acme.test", Role::Customer).await;
    // Elsewhere: another loopback address, as the server sees the peer.
    let elsewhere = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let away = app.sign_in("acme", "admin@acme.test", admin.user_id).await;

    // A list that leaves out the admin's own address is refused.
    let mut policy: Value = app
        .get_as(&admin.access_token, "/api/security/policy")
        .await
        .json()
        .await
        .unwrap();
    policy["ip_allow_list"] = json!(["10.0.0.0/8"]);
    let res = app
        .call(
            reqwest::Method::PUT,
            "/api/security/policy",
            Some(&admin.access_token),
            Some(policy),
        )
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(problem(res).await["field"], "ip_allow_list");
    set_policy(&app, &admin, json!({"ip_allow_list": ["127.0.0.1/32"]})).await;

    let from_elsewhere = |path: &str, bearer: Option<&str>| {
        let mut req = elsewhere.get(app.url(path));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        req.send()
    };
    let login = |email: &str| {
        elsewhere
            .post(app.url("/api/auth/login"))
            .json(&json!({"tenant": "acme", "email": email, "password": PASSWORD}))
            .send()
    };
    let res = login("admin@acme.test").await.unwrap();
    assert_eq!(res.status(), 403, "a staff login from elsewhere");
    assert_eq!(problem(res).await["code"], "forbidden");
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(
        status(from_elsewhere("/api/auth/me", Some(&token)).await.unwrap()),
        403,
        "an API token"
    );
    assert_eq!(
        status(
            from_elsewhere("/api/auth/me", Some(&away.access_token))
                .await
                .unwrap()
        ),
        403,
        "a staff session opened here, used from elsewhere"
    );
    let res = elsewhere
        .post(app.url("/api/auth/refresh"))
        .json(&json!({"refresh_token": away.refresh_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        403,
        "a staff session refreshed from elsewhere"
    );
    assert_eq!(
        login("cust@acme.test").await.unwrap().status(),
        200,
        "customers may sign in from anywhere"
    );

    // From the allowed address everything still works.
    assert_eq!(app.get_as(&token, "/api/auth/me").await.status(), 200);
    assert_eq!(
        app.get_as(&away.access_token, "/api/auth/me")
            .await
            .status(),
        200
    );
    assert_eq!(
        app.login_raw("acme", "admin@acme.test", PASSWORD)
            .await
            .status(),
        200
    );
    let events: Value = app
        .get_as(&admin.access_token, "/api/security/events?kind=IP_BLOCKED")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(events["items"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn sessions_end_when_idle_or_too_old_and_tokens_and_passwords_follow_the_policy() {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    set_policy(
        &app,
        &admin,
        json!({"session_idle_timeout_minutes": 10, "session_max_lifetime_hours": 1, "api_token_max_lifetime_days": 30, "password_min_length": 16}),
    )
    .await;

    let idle = app.sign_in("acme", "admin@acme.test", admin.user_id).await;
    let refresh = |token: String| {
        let app = &app;
        async move {
            let res = app
                .client
                .post(app.url("/api/auth/refresh"))
                .json(&json!({"refresh_token": token}))
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    app.clock.advance(Duration::minutes(9));
    assert_eq!(
        app.get_as(&idle.access_token, "/api/auth/me")
            .await
            .status(),
        200
    );
    app.clock.advance(Duration::minutes(9));
    let (status, pair) = refresh(idle.refresh_token.clone()).await;
    assert_eq!(status, 200, "used 9 minutes ago");
    app.clock.advance(Duration::minutes(11));
    let (status, _) = refresh(pair["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(
        status, 401,
        "idle for 11 minutes: not even a refresh revives it"
    );
    assert_eq!(
        app.get_as(pair["access_token"].as_str().unwrap(), "/api/auth/me")
            .await
            .status(),
        401
    );

    let old = app.sign_in("acme", "admin@acme.test", admin.user_id).await;
    app.clock.advance(Duration::minutes(5));
    assert_eq!(
        app.get_as(&old.access_token, "/api/auth/me").await.status(),
        200
    );

    reauthenticate(&app, &old.access_token).await;
    let res = app
        .post_as(
            &old.access_token,
            "/api/security/tokens",
            json!({"name": "forever", "scopes": ["READ"]}),
        )
        .await;
    assert_eq!(res.status(), 201, "no expiry asked: the policy's longest");
    let made: Value = res.json().await.unwrap();
    let expires = time::OffsetDateTime::parse(
        made["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let latest = app.clock_now() + Duration::days(30);
    assert!(
        (expires - latest).abs() < Duration::seconds(1),
        "{expires} vs {latest}"
    );
    let in_days = |d: i64| {
        (app.clock_now() + Duration::days(d))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let res = app
        .post_as(
            &old.access_token,
            "/api/security/tokens",
            json!({"name": "long", "scopes": ["READ"], "expires_at": in_days(60)}),
        )
        .await;
    assert_eq!(res.status(), 422);
    let res = app
        .post_as(
            &old.access_token,
            "/api/security/tokens",
            json!({"name": "ok", "scopes": ["READ"], "expires_at": in_days(10)}),
        )
        .await;
    assert_eq!(res.status(), 201);

    let res = app
        .post_as(
            &old.access_token,
            "/api/users",
            json!({"email": "new@acme.test", "role": "SUPPORT", "password": "fourteen chars"}),
        )
        .await;
    assert_eq!(res.status(), 422);
    assert!(
        problem(res).await["detail"]
            .as_str()
            .unwrap()
            .contains("16")
    );

    // Past the one-hour lifetime the session ends, however active.
    let lifetime = app.sign_in("acme", "admin@acme.test", admin.user_id).await;
    let mut refresh_token = lifetime.refresh_token.clone();
    for _ in 0..6 {
        app.clock.advance(Duration::minutes(9));
        let (status, pair) = refresh(refresh_token).await;
        assert_eq!(status, 200);
        refresh_token = pair["refresh_token"].as_str().unwrap().to_owned();
    }
    app.clock.advance(Duration::minutes(7));
    let (status, _) = refresh(refresh_token).await;
    assert_eq!(status, 401, "older than an hour");
    let now = app.sign_in("acme", "admin@acme.test", admin.user_id).await;
    let events: Value = app
        .get_as(
            &now.access_token,
            "/api/security/events?kind=POLICY_CHANGED",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(events["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_new_mfa_policy_reaches_open_sessions_and_tokens() {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    let sam = app.account("acme", "sam@acme.test", Role::Support).await;
    let (sam_token, _) = app.api_token(&sam.access_token, &["READ"]).await;
    assert_eq!(
        app.get_as(&sam.access_token, "/api/users").await.status(),
        200
    );
    set_policy(&app, &admin, json!({"mfa_required": "STAFF"})).await;
    let res = app.get_as(&sam.access_token, "/api/users").await;
    assert_eq!(
        res.status(),
        403,
        "the open session is held to the new policy"
    );
    assert_eq!(problem(res).await["code"], "mfa_enrollment_required");
    let res = app.get_as(&sam_token, "/api/users").await;
    assert_eq!(res.status(), 403, "and so is the token");
    // Once a factor is enrolled, work resumes.
    enrol_totp(&app, &sam).await;
    assert_eq!(
        app.get_as(&sam.access_token, "/api/users").await.status(),
        200
    );
    assert_eq!(app.get_as(&sam_token, "/api/users").await.status(), 200);
}

/// Enters the password again for `bearer`'s session (step-up).
pub async fn reauthenticate(app: &TestApp, bearer: &str) {
    let res = app
        .post_as(
            bearer,
            "/api/auth/reauthenticate",
            json!({"password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}
