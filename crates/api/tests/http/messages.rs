//! The messages of issue 14 beyond invoices and account links, each
//! queued in the transaction of its event and read back from the outbox
//! (`GET /api/notifications/outbox?kind=`): a payment, a service going
//! live, suspended, restored and ended, a sign-in from a new address, a
//! second factor turned on and off, a new API token, and a webhook
//! endpoint disabled. A payment and a new sign-in travel through the
//! harness's Postfix and are read over IMAP.

use std::sync::Arc;

use mail_parser::MessageParser;
use mpanel_domain::identity::Role;
use mpanel_domain::provisioning::PROVISION_JOB;
use mpanel_provision::domain_control::ControlSettings;
use mpanel_provision::saga::{ProvisionSubscription, Provisioner};
use serde_json::{Value, json};
use time::Duration;

use crate::billing::{billing_admin, customer, draft, issue};
use crate::inbox;
use crate::orders::{order, product};
use crate::security_center::{code, enrol_totp, set_policy};
use crate::support::{Account, PASSWORD, TestApp};

fn fresh_address(who: &str) -> String {
    format!("{who}-{}@customer.test", uuid::Uuid::now_v7().simple())
}

/// The outbox's messages of `kind`, newest first, as `(recipient,
/// subject)`.
pub async fn outbox_of(app: &TestApp, bearer: &str, kind: &str) -> Vec<(String, String)> {
    let res = app
        .get_as(
            bearer,
            &format!("/api/notifications/outbox?kind={kind}&limit=100"),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let page: Value = res.json().await.unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|m| assert_eq!(m["kind"], kind))
        .map(|m| {
            (
                m["recipient"].as_str().unwrap().to_owned(),
                m["subject"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The messages that arrived for `to` (at least `count`), as subject and
/// text, parsed as a mail client would.
async fn arrived(to: &str, count: usize) -> Vec<(String, String)> {
    inbox::messages(to, count)
        .await
        .iter()
        .map(|raw| {
            let m = MessageParser::default().parse(raw).unwrap();
            (
                m.subject().unwrap_or_default().to_owned(),
                m.body_text(0).unwrap_or_default().into_owned(),
            )
        })
        .collect()
}

/// Signs in over a connection from `ip` (a loopback address).
async fn login_from(app: &TestApp, ip: [u8; 4], email: &str) -> Value {
    let client = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(ip))
        .build()
        .unwrap();
    let res = client
        .post(app.url("/api/auth/login"))
        .json(&json!({"tenant": "acme", "email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    res.json().await.unwrap()
}

#[tokio::test]
async fn a_payment_is_confirmed_by_mail_with_what_remains_due() {
    let app = TestApp::start().await;
    let admin = billing_admin(&app, "paymail").await;
    let to = fresh_address("payer");
    let jane = customer(&app, &admin, &to, "DE", None).await;
    let inv = draft(
        &app,
        &admin,
        json!({"customer_id": jane, "lines": [
            {"kind": "ITEM", "description": "Web hosting Pro", "quantity": "1", "unit_price": "20.00"}]}),
    )
    .await;
    let id = inv["id"].as_str().unwrap();
    let res = issue(&app, &admin, id).await;
    let issued: Value = res.json().await.unwrap();
    let number = issued["number"].as_str().unwrap().to_owned();
    let currency = issued["currency"].as_str().unwrap().to_owned();
    assert!(
        outbox_of(&app, &admin.access_token, "PAYMENT_RECEIVED")
            .await
            .is_empty(),
        "nothing before money arrives"
    );

    let res = app
        .post_as(
            &admin.access_token,
            &format!("/api/billing/invoices/{id}/pay"),
            json!({"amount_minor": 500, "provider": "BANK_TRANSFER", "reference": "bank-1"}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let queued = outbox_of(&app, &admin.access_token, "PAYMENT_RECEIVED").await;
    assert_eq!(
        queued,
        vec![(to.clone(), format!("Payment received for invoice {number}"))]
    );

    let ran = inbox::run_mail_jobs(&app, &inbox::relay_mailer()).await;
    assert!(ran.iter().all(Result::is_ok), "{ran:?}");
    let mail = arrived(&to, 2).await;
    let (subject, text) = mail
        .iter()
        .find(|(s, _)| s.starts_with("Payment received"))
        .expect("the payment's message arrived");
    assert_eq!(subject, &format!("Payment received for invoice {number}"));
    assert!(
        text.contains(&format!("payment of 5.00 {currency} for invoice {number}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("Still due on this invoice: 15.00 {currency}.")),
        "{text}"
    );
    // Staff see the subject, never the body.
    let res = app
        .get_as(&admin.access_token, "/api/notifications/outbox?kind=LOST")
        .await;
    assert_eq!(res.status(), 422, "an unknown kind is refused");
}

#[tokio::test]
async fn a_service_going_live_suspended_restored_and_ended_is_told_to_its_customer() {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    // A plan whose provisioning makes nothing on a server (no mailbox
    // yet), so it runs here without nodes.
    let plan = product(
        &app,
        &admin,
        "mail-plan",
        "ACTIVE",
        "PUBLIC",
        json!({"type": "EMAIL", "mailboxes": 0}),
    )
    .await;
    // Proof of control of the domain is not what this test is about.
    set_policy(&app, &admin, json!({"domain_control": "NONE"})).await;
    let to = fresh_address("owner");
    let mut body = order(&plan, "ready-shop.example", true);
    body["customer"]["email"] = json!(to);
    let res = app
        .post_order("acme", &app.webhook_secret("acme"), "ready-1", &body)
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let placed: Value = res.json().await.unwrap();
    let sub = placed["items"][0]["subscription_id"].as_str().unwrap();
    let bearer = admin.access_token.as_str();
    // The order's payment is confirmed; nothing is ready yet.
    assert_eq!(outbox_of(&app, bearer, "PAYMENT_RECEIVED").await.len(), 1);
    assert!(outbox_of(&app, bearer, "SERVICE_READY").await.is_empty());

    // The provisioning job, run as a worker runs it, activates it.
    let filter = mpanel_store::jobs::JobFilter {
        kind: Some(PROVISION_JOB.into()),
        ..Default::default()
    };
    let jobs = app.store.list_jobs(&filter, None, 10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    let payload: ProvisionSubscription = serde_json::from_value(jobs[0].payload.clone()).unwrap();
    let provisioner = Provisioner {
        acme: Default::default(),
        store: app.store.clone(),
        clock: app.clock.clone() as Arc<dyn mpanel_domain::Clock>,
        secrets: None,
        control: ControlSettings {
            resolver: "127.0.0.1:53".parse().unwrap(),
            authority_port: 53,
            recheck: Duration::seconds(1),
        },
    };
    provisioner.provision(&payload, false).await.unwrap();
    // Run again (a retry): nothing more is sent.
    provisioner.provision(&payload, false).await.unwrap();
    assert_eq!(
        outbox_of(&app, bearer, "SERVICE_READY").await,
        vec![(
            to.clone(),
            "mail-plan for ready-shop.example is ready".into()
        )]
    );

    let step = |what: &'static str| {
        let path = format!("/api/billing/subscriptions/{sub}/{what}");
        let body = if what == "cancel" {
            json!({"mode": "IMMEDIATE"})
        } else {
            json!({})
        };
        let app = &app;
        async move {
            let res = app.post_as(bearer, &path, body).await;
            assert_eq!(res.status(), 200, "{what}: {}", res.text().await.unwrap());
        }
    };
    step("suspend").await;
    assert_eq!(
        outbox_of(&app, bearer, "SERVICE_SUSPENDED").await,
        vec![(
            to.clone(),
            "Your mail-plan for ready-shop.example is suspended".into()
        )]
    );
    step("resume").await;
    assert_eq!(
        outbox_of(&app, bearer, "SERVICE_RESTORED").await,
        vec![(
            to.clone(),
            "Your mail-plan for ready-shop.example is active again".into()
        )]
    );
    step("cancel").await;
    assert_eq!(
        outbox_of(&app, bearer, "SUBSCRIPTION_CANCELLED").await,
        vec![(
            to.clone(),
            "Your mail-plan for ready-shop.example has ended".into()
        )]
    );
    // One of each: nothing was sent twice.
    assert_eq!(outbox_of(&app, bearer, "SERVICE_SUSPENDED").await.len(), 1);
    assert_eq!(outbox_of(&app, bearer, "SERVICE_RESTORED").await.len(), 1);
}

#[tokio::test]
async fn a_sign_in_from_a_new_address_is_told_but_not_the_first_nor_a_known_one() {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    let bearer = admin.access_token.as_str();
    let to = fresh_address("signin");
    app.user("acme", &to, Role::Support).await;

    // The account's first sign-in, and again from the same address.
    login_from(&app, [127, 0, 0, 1], &to).await;
    login_from(&app, [127, 0, 0, 1], &to).await;
    assert!(outbox_of(&app, bearer, "NEW_SIGN_IN").await.is_empty());

    // Another address: told once; that address is known from then on.
    login_from(&app, [127, 0, 0, 6], &to).await;
    login_from(&app, [127, 0, 0, 6], &to).await;
    login_from(&app, [127, 0, 0, 1], &to).await;
    assert_eq!(
        outbox_of(&app, bearer, "NEW_SIGN_IN").await,
        vec![(to.clone(), "New sign-in to your account at acme".into())]
    );

    let ran = inbox::run_mail_jobs(&app, &inbox::relay_mailer()).await;
    assert!(ran.iter().all(Result::is_ok), "{ran:?}");
    let (subject, text) = arrived(&to, 1).await.remove(0);
    assert_eq!(subject, "New sign-in to your account at acme");
    assert!(text.contains("Signed in from: 127.0.0.6"), "{text}");
    assert!(
        text.contains("When:           2026-11-21 09:00 UTC"),
        "{text}"
    );
    assert!(text.contains("If it was not, change your"), "{text}");
    assert!(!text.contains(PASSWORD));
}

#[tokio::test]
async fn second_factors_and_api_tokens_are_told_to_their_user_without_secrets() {
    let app = TestApp::start().await;
    let to = fresh_address("alice");
    let alice = app.account("acme", &to, Role::TenantAdmin).await;
    let bearer = alice.access_token.clone();
    let (secret, _codes) = enrol_totp(&app, &alice).await;
    let mfa = outbox_of(&app, &bearer, "MFA_CHANGED").await;
    assert_eq!(
        mfa,
        vec![(
            to.clone(),
            "A second factor was added to your account at acme".into()
        )]
    );

    let (token, _) = app.api_token(&bearer, &["READ"]).await;
    assert_eq!(
        outbox_of(&app, &bearer, "API_TOKEN_CREATED").await,
        vec![(
            to.clone(),
            "New API token \"t\" for your account at acme".into()
        )]
    );

    app.clock.advance(Duration::seconds(30));
    let res = app
        .post_as(
            &bearer,
            "/api/security/me/mfa/disable",
            json!({"password": PASSWORD, "code": code(&app, &secret)}),
        )
        .await;
    assert_eq!(res.status(), 204, "{}", res.text().await.unwrap());
    let mfa = outbox_of(&app, &bearer, "MFA_CHANGED").await;
    assert_eq!(mfa.len(), 2);
    assert_eq!(
        mfa[0],
        (
            to.clone(),
            "Second factors were removed from your account at acme".into()
        )
    );

    // No secret is in any of them: not the token (nor its start), not
    // the TOTP seed.
    let ran = inbox::run_mail_jobs(&app, &inbox::relay_mailer()).await;
    assert!(ran.iter().all(Result::is_ok), "{ran:?}");
    let mail = arrived(&to, 3).await;
    for (subject, text) in &mail {
        assert!(!text.contains(&token[..12]), "{subject}: {text}");
        assert!(!text.contains(&secret), "{subject}: {text}");
        assert!(text.contains("If it was not"), "{subject}: {text}");
        assert!(text.contains("Signed in from: 127.0.0.1"), "{text}");
    }
    let created = mail
        .iter()
        .find(|(s, _)| s.starts_with("New API token"))
        .unwrap();
    assert!(created.1.contains("Scopes:         READ"), "{}", created.1);
}

/// A tenant's admins, told when an endpoint is disabled (see
/// `webhooks::a_receiver_that_never_accepts_…`).
pub async fn assert_admins_told_of_disabled_endpoint(
    app: &TestApp,
    admin: &Account,
    admins: &[&str],
) {
    let mut to: Vec<String> = outbox_of(app, &admin.access_token, "WEBHOOK_ENDPOINT_DISABLED")
        .await
        .into_iter()
        .map(|(recipient, subject)| {
            assert!(
                subject.starts_with("Webhook endpoint disabled: http://127.0.0.1:"),
                "{subject}"
            );
            recipient
        })
        .collect();
    to.sort();
    let mut want: Vec<String> = admins.iter().map(|a| (*a).to_owned()).collect();
    want.sort();
    assert_eq!(to, want);
}
