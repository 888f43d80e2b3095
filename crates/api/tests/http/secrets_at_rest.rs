//! Secrets at rest: what the database holds after a Stripe key is set, a
//! webhook secret is rotated or TOTP is enrolled is sealed (`v1:…`) and
//! bound to its row; a sealed value copied to another tenant's row does not
//! open; clear values left by an older release are sealed at start-up and
//! keep working; recovery codes carry 80 bits and are keyed per user.

use mpanel_domain::identity::Role;
use mpanel_domain::security::{base32, totp};
use mpanel_store::secret_box::SecretBox;
use serde_json::{Value, json};
use time::Duration;

use crate::billing::{billing_admin, put_settings};
use crate::orders::{order, product};
use crate::stripe_fake::signed_event;
use crate::support::{Account, PASSWORD, TEST_SECRETS_KEY, TestApp};

fn assert_sealed(stored: &str, clear: &str) {
    assert!(stored.starts_with("v1:"), "not sealed: {stored}");
    assert!(!stored.contains(clear), "the clear secret is in {stored}");
}

fn code(app: &TestApp, secret: &str) -> String {
    let bytes = base32::decode(secret).unwrap();
    totp::code_at_step(
        &bytes,
        totp::step_of(app.clock_now().unix_timestamp()),
        totp::Algorithm::Sha1,
        6,
    )
}

/// Enrols TOTP; returns the seed and the recovery codes.
async fn enrol_totp(app: &TestApp, who: &Account) -> (String, Vec<String>) {
    let res = app
        .post_as(&who.access_token, "/api/security/me/mfa/enable", json!({}))
        .await;
    assert_eq!(res.status(), 200);
    let secret = res.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .post_as(
            &who.access_token,
            "/api/security/me/mfa/confirm",
            json!({"code": code(app, &secret)}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let codes = res.json::<Value>().await.unwrap()["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (secret, codes)
}

/// Logs in (password) and completes the second step with `factor`.
async fn second_step(app: &TestApp, slug: &str, email: &str, factor: Value) -> u16 {
    let res = app.login_raw(slug, email, PASSWORD).await;
    assert_eq!(res.status(), 200);
    let mut body: Value = res.json().await.unwrap();
    assert_eq!(body["mfa_required"], true, "{body}");
    let mut step = factor;
    step["mfa_token"] = body["mfa_token"].take();
    app.client
        .post(app.url("/api/auth/mfa"))
        .json(&step)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn stripe_webhook(app: &TestApp, slug: &str, whsec: &str, id: &str) -> u16 {
    let event = json!({"id": id, "object": "event", "type": "customer.created",
                       "created": 1_795_251_600, "livemode": false, "data": {"object": {}}});
    let (body, signature) = signed_event(whsec, app.clock_now().unix_timestamp(), &event);
    app.client
        .post(app.url(&format!("/api/billing/stripe/webhook?tenant={slug}")))
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn rotate(app: &TestApp, admin: &Account) -> String {
    let res = app
        .post_as(
            &admin.access_token,
            "/api/settings/webhook-secret/rotate",
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["webhook_secret"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn stripe_keys_are_sealed_in_the_database_and_still_verify_webhooks() {
    let app = TestApp::start().await;
    let admin = billing_admin(&app, "acme").await;
    put_settings(
        &app,
        &admin,
        json!({"stripe_secret_key": "sk_test_Sealed123", "stripe_webhook_secret": "whsec_Sealed456"}),
    )
    .await;
    let row = app
        .store
        .billing_settings(admin.tenant_id)
        .await
        .unwrap()
        .unwrap();
    assert_sealed(
        row.stripe_secret_key.as_deref().unwrap(),
        "sk_test_Sealed123",
    );
    assert_sealed(
        row.stripe_webhook_secret.as_deref().unwrap(),
        "whsec_Sealed456",
    );
    // Bound to its column too: the key does not open as the webhook secret.
    let sb = SecretBox::from_base64(TEST_SECRETS_KEY).unwrap();
    let tenant = admin.tenant_id.to_string();
    assert_eq!(
        sb.open_str(
            row.stripe_secret_key.as_deref().unwrap(),
            "stripe_secret_key",
            &tenant
        )
        .unwrap(),
        "sk_test_Sealed123"
    );
    assert!(
        sb.open_str(
            row.stripe_secret_key.as_deref().unwrap(),
            "stripe_webhook_secret",
            &tenant
        )
        .is_err()
    );
    assert_eq!(
        stripe_webhook(&app, "acme", "whsec_Sealed456", "evt_1").await,
        200
    );
    assert_eq!(
        stripe_webhook(&app, "acme", "whsec_wrong", "evt_2").await,
        401
    );
    // The settings answer says whether a key is set, never what it is.
    let res = app
        .get_as(&admin.access_token, "/api/billing/settings")
        .await;
    let text = res.text().await.unwrap();
    assert!(!text.contains("Sealed") && !text.contains("v1:"), "{text}");
    // Nor does the audit trail.
    let audit = app
        .get_as(&admin.access_token, "/api/audit?limit=100")
        .await
        .text()
        .await
        .unwrap();
    assert!(!audit.contains("Sealed"), "{audit}");
}

#[tokio::test]
async fn a_rotated_webhook_secret_is_sealed_and_signs_orders() {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    let first = app.webhook_secret("acme");
    let new_secret = rotate(&app, &admin).await;
    let rows = app
        .store
        .webhook_secrets(admin.tenant_id, app.clock_now())
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "the new one and the old one in its grace");
    for (_, stored) in &rows {
        assert_sealed(stored, &new_secret);
        assert_sealed(stored, &first);
    }
    let hosting = product(
        &app,
        &admin,
        "web",
        "ACTIVE",
        "PUBLIC",
        json!({"type": "HOSTING", "dns_zone": true}),
    )
    .await;
    let res = app
        .post_order(
            "acme",
            &new_secret,
            "k-1",
            &order(&hosting, "sealed.example", false),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
}

#[tokio::test]
async fn a_sealed_value_copied_to_another_tenants_row_is_refused() {
    let app = TestApp::start().await;
    let alpha = app
        .account("alpha", "admin@alpha.test", Role::TenantAdmin)
        .await;
    let beta = app
        .account("beta", "admin@beta.test", Role::TenantAdmin)
        .await;
    let alpha_secret = app.webhook_secret("alpha");
    let beta_secret = app.webhook_secret("beta");
    // Someone with write access to the database copies alpha's sealed
    // webhook secret over beta's, and alpha's Stripe secrets over beta's.
    put_settings(
        &app,
        &alpha,
        json!({"stripe_secret_key": "sk_test_alpha", "stripe_webhook_secret": "whsec_alpha"}),
    )
    .await;
    put_settings(
        &app,
        &beta,
        json!({"stripe_secret_key": "sk_test_beta", "stripe_webhook_secret": "whsec_beta"}),
    )
    .await;
    app.store
        .execute_raw_for_tests(
            "UPDATE webhook_secrets SET secret = (SELECT w.secret FROM webhook_secrets w \
             JOIN tenants t ON t.id = w.tenant_id WHERE t.slug = 'alpha') \
             WHERE tenant_id = (SELECT id FROM tenants WHERE slug = 'beta')",
        )
        .await
        .unwrap();
    app.store
        .execute_raw_for_tests(
            "UPDATE billing_settings SET \
             stripe_webhook_secret = (SELECT b.stripe_webhook_secret FROM billing_settings b \
               JOIN tenants t ON t.id = b.tenant_id WHERE t.slug = 'alpha'), \
             stripe_secret_key = (SELECT b.stripe_secret_key FROM billing_settings b \
               JOIN tenants t ON t.id = b.tenant_id WHERE t.slug = 'alpha') \
             WHERE tenant_id = (SELECT id FROM tenants WHERE slug = 'beta')",
        )
        .await
        .unwrap();
    let body = json!({"not": "an order"});
    // Beta's row now holds alpha's secret: it does not open there, so
    // neither alpha's secret nor beta's old one is accepted for beta.
    for secret in [&alpha_secret, &beta_secret] {
        let res = app.post_order("beta", secret, "x-1", &body).await;
        assert_eq!(res.status(), 401, "{}", res.text().await.unwrap());
    }
    // Alpha is untouched: its signature is accepted (the body is then
    // refused as an order, which comes after the signature check).
    let res = app.post_order("alpha", &alpha_secret, "x-2", &body).await;
    assert_eq!(res.status(), 422, "{}", res.text().await.unwrap());
    // The same for Stripe: beta's moved webhook secret opens for nobody.
    assert_eq!(
        stripe_webhook(&app, "beta", "whsec_alpha", "evt_a").await,
        401
    );
    assert_eq!(
        stripe_webhook(&app, "beta", "whsec_beta", "evt_b").await,
        401
    );
    assert_eq!(
        stripe_webhook(&app, "alpha", "whsec_alpha", "evt_c").await,
        200
    );
}

#[tokio::test]
async fn a_totp_seed_is_sealed_and_logins_still_check_it() {
    let app = TestApp::start().await;
    let alice = app.account("acme", "alice@acme.test", Role::Billing).await;
    let (secret, _) = enrol_totp(&app, &alice).await;
    let row = app.store.totp(alice.user_id).await.unwrap().unwrap();
    assert_sealed(&row.secret, &secret);
    assert!(!format!("{row:?}").contains(&row.secret));
    app.clock.advance(Duration::seconds(30));
    let now = code(&app, &secret);
    assert_eq!(
        second_step(&app, "acme", "alice@acme.test", json!({"code": now})).await,
        200
    );

    // Bob's seed copied over Alice's row does not open there: Bob's codes
    // do not log Alice in.
    let bob = app.account("acme", "bob@acme.test", Role::Billing).await;
    let (bob_secret, _) = enrol_totp(&app, &bob).await;
    app.store
        .execute_raw_for_tests(&format!(
            "UPDATE mfa_totp SET secret = (SELECT b.secret FROM mfa_totp b JOIN users u ON u.id = b.user_id \
             WHERE u.email = 'bob@acme.test') WHERE user_id = (SELECT id FROM users WHERE email = '{}')",
            "alice@acme.test"
        ))
        .await
        .unwrap();
    app.clock.advance(Duration::seconds(30));
    let bobs = code(&app, &bob_secret);
    assert_eq!(
        second_step(&app, "acme", "alice@acme.test", json!({"code": bobs})).await,
        422
    );
}

#[tokio::test]
async fn recovery_codes_carry_80_bits_and_work_only_for_their_user() {
    let app = TestApp::start().await;
    let alice = app.account("acme", "alice@acme.test", Role::Billing).await;
    let bob = app.account("acme", "bob@acme.test", Role::Billing).await;
    let (_, alice_codes) = enrol_totp(&app, &alice).await;
    let (_, bob_codes) = enrol_totp(&app, &bob).await;
    for c in alice_codes.iter().chain(&bob_codes) {
        let bare: String = c.chars().filter(|ch| *ch != '-').collect();
        assert_eq!(bare.len(), 16, "{c}");
        assert!(
            base32::decode(&bare.to_ascii_uppercase()).is_some_and(|b| b.len() * 8 >= 80),
            "{c}"
        );
    }
    // Alice's code does not work for Bob; it still works for Alice.
    assert_eq!(
        second_step(
            &app,
            "acme",
            "bob@acme.test",
            json!({"recovery_code": alice_codes[0]})
        )
        .await,
        422
    );
    assert_eq!(
        second_step(
            &app,
            "acme",
            "alice@acme.test",
            json!({"recovery_code": alice_codes[0]})
        )
        .await,
        200
    );
    assert_eq!(
        second_step(
            &app,
            "acme",
            "bob@acme.test",
            json!({"recovery_code": bob_codes[0]})
        )
        .await,
        200
    );
}

#[tokio::test]
async fn clear_secrets_from_an_older_release_are_sealed_at_start_and_keep_working() {
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    let alice = app.account("acme", "alice@acme.test", Role::Billing).await;
    let tenant = admin.tenant_id;
    let now = app.clock_now();
    // What an older release stored: everything in clear.
    let order_secret = "whsec_ClearOrderSecret0123456789";
    let seed = base32::encode(&[9u8; 20]);
    let legacy_code = "abcd-efgh";
    let mut tx = app.store.begin().await.unwrap();
    tx.retire_webhook_secrets(tenant, now).await.unwrap();
    tx.insert_webhook_secret(uuid::Uuid::now_v7(), tenant, order_secret, now)
        .await
        .unwrap();
    tx.save_billing_settings(
        tenant,
        &mpanel_store::billing::BillingSettingsRecord {
            settings: json!({}),
            stripe_secret_key: Some("sk_test_ClearKey".into()),
            stripe_webhook_secret: Some("whsec_ClearHook".into()),
            updated_at: now,
        },
    )
    .await
    .unwrap();
    tx.begin_totp(tenant, alice.user_id, &seed, now)
        .await
        .unwrap();
    tx.confirm_totp(alice.user_id, 0, now).await.unwrap();
    tx.replace_recovery_codes(
        tenant,
        alice.user_id,
        &[mpanel_domain::identity::api_token::hash_secret(legacy_code)],
        now,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let clear_jwt = [5u8; 32];
    app.store
        .signing_key_or_insert("legacy-test", &clear_jwt, now)
        .await
        .unwrap();

    // The start-up pass (as `mpanel serve` runs it after the migrations).
    let report = app.store.seal_clear_secrets(now).await.unwrap();
    assert_eq!(report.order_webhook_secrets, 1);
    assert_eq!(report.stripe_secret_keys, 1);
    assert_eq!(report.stripe_webhook_secrets, 1);
    assert_eq!(report.totp_seeds, 1);
    assert_eq!(report.signing_keys, 1);
    assert_eq!(report.recovery_code_users, 1);
    // Once only.
    assert!(app.store.seal_clear_secrets(now).await.unwrap().is_empty());

    // The columns now hold sealed values.
    for (_, stored) in app.store.webhook_secrets(tenant, now).await.unwrap() {
        assert_sealed(&stored, order_secret);
    }
    let row = app.store.billing_settings(tenant).await.unwrap().unwrap();
    assert_sealed(
        row.stripe_secret_key.as_deref().unwrap(),
        "sk_test_ClearKey",
    );
    assert_sealed(
        row.stripe_webhook_secret.as_deref().unwrap(),
        "whsec_ClearHook",
    );
    let totp_row = app.store.totp(alice.user_id).await.unwrap().unwrap();
    assert_sealed(&totp_row.secret, &seed);
    let key = app
        .store
        .signing_key_or_insert("legacy-test", &[0u8; 32], now)
        .await
        .unwrap();
    let key = String::from_utf8(key).unwrap();
    assert!(key.starts_with("v1:"));
    let sb = SecretBox::from_base64(TEST_SECRETS_KEY).unwrap();
    assert_eq!(
        sb.open(
            &key,
            &mpanel_store::secret_box::binding("signing_key", "legacy-test")
        )
        .unwrap(),
        clear_jwt
    );

    // And they still work: a signed order, a Stripe webhook, a TOTP login.
    let hosting = product(
        &app,
        &admin,
        "web",
        "ACTIVE",
        "PUBLIC",
        json!({"type": "HOSTING", "dns_zone": true}),
    )
    .await;
    let res = app
        .post_order(
            "acme",
            order_secret,
            "old-1",
            &order(&hosting, "legacy.example", false),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    assert_eq!(
        stripe_webhook(&app, "acme", "whsec_ClearHook", "evt_old").await,
        200
    );
    app.clock.advance(Duration::seconds(30));
    assert_eq!(
        second_step(
            &app,
            "acme",
            "alice@acme.test",
            json!({"code": code(&app, &seed)})
        )
        .await,
        200
    );
    // The unkeyed recovery code was invalidated, and Alice was told.
    assert_eq!(
        second_step(
            &app,
            "acme",
            "alice@acme.test",
            json!({"recovery_code": legacy_code})
        )
        .await,
        422
    );
    let events = app
        .store
        .list_security_events(
            tenant,
            Some(alice.user_id),
            Some("RECOVERY_CODES_INVALIDATED"),
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
}
