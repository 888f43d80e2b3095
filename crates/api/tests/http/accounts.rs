//! People get into their accounts through links sent by e-mail, over the
//! harness's real Postfix and read back over IMAP: a customer created by
//! a paid order follows the invitation, sets a password and sees their
//! order and invoice; staff re-send invitations; a forgotten password is
//! reset without telling anyone whether an address has an account.

use mail_parser::MessageParser;
use mpanel_domain::identity::Role;
use mpanel_domain::identity::account_link::{PasswordResetRequest, RESET_JOB};
use serde_json::{Value, json};
use time::Duration;

use crate::inbox;
use crate::orders::{order, shop};
use crate::support::{Account, PASSWORD, TestApp, problem};

const NEW_PASSWORD: &str = "a much longer new passphrase";

fn fresh_address(who: &str) -> String {
    format!("{who}-{}@customer.test", uuid::Uuid::now_v7().simple())
}

/// The messages for `to` (at least `count`), subject and text, parsed as
/// a mail client would.
async fn mails(to: &str, count: usize) -> Vec<(String, String, Vec<u8>)> {
    inbox::messages(to, count)
        .await
        .into_iter()
        .map(|raw| {
            let m = MessageParser::default().parse(&raw).unwrap();
            let subject = m.subject().unwrap_or_default().to_owned();
            let text = m.body_text(0).unwrap_or_default().into_owned();
            (subject, text, raw)
        })
        .collect()
}

/// The token of the link in a message's text.
fn token_in(text: &str, page: &str) -> String {
    let start = text
        .find(&format!("{page}#token="))
        .unwrap_or_else(|| panic!("no {page} link in {text}"));
    text[start..]
        .split_once("#token=")
        .unwrap()
        .1
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

async fn post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url(path))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Runs the queued reset requests as a worker would.
async fn run_reset_jobs(app: &TestApp) -> usize {
    let filter = mpanel_store::jobs::JobFilter {
        kind: Some(RESET_JOB.into()),
        ..Default::default()
    };
    let jobs: Vec<_> = app
        .store
        .list_jobs(&filter, None, 200)
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.state == mpanel_domain::jobs::JobState::Pending)
        .collect();
    for job in &jobs {
        let request: PasswordResetRequest = serde_json::from_value(job.payload.clone()).unwrap();
        mpanel_services::identity::password_reset::send(&app.store, app.clock.as_ref(), &request)
            .await
            .unwrap();
    }
    // Done, as a worker would record it: the next call runs only new ones.
    app.store
        .execute_raw_for_tests(&format!(
            "UPDATE jobs SET state = 'completed' WHERE kind = '{RESET_JOB}'"
        ))
        .await
        .unwrap();
    jobs.len()
}

/// Asks for a reset of `email` in `tenant` and answers the link's token
/// from the `nth` reset message (1-based) that arrives for it (other
/// messages, such as security notices, may arrive between).
async fn reset_token(app: &TestApp, tenant: &str, email: &str, nth: usize) -> String {
    let res = post(
        app,
        "/api/auth/password/forgot",
        json!({"tenant": tenant, "email": email}),
    )
    .await;
    assert_eq!(res.status(), 202);
    assert_eq!(run_reset_jobs(app).await, 1);
    inbox::run_mail_jobs(app, &inbox::relay_mailer()).await;
    for _ in 0..100 {
        let resets: Vec<String> = mails(email, 1)
            .await
            .into_iter()
            .filter(|(_, text, _)| text.contains("/password-reset#token="))
            .map(|(_, text, _)| token_in(&text, "/password-reset"))
            .collect();
        if resets.len() >= nth {
            return resets[nth - 1].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("reset message {nth} for {email} did not arrive");
}

async fn use_link(app: &TestApp, path: &str, token: &str, password: &str) -> reqwest::Response {
    post(app, path, json!({"token": token, "password": password})).await
}

#[tokio::test]
async fn a_customer_from_a_paid_order_follows_the_invitation_and_signs_in() {
    let s = shop().await;
    let to = fresh_address("jane");
    let mut body = order(&s.hosting, "jane-invited.example", true);
    body["customer"]["email"] = json!(to);
    let res = s.app.post_order("acme", &s.secret, "inv-1", &body).await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());

    // The outbox keeps the message without the token: the link is sealed.
    let tenant = s.app.tenant("acme").await;
    let stored = s
        .app
        .store
        .list_emails(
            tenant,
            &mpanel_store::notify::EmailFilter {
                limit: 50,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let invitation = stored
        .iter()
        .find(|e| e.kind == mpanel_domain::notify::EmailKind::Invitation)
        .expect("an invitation is queued with the order");
    assert!(!invitation.text_body.contains("mplk_"));
    assert!(invitation.link_sealed.is_some());

    let mailer = inbox::relay_mailer();
    let sent = inbox::run_mail_jobs(&s.app, &mailer).await;
    assert!(sent.iter().all(Result::is_ok), "{sent:?}");
    let arrived = mails(&to, 2).await;
    let (subject, text, raw) = arrived
        .iter()
        .find(|(subject, ..)| subject.starts_with("Your account at"))
        .expect("the invitation arrived");
    assert_eq!(subject, "Your account at acme");
    assert!(
        text.contains("http://localhost:2271/invitation#token=mplk_"),
        "{text}"
    );
    let res = s
        .app
        .get_as(&s.admin.access_token, "/api/notifications/dkim")
        .await;
    let record: Value = res.json().await.unwrap();
    assert!(inbox::dkim_verifies(
        raw,
        record["record_name"].as_str().unwrap(),
        record["value"].as_str().unwrap()
    ));
    // Sent: the sealed link is gone from the outbox.
    let row = s.app.store.email(tenant, invitation.id).await.unwrap();
    assert_eq!(row.unwrap().link_sealed, None);

    let token = token_in(text, "/invitation");
    // Not signed in before: the account has no password.
    assert_eq!(s.app.login_raw("acme", &to, PASSWORD).await.status(), 401);
    // A password the rules refuse leaves the link working.
    let res = post(
        &s.app,
        "/api/auth/invitations/accept",
        json!({"token": token, "password": "short"}),
    )
    .await;
    assert_eq!(res.status(), 422);
    assert_eq!(problem(res).await["field"], "password");
    let res = post(
        &s.app,
        "/api/auth/invitations/accept",
        json!({"token": token, "password": PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let ready: Value = res.json().await.unwrap();
    assert_eq!(
        (&ready["tenant"], &ready["email"], &ready["status"]),
        (&json!("acme"), &json!(to), &json!("ACTIVE"))
    );

    // The same link a second time is refused.
    let res = post(
        &s.app,
        "/api/auth/invitations/accept",
        json!({"token": token, "password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), 422);
    assert_eq!(problem(res).await["field"], "token");

    // Signed in, the customer sees their order and its invoice.
    let res = s.app.login_raw("acme", &to, PASSWORD).await;
    assert_eq!(res.status(), 200);
    let bearer = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let orders: Value = s
        .app
        .get_as(&bearer, "/api/me/orders")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(orders["items"].as_array().unwrap().len(), 1, "{orders}");
    let invoices: Value = s
        .app
        .get_as(&bearer, "/api/me/invoices")
        .await
        .json()
        .await
        .unwrap();
    let invoices = invoices["items"].as_array().unwrap();
    assert_eq!(invoices.len(), 1, "{invoices:?}");
    assert_eq!(invoices[0]["status"], "PAID");
    let subs: Value = s
        .app
        .get_as(&bearer, "/api/me/subscriptions")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(subs["items"].as_array().unwrap().len(), 1, "{subs}");
    let events = s.app.security_events(tenant).await;
    assert!(
        events.contains(&"INVITATION_ACCEPTED".to_owned()),
        "{events:?}"
    );
}

/// A TENANT_ADMIN of `slug`.
async fn admin(app: &TestApp, slug: &str) -> Account {
    app.account(slug, &format!("admin@{slug}.test"), Role::TenantAdmin)
        .await
}

#[tokio::test]
async fn staff_invite_without_a_password_and_a_new_invitation_replaces_the_old() {
    let app = TestApp::start().await;
    let boss = admin(&app, "invco").await;
    let to = fresh_address("sam");
    let res = app
        .post_as(
            &boss.access_token,
            "/api/users",
            json!({"email": to, "display_name": "Sam", "role": "SUPPORT"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let user: Value = res.json().await.unwrap();
    assert_eq!(user["status"], "INVITED");
    let id = user["id"].as_str().unwrap();
    let mailer = inbox::relay_mailer();
    inbox::run_mail_jobs(&app, &mailer).await;
    let first = token_in(&mails(&to, 1).await[0].1, "/invitation");

    // Who may re-send: not another tenant, not a role without USERS_WRITE.
    let other = admin(&app, "otherinv").await;
    let path = format!("/api/users/{id}/invite");
    assert_eq!(
        app.post_as(&other.access_token, &path, json!({}))
            .await
            .status(),
        404
    );
    let billing = app
        .account("invco", "billing@invco.test", Role::Billing)
        .await;
    assert_eq!(
        app.post_as(&billing.access_token, &path, json!({}))
            .await
            .status(),
        403
    );

    let res = app.post_as(&boss.access_token, &path, json!({})).await;
    assert_eq!(res.status(), 202);
    inbox::run_mail_jobs(&app, &mailer).await;
    let second = token_in(&mails(&to, 2).await[1].1, "/invitation");
    assert_ne!(first, second);
    let accept = |token: String| {
        let app = &app;
        async move {
            post(
                app,
                "/api/auth/invitations/accept",
                json!({"token": token, "password": PASSWORD}),
            )
            .await
            .status()
        }
    };
    assert_eq!(accept(first).await, 422, "the old link stopped working");
    // A link works for 7 days.
    app.clock.advance(Duration::days(7) + Duration::minutes(1));
    assert_eq!(accept(second.clone()).await, 422, "expired");
    app.clock
        .advance(-(Duration::days(7) + Duration::minutes(1)));
    assert_eq!(accept(second).await, 200);
    assert_eq!(app.login_raw("invco", &to, PASSWORD).await.status(), 200);
    // Active now: no invitation any more.
    let res = app.post_as(&boss.access_token, &path, json!({})).await;
    assert_eq!(res.status(), 409);
}

#[tokio::test]
async fn staff_created_customers_are_invited_unless_held() {
    let app = TestApp::start().await;
    let boss = admin(&app, "custinv").await;
    let create = |email: String, send: Option<bool>| {
        let (app, boss) = (&app, &boss);
        async move {
            let mut body = json!({"email": email, "name": "Ann", "country": "FR"});
            if let Some(send) = send {
                body["send_invitation"] = json!(send);
            }
            let res = app
                .post_as(&boss.access_token, "/api/customers", body)
                .await;
            assert_eq!(res.status(), 201);
        }
    };
    let (invited, held) = (fresh_address("ann"), fresh_address("bob"));
    create(invited.clone(), None).await;
    create(held.clone(), Some(false)).await;
    let res = app
        .get_as(&boss.access_token, "/api/notifications/outbox")
        .await;
    let outbox: Value = res.json().await.unwrap();
    let to: Vec<(&str, &str)> = outbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap(),
                m["recipient"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(to, vec![("INVITATION", invited.as_str())]);
}

#[tokio::test]
async fn a_forgotten_password_is_reset_by_mail_and_old_sessions_end() {
    let app = TestApp::start().await;
    let to = fresh_address("kim");
    let kim = app.account("resetco", &to, Role::Customer).await;
    let unknown = fresh_address("nobody");

    let forgot = |email: String| {
        let app = &app;
        async move {
            let res = post(
                app,
                "/api/auth/password/forgot",
                json!({"tenant": "resetco", "email": email}),
            )
            .await;
            (res.status(), res.text().await.unwrap())
        }
    };
    let known = forgot(to.clone()).await;
    let stranger = forgot(unknown.clone()).await;
    assert_eq!(known.0, 202);
    assert_eq!(known, stranger, "the same answer for an unknown address");
    assert_eq!(run_reset_jobs(&app).await, 2);
    let mailer = inbox::relay_mailer();
    inbox::run_mail_jobs(&app, &mailer).await;
    let arrived = mails(&to, 1).await;
    assert!(
        arrived[0].0.starts_with("Reset your password"),
        "{}",
        arrived[0].0
    );
    let token = token_in(&arrived[0].1, "/password-reset");
    let mut imap = inbox::Imap::login(&unknown).await;
    assert!(
        imap.search_all().await.is_empty(),
        "no mail for an unknown address"
    );

    let res = post(
        &app,
        "/api/auth/password/reset",
        json!({"token": token, "password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let done: Value = res.json().await.unwrap();
    assert_eq!(done["sessions_revoked"], 1);
    // The old password, the old session and its refresh token are done.
    assert_eq!(app.login_raw("resetco", &to, PASSWORD).await.status(), 401);
    let res = post(
        &app,
        "/api/auth/refresh",
        json!({"refresh_token": kim.refresh_token}),
    )
    .await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        app.get_as(&kim.access_token, "/api/auth/me").await.status(),
        401
    );
    assert_eq!(
        app.login_raw("resetco", &to, NEW_PASSWORD).await.status(),
        200
    );
    // Single use.
    let res = post(
        &app,
        "/api/auth/password/reset",
        json!({"token": token, "password": PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), 422);
    // A security notice: in the outbox for admins only.
    let boss = admin(&app, "resetco").await;
    let support = app
        .account("resetco", "support@resetco.test", Role::Support)
        .await;
    let resets = |bearer: String| {
        let app = &app;
        async move {
            let page: Value = app
                .get_as(&bearer, "/api/notifications/outbox?kind=PASSWORD_RESET")
                .await
                .json()
                .await
                .unwrap();
            page["items"].as_array().unwrap().len()
        }
    };
    assert_eq!(resets(boss.access_token.clone()).await, 1);
    assert_eq!(resets(support.access_token.clone()).await, 0);
    let events = app.security_events(kim.tenant_id).await;
    assert!(events.contains(&"PASSWORD_RESET_REQUESTED".to_owned()));
    assert!(events.contains(&"PASSWORD_RESET".to_owned()), "{events:?}");
}

#[tokio::test]
async fn reset_links_last_an_hour_and_requests_are_throttled() {
    let app = TestApp::start().await;
    let to = fresh_address("lee");
    app.user("throttleco", &to, Role::Customer).await;
    for _ in 0..5 {
        let res = post(
            &app,
            "/api/auth/password/forgot",
            json!({"tenant": "throttleco", "email": to}),
        )
        .await;
        assert_eq!(res.status(), 202);
    }
    assert_eq!(
        run_reset_jobs(&app).await,
        3,
        "three a while per address, then quiet"
    );
    inbox::run_mail_jobs(&app, &inbox::relay_mailer()).await;
    let arrived = mails(&to, 3).await;
    let newest = token_in(&arrived[2].1, "/password-reset");
    let oldest = token_in(&arrived[0].1, "/password-reset");
    let reset = |token: String| {
        let app = &app;
        async move {
            post(
                app,
                "/api/auth/password/reset",
                json!({"token": token, "password": NEW_PASSWORD}),
            )
            .await
            .status()
        }
    };
    assert_eq!(reset(oldest).await, 422, "a newer link replaced it");
    app.clock.advance(Duration::minutes(61));
    assert_eq!(reset(newest).await, 422, "an hour is over");

    // Per client: ten requests, then 429 whatever the address.
    let mut statuses = Vec::new();
    for i in 0..12 {
        let res = post(
            &app,
            "/api/auth/password/forgot",
            json!({"tenant": "throttleco", "email": format!("x{i}@customer.test")}),
        )
        .await;
        statuses.push(res.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
}

#[tokio::test]
async fn the_links_open_a_page_that_sets_the_password() {
    let app = TestApp::start().await;
    for (page, endpoint) in [
        ("/invitation", "/api/auth/invitations/accept"),
        ("/password-reset", "/api/auth/password/reset"),
    ] {
        let res = app.get(page).await;
        assert_eq!(res.status(), 200, "{page}");
        let csp = res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"),
            "{csp}"
        );
        let html = res.text().await.unwrap();
        assert!(
            html.contains(&format!("data-endpoint=\"{endpoint}\"")),
            "{html}"
        );
        assert!(html.contains("type=\"password\""));
    }
    let js = app.get("/account/account.js").await;
    assert_eq!(js.status(), 200);
    let js = js.text().await.unwrap();
    assert!(
        js.contains("location.hash")
            && js.contains("JSON.stringify({ token: token, password: password })")
    );
}

#[tokio::test]
async fn links_hold_against_races_disabled_accounts_suspended_tenants_and_mfa() {
    let app = TestApp::start().await;
    let boss = admin(&app, "edgeco").await;
    let to = fresh_address("mia");
    let mia = app.account("edgeco", &to, Role::Customer).await;
    crate::security_center::enrol_totp(&app, &mia).await;

    // Two uses of one link at once: one wins.
    let token = reset_token(&app, "edgeco", &to, 1).await;
    let reset = "/api/auth/password/reset";
    let (a, b) = tokio::join!(
        use_link(&app, reset, &token, NEW_PASSWORD),
        use_link(&app, reset, &token, NEW_PASSWORD)
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 422]);
    // The second factor still stands between the new password and a session.
    let res = app.login_raw("edgeco", &to, NEW_PASSWORD).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["mfa_required"], true);

    // A link of a user disabled since is refused, and leaves nothing done.
    let token = reset_token(&app, "edgeco", &to, 2).await;
    let res = app
        .post_as(
            &boss.access_token,
            &format!("/api/users/{}/disable", mia.user_id),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = use_link(&app, reset, &token, PASSWORD).await;
    assert_eq!(res.status(), 403);
    assert_eq!(problem(res).await["code"], "account_disabled");

    // An invited user who asks for a reset instead is activated by it.
    let invited = fresh_address("ivy");
    let res = app
        .post_as(
            &boss.access_token,
            "/api/customers",
            json!({"email": invited, "name": "Ivy", "country": "FR", "send_invitation": false}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let token = reset_token(&app, "edgeco", &invited, 1).await;
    let res = use_link(&app, reset, &token, PASSWORD).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "ACTIVE");

    // A suspended tenant's links are refused.
    let ops = app
        .account("platform", "ops@platform.test", Role::SuperAdmin)
        .await;
    let sam = fresh_address("sam");
    let res = app
        .post_as(
            &boss.access_token,
            "/api/customers",
            json!({"email": sam, "name": "Sam", "country": "FR"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    inbox::run_mail_jobs(&app, &inbox::relay_mailer()).await;
    let token = token_in(&mails(&sam, 1).await[0].1, "/invitation");
    let res = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/tenants/{}", boss.tenant_id),
            Some(&ops.access_token),
            Some(json!({"status": "SUSPENDED"})),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let res = use_link(&app, "/api/auth/invitations/accept", &token, PASSWORD).await;
    assert_eq!(res.status(), 403);
    assert_eq!(problem(res).await["code"], "tenant_suspended");
}
