//! An order that says Stripe took the money is believed only when Stripe,
//! asked with the tenant's own key, shows that PaymentIntent succeeded for
//! the claimed amount and currency.

use serde_json::{Value, json};

use crate::billing::put_settings;
use crate::orders::{Shop, order, shop};
use crate::support::problem;

const KEY: &str = "sk_test_acme_account";

/// A PaymentIntent made at the fake as the marketing site makes one.
async fn intent(s: &Shop, key: &str, amount: i64, card: Option<&str>) -> String {
    intent_with(s, key, amount, card, &[]).await
}

async fn intent_with(
    s: &Shop,
    key: &str,
    amount: i64,
    card: Option<&str>,
    extra: &[(&str, &str)],
) -> String {
    let mut form = vec![
        ("amount", amount.to_string()),
        ("currency", "eur".to_owned()),
    ];
    form.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    if let Some(card) = card {
        form.push(("payment_method", card.to_owned()));
        form.push(("confirm", "true".to_owned()));
    }
    let res = reqwest::Client::new()
        .post(format!("{}/v1/payment_intents", s.app.stripe.base_url()))
        .bearer_auth(key)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&form)
                .finish(),
        )
        .send()
        .await
        .unwrap();
    let pi: Value = res.json().await.unwrap();
    // A declined card answers 402 with the intent inside the error.
    pi["id"]
        .as_str()
        .or(pi["error"]["payment_intent"]["id"].as_str())
        .unwrap()
        .to_owned()
}

fn stripe_order(s: &Shop, domain: &str, reference: &str) -> Value {
    let mut body = order(&s.hosting, domain, false);
    body["payment"] = json!({"status": "PAID", "provider": "STRIPE", "reference": reference, "amount_minor": 1500});
    body
}

#[tokio::test]
async fn a_stripe_payment_claim_counts_only_when_stripe_confirms_it() {
    let s = shop().await;
    let empty = s.footprint().await;
    // Without a Stripe key nothing can be confirmed.
    let paid = intent(&s, KEY, 1500, Some("pm_card_visa")).await;
    let res = s
        .app
        .post_order(
            "acme",
            &s.secret,
            "no-key",
            &stripe_order(&s, "a.example", &paid),
        )
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(problem(res).await["field"], "payment.provider");
    put_settings(&s.app, &s.admin, json!({"stripe_secret_key": KEY})).await;

    let refused = [
        // Invented, or another Stripe account's.
        ("pi_Invented000000000000", "payment.reference"),
        (
            &*intent(&s, "sk_test_someone_else", 1500, Some("pm_card_visa")).await,
            "payment.reference",
        ),
        // Not paid: no card yet, or the card was declined.
        (&*intent(&s, KEY, 1500, None).await, "payment.status"),
        (
            &*intent(&s, KEY, 1500, Some("pm_card_chargeDeclined")).await,
            "payment.status",
        ),
        // Paid, but for one of mPanel's own invoices.
        (
            &*intent_with(
                &s,
                KEY,
                1500,
                Some("pm_card_visa"),
                &[(
                    "metadata[invoice_id]",
                    "0190aaaa-0000-7000-8000-000000000000",
                )],
            )
            .await,
            "payment.reference",
        ),
        // Paid, but less than the order claims.
        (
            &*intent(&s, KEY, 100, Some("pm_card_visa")).await,
            "payment.amount_minor",
        ),
    ]
    .map(|(r, f)| (r.to_owned(), f));
    for (i, (reference, field)) in refused.iter().enumerate() {
        let res = s
            .app
            .post_order(
                "acme",
                &s.secret,
                &format!("bad-{i}"),
                &stripe_order(&s, &format!("bad{i}.example"), reference),
            )
            .await;
        assert_eq!(res.status(), 422, "{reference}");
        let p = problem(res).await;
        assert_eq!(p["field"], *field, "{reference}: {p}");
    }
    assert_eq!(s.footprint().await, empty, "a refused claim makes nothing");

    // Stripe unreachable: 503, nothing made, and the same key retried later
    // goes through.
    s.app.stripe.fail_next(1);
    let body = stripe_order(&s, "paid.example", &paid);
    let res = s.app.post_order("acme", &s.secret, "paid", &body).await;
    assert_eq!(res.status(), 503);
    assert_eq!(s.footprint().await, empty);
    let res = s.app.post_order("acme", &s.secret, "paid", &body).await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let placed: Value = res.json().await.unwrap();
    assert_eq!(placed["status"], "PAID");
}
