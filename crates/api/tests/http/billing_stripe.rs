//! Stripe: a PaymentIntent through the Stripe fake, and webhooks signed as
//! Stripe signs them: applied once, replays change nothing, out-of-order
//! deliveries end in the same state, disputes flag the invoice.

use serde_json::{Value, json};

use crate::billing::{billing_admin, customer, draft, get_invoice, issue, put_settings};
use crate::stripe_fake::signed_event;
use crate::support::TestApp;

const WHSEC: &str = "whsec_test_secret";

async fn deliver(app: &TestApp, event: &Value, at: i64) -> reqwest::Response {
    let (body, signature) = signed_event(WHSEC, at, event);
    app.client
        .post(app.url("/api/billing/stripe/webhook?tenant=acme"))
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap()
}

fn event(id: &str, kind: &str, object: Value) -> Value {
    json!({"id": id, "object": "event", "type": kind, "created": 1_795_251_600, "livemode": false,
           "data": {"object": object}})
}

#[tokio::test]
async fn a_payment_intent_then_stripes_webhooks_pay_refund_and_dispute_once() {
    let app = TestApp::start().await;
    let admin = billing_admin(&app, "acme").await;
    put_settings(
        &app,
        &admin,
        json!({"stripe_secret_key": "sk_test_abc", "stripe_webhook_secret": WHSEC}),
    )
    .await;
    let jane = customer(&app, &admin, "jane@example.de", "DE", None).await;
    let inv = draft(
        &app,
        &admin,
        json!({"customer_id": jane, "lines": [{"kind": "ITEM", "description": "Server", "quantity": "1", "unit_price": "49.90"}]}),
    )
    .await;
    let id = inv["id"].as_str().unwrap().to_owned();
    issue(&app, &admin, &id).await;

    // The intent: amount due in Stripe's units, keyed on invoice + attempt.
    let intent_path = format!("/api/billing/invoices/{id}/stripe/payment-intent");
    let res = app
        .post_as(&admin.access_token, &intent_path, json!({}))
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let intent: Value = res.json().await.unwrap();
    let pi = intent["payment_intent_id"].as_str().unwrap().to_owned();
    assert!(intent["client_secret"].as_str().unwrap().starts_with(&pi));
    let sent = app.stripe.requests();
    let create = sent
        .iter()
        .find(|r| r.path == "/v1/payment_intents")
        .unwrap();
    assert_eq!(create.param("amount"), Some("4990"));
    assert_eq!(create.param("currency"), Some("eur"));
    assert_eq!(create.param("metadata[invoice_id]"), Some(id.as_str()));
    assert_eq!(
        create.idempotency_key.as_deref(),
        Some(format!("mpanel-invoice-{id}-attempt-1-4990").as_str())
    );
    // Asking again: the same intent (Stripe replays the same key).
    let again: Value = app
        .post_as(&admin.access_token, &intent_path, json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["payment_intent_id"], pi);

    let now = app.clock_now().unix_timestamp();
    let charge = |refunded: i64| {
        json!({"id": "ch_1", "object": "charge", "payment_intent": pi, "amount": 4990,
               "amount_refunded": refunded, "currency": "eur"})
    };
    // A refund reported before the payment is known: retried later by Stripe.
    let early = event("evt_refund_1", "charge.refunded", charge(1000));
    let res = deliver(&app, &early, now).await;
    assert_eq!(res.status(), 503);

    // Signatures: stale, wrong and missing are refused and change nothing.
    let paid = event(
        "evt_paid",
        "payment_intent.succeeded",
        json!({"id": pi, "object": "payment_intent", "amount": 4990, "amount_received": 4990,
               "currency": "eur", "status": "succeeded", "metadata": {"invoice_id": id, "tenant_id": admin.tenant_id.to_string()}}),
    );
    assert_eq!(deliver(&app, &paid, now - 301).await.status(), 401);
    assert_eq!(deliver(&app, &paid, now + 301).await.status(), 401);
    let (body, _) = signed_event(WHSEC, now, &paid);
    let (_, forged) = signed_event("whsec_other", now, &paid);
    let res = app
        .client
        .post(app.url("/api/billing/stripe/webhook?tenant=acme"))
        .header("stripe-signature", forged)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(get_invoice(&app, &admin, &id).await["status"], "ISSUED");

    // Delivered, then delivered again: one payment.
    let res = deliver(&app, &paid, now).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["outcome"], "HANDLED");
    let res = deliver(&app, &paid, now).await;
    assert_eq!(res.json::<Value>().await.unwrap()["outcome"], "REPLAYED");
    let inv = get_invoice(&app, &admin, &id).await;
    assert_eq!(
        (&inv["status"], &inv["paid_minor"]),
        (&json!("PAID"), &json!(4990))
    );
    // A late failure of the same intent never undoes the success.
    let failed = event(
        "evt_failed",
        "payment_intent.payment_failed",
        json!({"id": pi, "object": "payment_intent", "amount": 4990, "currency": "eur", "status": "requires_payment_method"}),
    );
    assert_eq!(deliver(&app, &failed, now).await.status(), 200);
    assert_eq!(get_invoice(&app, &admin, &id).await["status"], "PAID");

    // Refunds are cumulative: 10.00, then 30.00 in all; the early 10.00
    // delivery arriving again, and a stale total, change nothing more.
    assert_eq!(deliver(&app, &early, now).await.status(), 200);
    let later = event("evt_refund_2", "charge.refunded", charge(3000));
    assert_eq!(deliver(&app, &later, now).await.status(), 200);
    let stale = event("evt_refund_0", "charge.refunded", charge(500));
    assert_eq!(deliver(&app, &stale, now).await.status(), 200);
    assert_eq!(
        deliver(&app, &later, now)
            .await
            .json::<Value>()
            .await
            .unwrap()["outcome"],
        "REPLAYED"
    );
    let inv = get_invoice(&app, &admin, &id).await;
    assert_eq!(
        (&inv["refunded_minor"], &inv["status"]),
        (&json!(3000), &json!("PAID"))
    );
    let moves: Value = app
        .get_as(
            &admin.access_token,
            &format!("/api/billing/invoices/{id}/payments"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(moves["payments"].as_array().unwrap().len(), 1);
    assert_eq!(moves["payments"][0]["status"], "PARTIALLY_REFUNDED");
    assert_eq!(moves["credit_notes"].as_array().unwrap().len(), 2);

    // A dispute flags the invoice and is a security event.
    let dispute = event(
        "evt_dispute",
        "charge.dispute.created",
        json!({"id": "dp_1", "object": "dispute", "charge": "ch_1", "payment_intent": pi,
               "amount": 1990, "currency": "eur", "reason": "fraudulent"}),
    );
    assert_eq!(deliver(&app, &dispute, now).await.status(), 200);
    assert_eq!(get_invoice(&app, &admin, &id).await["disputed"], true);
    assert!(
        app.security_events(admin.tenant_id)
            .await
            .contains(&"PAYMENT_DISPUTED".to_owned())
    );
    // Intents mPanel did not create (the marketing site's) are left alone.
    let foreign = event(
        "evt_foreign",
        "payment_intent.succeeded",
        json!({"id": "pi_site", "object": "payment_intent", "amount": 100, "amount_received": 100,
               "currency": "eur", "status": "succeeded", "metadata": {}}),
    );
    assert_eq!(
        deliver(&app, &foreign, now)
            .await
            .json::<Value>()
            .await
            .unwrap()["outcome"],
        "IGNORED"
    );
    let foreign_refund = event(
        "evt_foreign_refund",
        "charge.refunded",
        json!({"id": "ch_site", "object": "charge", "payment_intent": "pi_site", "amount": 100,
               "amount_refunded": 100, "currency": "eur"}),
    );
    assert_eq!(
        deliver(&app, &foreign_refund, now)
            .await
            .json::<Value>()
            .await
            .unwrap()["outcome"],
        "IGNORED"
    );
    // Unknown types are acknowledged and ignored.
    let other = event("evt_other", "customer.created", json!({"id": "cus_1"}));
    assert_eq!(
        deliver(&app, &other, now)
            .await
            .json::<Value>()
            .await
            .unwrap()["outcome"],
        "IGNORED"
    );
}

#[tokio::test]
async fn stripe_outages_are_a_retryable_503_and_a_paid_invoice_gets_no_intent() {
    let app = TestApp::start().await;
    let admin = billing_admin(&app, "acme").await;
    let jane = customer(&app, &admin, "jane@example.de", "DE", None).await;
    let inv = draft(
        &app,
        &admin,
        json!({"customer_id": jane, "lines": [{"kind": "ITEM", "description": "Server", "quantity": "1", "unit_price": "10.00"}]}),
    )
    .await;
    let id = inv["id"].as_str().unwrap().to_owned();
    issue(&app, &admin, &id).await;
    let path = format!("/api/billing/invoices/{id}/stripe/payment-intent");
    let res = app.post_as(&admin.access_token, &path, json!({})).await;
    assert_eq!(res.status(), 409, "Stripe is not set up yet");
    put_settings(&app, &admin, json!({"stripe_secret_key": "sk_test_abc"})).await;
    app.stripe.fail_next(1);
    let res = app.post_as(&admin.access_token, &path, json!({})).await;
    assert_eq!(res.status(), 503);
    let res = app.post_as(&admin.access_token, &path, json!({})).await;
    assert_eq!(res.status(), 201);
    app.post_as(
        &admin.access_token,
        &format!("/api/billing/invoices/{id}/pay"),
        json!({"amount_minor": 1000, "provider": "MANUAL"}),
    )
    .await;
    let res = app.post_as(&admin.access_token, &path, json!({})).await;
    assert_eq!(res.status(), 409);
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "invalid_transition"
    );
}

/// Stripe.js confirming `pi` with a test card, as the customer's browser
/// does.
async fn confirm_in_browser(app: &TestApp, intent: &Value, card: &str) -> u16 {
    let id = intent["payment_intent_id"].as_str().unwrap();
    let form = [
        ("key", "pk_test_abc"),
        ("client_secret", intent["client_secret"].as_str().unwrap()),
        ("payment_method", card),
    ];
    reqwest::Client::new()
        .post(format!(
            "{}/v1/payment_intents/{id}/confirm",
            app.stripe.base_url()
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).unwrap())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// One open intent per invoice: a declined card is tried again on the
/// same intent; when the amount due changes the old intent is canceled
/// (a tab left open cannot charge it); a payment going through stops a
/// second one.
#[tokio::test]
async fn an_invoice_keeps_one_open_intent_and_cancels_one_for_an_old_amount() {
    let app = TestApp::start().await;
    let admin = billing_admin(&app, "acme").await;
    put_settings(
        &app,
        &admin,
        json!({"stripe_secret_key": "sk_test_abc", "stripe_webhook_secret": WHSEC}),
    )
    .await;
    let jane = customer(&app, &admin, "jane@example.de", "DE", None).await;
    let inv = draft(
        &app,
        &admin,
        json!({"customer_id": jane, "lines": [{"kind": "ITEM", "description": "Server", "quantity": "1", "unit_price": "49.90"}]}),
    )
    .await;
    let id = inv["id"].as_str().unwrap().to_owned();
    issue(&app, &admin, &id).await;
    let intent_path = format!("/api/billing/invoices/{id}/stripe/payment-intent");
    let ask = || async {
        let res = app
            .post_as(&admin.access_token, &intent_path, json!({}))
            .await;
        let status = res.status().as_u16();
        (status, res.json::<Value>().await.unwrap())
    };
    let creates = || {
        app.stripe
            .requests()
            .iter()
            .filter(|r| r.path == "/v1/payment_intents")
            .count()
    };

    let (status, first) = ask().await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(
        confirm_in_browser(&app, &first, "pm_card_chargeDeclined").await,
        402
    );
    let (_, again) = ask().await;
    assert_eq!(
        again["payment_intent_id"], first["payment_intent_id"],
        "the declined one again"
    );
    assert_eq!(creates(), 1);

    // Part paid by bank transfer: the old intent is canceled, a new one
    // asks for the rest.
    let res = app
        .post_as(
            &admin.access_token,
            &format!("/api/billing/invoices/{id}/pay"),
            json!({"amount_minor": 990, "provider": "BANK_TRANSFER"}),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    let (status, second) = ask().await;
    assert_eq!(status, 201, "{second}");
    assert_ne!(second["payment_intent_id"], first["payment_intent_id"]);
    assert_eq!(second["amount_minor"], 4000);
    let old = app
        .stripe
        .intent(first["payment_intent_id"].as_str().unwrap())
        .unwrap();
    assert_eq!(old["status"], "canceled");
    assert_eq!(
        confirm_in_browser(&app, &first, "pm_card_visa").await,
        400,
        "the old tab cannot pay"
    );
    let sent = app.stripe.requests();
    let create = sent
        .iter()
        .rfind(|r| r.path == "/v1/payment_intents")
        .unwrap();
    assert_eq!(
        create.idempotency_key.as_deref(),
        Some(format!("mpanel-invoice-{id}-attempt-2-4000").as_str())
    );

    // Paid in the browser, Stripe's webhook not here yet: no second intent.
    assert_eq!(confirm_in_browser(&app, &second, "pm_card_visa").await, 200);
    let (status, problem) = ask().await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("going through"),
        "{problem}"
    );
    assert_eq!(creates(), 2);
    assert_eq!(
        get_invoice(&app, &admin, &id).await["status"],
        "PARTIALLY_PAID"
    );
}
