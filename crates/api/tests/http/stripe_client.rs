//! `StripeClient` against the fake of Stripe: what goes over the wire, and
//! how each of Stripe's answers comes back.

use mpanel_domain::TenantId;
use mpanel_domain::catalog::Currency;
use mpanel_services::billing::stripe::{PaymentIntentRequest, StripeClient, StripeError};
use serde_json::json;

use crate::stripe_fake::{self, StripeFake};

const KEY: &str = "sk_test_client123";

fn request(currency: &str, amount_minor: i64) -> PaymentIntentRequest {
    PaymentIntentRequest {
        amount_minor,
        currency: Currency::parse(currency).unwrap(),
        invoice_id: "0192f0c1-0000-7000-8000-000000000001".into(),
        tenant_id: TenantId::new(),
        customer: None,
        payment_method: None,
        off_session: false,
    }
}

async fn client() -> (StripeFake, StripeClient) {
    let fake = stripe_fake::start().await;
    let client = StripeClient::new(&fake.base_url()).unwrap();
    (fake, client)
}

#[tokio::test]
async fn stripe_client_creates_an_intent_with_stripes_form() {
    let (fake, client) = client().await;
    let req = request("EUR", 1234);
    let pi = client
        .create_payment_intent(KEY, "invoice-1-attempt-1", &req)
        .await
        .unwrap();
    assert!(pi.id.starts_with("pi_"));
    assert_eq!(pi.status, "requires_payment_method");
    assert_eq!((pi.amount, pi.currency.as_str()), (1234, "eur"));
    assert!(pi.client_secret.unwrap().starts_with(&pi.id));

    let sent = &fake.requests()[0];
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("POST", "/v1/payment_intents")
    );
    assert_eq!(
        sent.authorization.as_deref(),
        Some("Bearer sk_test_client123")
    );
    assert_eq!(sent.idempotency_key.as_deref(), Some("invoice-1-attempt-1"));
    assert_eq!(
        sent.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(sent.param("amount"), Some("1234"));
    assert_eq!(sent.param("currency"), Some("eur"));
    assert_eq!(
        sent.param("metadata[invoice_id]"),
        Some("0192f0c1-0000-7000-8000-000000000001")
    );
    assert_eq!(
        sent.param("metadata[tenant_id]"),
        Some(req.tenant_id.to_string().as_str())
    );
    assert_eq!(sent.param("payment_method_types[]"), Some("card"));
    assert_eq!(sent.param("confirm"), None);

    // Read back, the intent carries our metadata.
    let again = client.retrieve_payment_intent(KEY, &pi.id).await.unwrap();
    assert_eq!(again.id, pi.id);
    let held = fake.intent(&pi.id).unwrap();
    assert_eq!(
        held["metadata"]["tenant_id"],
        json!(req.tenant_id.to_string())
    );
    let get = &fake.requests()[1];
    assert_eq!(get.method, "GET");
    assert_eq!(get.path, format!("/v1/payment_intents/{}", pi.id));
}

#[tokio::test]
async fn stripe_client_sends_amounts_in_stripes_units() {
    let (fake, client) = client().await;
    for (currency, minor, expected) in [
        ("EUR", 1234, "1234"),
        ("JPY", 500, "500"),
        ("KWD", 1230, "1230"),
        ("ISK", 5, "500"),
    ] {
        let pi = client
            .create_payment_intent(KEY, &format!("k-{currency}"), &request(currency, minor))
            .await
            .unwrap();
        assert_eq!(pi.amount.to_string(), expected, "{currency}");
        let sent = fake.requests().pop().unwrap();
        assert_eq!(sent.param("amount"), Some(expected), "{currency}");
        assert_eq!(
            sent.param("currency"),
            Some(currency.to_ascii_lowercase().as_str())
        );
    }
    // KWD 1.234 cannot be charged: refused before anything is sent.
    let before = fake.requests().len();
    let err = client
        .create_payment_intent(KEY, "k-kwd-bad", &request("KWD", 1234))
        .await
        .unwrap_err();
    assert!(matches!(err, StripeError::Invalid(_)), "{err:?}");
    assert_eq!(fake.requests().len(), before);
}

#[tokio::test]
async fn stripe_client_retries_under_one_key_get_one_intent() {
    let (fake, client) = client().await;
    let req = request("USD", 2000);
    let first = client.create_payment_intent(KEY, "k1", &req).await.unwrap();
    let second = client.create_payment_intent(KEY, "k1", &req).await.unwrap();
    assert_eq!(second, first);
    assert!(fake.requests()[1].replayed);

    let other = request("USD", 2500);
    match client.create_payment_intent(KEY, "k1", &other).await {
        Err(StripeError::Api {
            status: 400, kind, ..
        }) => assert_eq!(kind.as_deref(), Some("idempotency_error")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn stripe_client_reports_outages_as_transient_and_the_retry_succeeds() {
    let (fake, client) = client().await;
    let req = request("EUR", 990);
    fake.fail_next(1);
    let err = client
        .create_payment_intent(KEY, "k1", &req)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(!err.to_string().contains(KEY), "the key is never shown");
    fake.fail_next_with(
        1,
        429,
        json!({"error": {"type": "rate_limit_error", "message": "slow down"}}),
    );
    let err = client
        .create_payment_intent(KEY, "k1", &req)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    let pi = client.create_payment_intent(KEY, "k1", &req).await.unwrap();
    assert_eq!(pi.amount, 990);

    fake.fail_next_with(
        1,
        409,
        json!({"error": {"type": "idempotency_error", "code": "idempotency_key_in_use",
                         "message": "There is currently another in-progress request using this Idempotent Key."}}),
    );
    match client.create_payment_intent(KEY, "k2", &req).await {
        Err(StripeError::Api {
            status: 409, code, ..
        }) => {
            assert_eq!(code.as_deref(), Some("idempotency_key_in_use"));
        }
        other => panic!("{other:?}"),
    }

    // Nothing listens here any more: a network failure is transient too.
    let gone = StripeClient::new(&fake.base_url()).unwrap();
    drop(fake);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let err = gone
        .create_payment_intent(KEY, "k3", &req)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}

#[tokio::test]
async fn stripe_client_off_session_charges_succeed_or_decline() {
    let (fake, client) = client().await;
    let mut req = request("JPY", 500);
    req.off_session = true;
    req.customer = Some("cus_123".into());
    req.payment_method = Some("pm_card_visa".into());
    let pi = client.create_payment_intent(KEY, "ok", &req).await.unwrap();
    assert_eq!((pi.status.as_str(), pi.amount), ("succeeded", 500));
    let sent = fake.requests().pop().unwrap();
    assert_eq!(sent.param("off_session"), Some("true"));
    assert_eq!(sent.param("confirm"), Some("true"));
    assert_eq!(sent.param("customer"), Some("cus_123"));
    assert_eq!(sent.param("payment_method"), Some("pm_card_visa"));
    assert_eq!(sent.param("payment_method_types[]"), None);

    req.payment_method = Some("pm_card_chargeDeclined".into());
    match client.create_payment_intent(KEY, "declined", &req).await {
        Err(StripeError::Api {
            status: 402,
            code,
            kind,
            decline_code,
            payment_intent: Some(pi),
            ..
        }) => {
            assert_eq!(code.as_deref(), Some("card_declined"));
            assert_eq!(kind.as_deref(), Some("card_error"));
            assert_eq!(decline_code.as_deref(), Some("generic_decline"));
            assert_eq!(pi.status, "requires_payment_method");
            let held = client.retrieve_payment_intent(KEY, &pi.id).await.unwrap();
            assert_eq!(held.status, "requires_payment_method");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn stripe_client_surfaces_stripes_refusals() {
    let (_fake, client) = client().await;
    match client.retrieve_payment_intent(KEY, "pi_missing").await {
        Err(StripeError::Api {
            status: 404, code, ..
        }) => {
            assert_eq!(code.as_deref(), Some("resource_missing"));
        }
        other => panic!("{other:?}"),
    }
    match client
        .create_payment_intent("sk_test_", "k", &request("EUR", 100))
        .await
    {
        Err(StripeError::Api { status: 401, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        client.retrieve_payment_intent(KEY, "../v1/charges").await,
        Err(StripeError::Invalid(_))
    ));
}
