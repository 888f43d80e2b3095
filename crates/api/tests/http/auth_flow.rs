//! Logging in, refreshing, reuse detection, logout, revocation, expiry,
//! forged tokens and brute-force throttling.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mpanel_domain::identity::Role;
use serde_json::{Value, json};
use time::Duration;

use crate::support::{PASSWORD, TestApp, problem};

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/auth/refresh"))
        .json(&json!({"refresh_token": token}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn login_me_refresh_then_a_replayed_refresh_token_revokes_the_session() {
    let app = TestApp::start().await;
    let alice = app
        .account("acme", "alice@acme.test", Role::TenantAdmin)
        .await;

    let me: Value = app
        .get_as(&alice.access_token, "/api/auth/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "alice@acme.test");
    assert_eq!(me["role"], "TENANT_ADMIN");
    assert_eq!(me["session_id"], alice.session_id.as_str());

    // Rotation: the refresh token gives a new pair and works only once.
    let res = refresh(&app, &alice.refresh_token).await;
    assert_eq!(res.status(), 200);
    let second: Value = res.json().await.unwrap();
    let second_refresh = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, alice.refresh_token);
    let second_access = second["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get_as(&second_access, "/api/auth/me").await.status(),
        200
    );

    // A minute later, the first token comes back: a replay.
    app.clock.advance(Duration::minutes(1));
    let res = refresh(&app, &alice.refresh_token).await;
    assert_eq!(res.status(), 401);
    let body = problem(res).await;
    assert_eq!(body["code"], "unauthorized");

    // The whole family is gone: the newer refresh token and access tokens too.
    assert_eq!(refresh(&app, &second_refresh).await.status(), 401);
    assert_eq!(
        app.get_as(&second_access, "/api/auth/me").await.status(),
        401
    );
    assert_eq!(
        app.get_as(&alice.access_token, "/api/auth/me")
            .await
            .status(),
        401
    );
    let events = app.security_events(alice.tenant_id).await;
    assert!(
        events.contains(&"REFRESH_TOKEN_REUSED".to_owned()),
        "{events:?}"
    );
}

#[tokio::test]
async fn two_refreshes_racing_within_the_grace_period_both_succeed() {
    let app = TestApp::start().await;
    let alice = app.account("acme", "alice@acme.test", Role::Customer).await;
    let (a, b) = tokio::join!(
        refresh(&app, &alice.refresh_token),
        refresh(&app, &alice.refresh_token)
    );
    assert_eq!(a.status(), 200);
    assert_eq!(b.status(), 200);
    app.clock.advance(Duration::seconds(10));
    let late = refresh(&app, &alice.refresh_token).await;
    assert_eq!(late.status(), 200, "still within the grace");
    let (a, b, late): (Value, Value, Value) = (
        a.json().await.unwrap(),
        b.json().await.unwrap(),
        late.json().await.unwrap(),
    );
    assert_eq!(
        app.get_as(a["access_token"].as_str().unwrap(), "/api/auth/me")
            .await
            .status(),
        200
    );
    // One successor, not a branch: the racing clients end up on one chain,
    // so a later replay of either is still caught.
    assert_eq!(a["refresh_token"], b["refresh_token"]);
    assert_eq!(a["refresh_token"], late["refresh_token"]);
    assert_ne!(a["refresh_token"], json!(alice.refresh_token));
    let next = refresh(&app, a["refresh_token"].as_str().unwrap()).await;
    assert_eq!(next.status(), 200, "the successor works");
    app.clock.advance(Duration::seconds(60));
    assert_eq!(
        refresh(&app, b["refresh_token"].as_str().unwrap())
            .await
            .status(),
        401,
        "the shared successor replayed after the grace ends the session"
    );
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = TestApp::start().await;
    let alice = app.account("acme", "alice@acme.test", Role::Billing).await;
    let res = app
        .call(
            reqwest::Method::POST,
            "/api/auth/logout",
            Some(&alice.access_token),
            None,
        )
        .await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        app.get_as(&alice.access_token, "/api/auth/me")
            .await
            .status(),
        401
    );
    assert_eq!(refresh(&app, &alice.refresh_token).await.status(), 401);
}

#[tokio::test]
async fn revoke_all_ends_every_other_session() {
    let app = TestApp::start().await;
    let laptop = app.account("acme", "alice@acme.test", Role::Support).await;
    let phone = app.sign_in("acme", "alice@acme.test", laptop.user_id).await;
    let tablet = app.sign_in("acme", "alice@acme.test", laptop.user_id).await;

    let listed: Value = app
        .get_as(&laptop.access_token, "/api/security/me/sessions")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 3);

    // One by id, then all the others.
    let path = format!("/api/security/me/sessions/{}/revoke", tablet.session_id);
    assert_eq!(
        app.post_as(&laptop.access_token, &path, json!({}))
            .await
            .status(),
        204
    );
    assert_eq!(
        app.get_as(&tablet.access_token, "/api/auth/me")
            .await
            .status(),
        401
    );

    let res = app
        .post_as(
            &laptop.access_token,
            "/api/security/me/sessions/revoke-all",
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["revoked"], 1);
    assert_eq!(
        app.get_as(&phone.access_token, "/api/auth/me")
            .await
            .status(),
        401
    );
    assert_eq!(
        app.get_as(&laptop.access_token, "/api/auth/me")
            .await
            .status(),
        200
    );
    let listed: Value = app
        .get_as(&laptop.access_token, "/api/security/me/sessions")
        .await
        .json()
        .await
        .unwrap();
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["current"], true);
}

#[tokio::test]
async fn a_disabled_user_is_shut_out_at_once() {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    let bob = app.account("acme", "bob@acme.test", Role::Support).await;
    let (bob_token, _) = app.api_token(&bob.access_token, &["READ"]).await;
    assert_eq!(app.get_as(&bob_token, "/api/auth/me").await.status(), 200);

    let path = format!("/api/users/{}/disable", bob.user_id);
    let res = app.post_as(&admin.access_token, &path, json!({})).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "DISABLED");

    assert_eq!(
        app.get_as(&bob.access_token, "/api/auth/me").await.status(),
        401
    );
    assert_eq!(app.get_as(&bob_token, "/api/auth/me").await.status(), 401);
    assert_eq!(refresh(&app, &bob.refresh_token).await.status(), 401);
    let res = app.login_raw("acme", "bob@acme.test", PASSWORD).await;
    assert_eq!(res.status(), 403);
    assert_eq!(problem(res).await["code"], "account_disabled");
}

#[tokio::test]
async fn access_tokens_expire_after_fifteen_minutes_and_refresh_tokens_after_seven_days() {
    let app = TestApp::start().await;
    let alice = app.account("acme", "alice@acme.test", Role::Customer).await;
    app.clock.advance(Duration::minutes(14));
    assert_eq!(
        app.get_as(&alice.access_token, "/api/auth/me")
            .await
            .status(),
        200
    );
    app.clock.advance(Duration::minutes(2));
    assert_eq!(
        app.get_as(&alice.access_token, "/api/auth/me")
            .await
            .status(),
        401
    );

    // The refresh token still works, for a week.
    let res = refresh(&app, &alice.refresh_token).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["expires_in"], 900);
    app.clock.advance(Duration::days(7) + Duration::seconds(1));
    assert_eq!(
        refresh(&app, body["refresh_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn forged_access_tokens_are_refused() {
    let app = TestApp::start().await;
    let alice = app.account("acme", "alice@acme.test", Role::Customer).await;
    let parts: Vec<&str> = alice.access_token.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();

    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    claims["exp"] = json!(claims["exp"].as_i64().unwrap() + 86_400);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    let hs512 = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"HS512","typ":"JWT","kid":"other"}"#),
        parts[1],
        parts[2]
    );
    for forged in [
        none.as_str(),
        tampered.as_str(),
        hs512.as_str(),
        "garbage",
        "a.b.c",
    ] {
        let res = app.get_as(forged, "/api/auth/me").await;
        assert_eq!(res.status(), 401, "{forged}");
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        assert_eq!(problem(res).await["code"], "unauthorized");
    }
    let res = app
        .call(reqwest::Method::GET, "/api/auth/me", None, None)
        .await;
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn unknown_accounts_and_wrong_passwords_get_the_same_answer() {
    let app = TestApp::start().await;
    app.user("acme", "alice@acme.test", Role::Customer).await;
    let wrong_pw = app
        .login_raw("acme", "alice@acme.test", "not the password!")
        .await;
    let unknown = app
        .login_raw("acme", "nobody@acme.test", "not the password!")
        .await;
    let no_tenant = app.login_raw("nope", "alice@acme.test", PASSWORD).await;
    let mut bodies = Vec::new();
    for res in [wrong_pw, unknown, no_tenant] {
        assert_eq!(res.status(), 401);
        let mut body = problem(res).await;
        body.as_object_mut().unwrap().remove("request_id");
        bodies.push(body);
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[0], bodies[2]);
    assert_eq!(bodies[0]["code"], "invalid_credentials");
}

#[tokio::test]
async fn repeated_failures_lock_the_account_for_a_growing_while() {
    let app = TestApp::start().await;
    let tenant = app.tenant("acme").await;
    app.user("acme", "alice@acme.test", Role::Customer).await;
    for _ in 0..5 {
        assert_eq!(
            app.login_raw("acme", "alice@acme.test", "wrong password 123")
                .await
                .status(),
            401
        );
    }
    // The sixth failure locks; while locked even the right password waits.
    assert_eq!(
        app.login_raw("acme", "alice@acme.test", "wrong password 123")
            .await
            .status(),
        401
    );
    let res = app.login_raw("acme", "alice@acme.test", PASSWORD).await;
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(retry, 30);
    assert_eq!(problem(res).await["code"], "login_throttled");

    app.clock.advance(Duration::seconds(31));
    assert_eq!(
        app.login_raw("acme", "alice@acme.test", PASSWORD)
            .await
            .status(),
        200
    );
    let events = app.security_events(tenant).await;
    for kind in [
        "LOGIN_FAILED",
        "LOGIN_LOCKED",
        "LOGIN_THROTTLED",
        "LOGIN_SUCCEEDED",
    ] {
        assert!(
            events.contains(&kind.to_owned()),
            "{kind} missing from {events:?}"
        );
    }
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions() {
    let app = TestApp::start().await;
    let here = app.account("acme", "alice@acme.test", Role::Customer).await;
    let there = app.sign_in("acme", "alice@acme.test", here.user_id).await;
    let res = app
        .post_as(
            &here.access_token,
            "/api/auth/password",
            json!({"current_password": "wrong one entirely", "new_password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(res.status(), 422);
    let res = app
        .post_as(
            &here.access_token,
            "/api/auth/password",
            json!({"current_password": PASSWORD, "new_password": "short"}),
        )
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(problem(res).await["field"], "new_password");
    let res = app
        .post_as(
            &here.access_token,
            "/api/auth/password",
            json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        app.get_as(&there.access_token, "/api/auth/me")
            .await
            .status(),
        401
    );
    assert_eq!(
        app.get_as(&here.access_token, "/api/auth/me")
            .await
            .status(),
        200
    );
    assert_eq!(
        app.login_raw("acme", "alice@acme.test", PASSWORD)
            .await
            .status(),
        401
    );
    assert_eq!(
        app.login_raw("acme", "alice@acme.test", "a brand new passphrase")
            .await
            .status(),
        200
    );
    let events = app.security_events(here.tenant_id).await;
    assert!(
        events.contains(&"PASSWORD_CHANGED".to_owned()),
        "{events:?}"
    );
}

#[tokio::test]
async fn parallel_guesses_cannot_slip_past_the_allowance() {
    let app = TestApp::start().await;
    app.user("acme", "alice@acme.test", Role::Customer).await;
    let guesses = (0..30).map(|i| {
        app.login_raw(
            "acme",
            "alice@acme.test",
            if i == 0 {
                "guess number zero"
            } else {
                "another wrong guess"
            },
        )
    });
    let statuses: Vec<u16> = futures_statuses(guesses).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked + refused, 30, "{statuses:?}");
    assert!(
        checked <= 6,
        "only the allowance is checked, got {checked}: {statuses:?}"
    );
    assert_eq!(
        app.login_raw("acme", "alice@acme.test", PASSWORD)
            .await
            .status(),
        429,
        "and the account is locked"
    );
}

async fn futures_statuses<F: std::future::Future<Output = reqwest::Response>>(
    futs: impl Iterator<Item = F>,
) -> Vec<u16> {
    let handles: Vec<_> = futs.collect();
    let mut out = Vec::new();
    // Run them all at once.
    let joined = join_all(handles).await;
    for res in joined {
        out.push(res.status().as_u16());
    }
    out
}

async fn join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (fut, out) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(|o| o.unwrap()).collect()
}

#[tokio::test]
async fn a_strangers_failed_logins_do_not_lock_the_owner_out() {
    let app = TestApp::start().await;
    app.account("acme", "owner@acme.test", Role::TenantAdmin)
        .await;
    let stranger = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 3]))
        .build()
        .unwrap();
    let mut last = 0;
    for _ in 0..8 {
        last = stranger
            .post(app.url("/api/auth/login"))
            .json(&serde_json::json!({"tenant": "acme", "email": "owner@acme.test", "password": "a wrong guess"}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
    }
    assert_eq!(last, 429, "the stranger is locked out");
    let res = app.login_raw("acme", "owner@acme.test", PASSWORD).await;
    assert_eq!(
        res.status(),
        200,
        "the owner, from their own address, is not"
    );
}
