//! The fake answers as Stripe documents.

use super::*;
use axum::http::HeaderMap;

const KEY: &str = "sk_test_fake123";

async fn post(
    fake: &StripeFake,
    key: Option<&str>,
    idem: Option<&str>,
    form: &[(&str, &str)],
) -> (u16, HeaderMap, Value) {
    let mut body = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in form {
        body.append_pair(k, v);
    }
    let mut req = reqwest::Client::new()
        .post(format!("{}/v1/payment_intents", fake.base_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.finish());
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    if let Some(idem) = idem {
        req = req.header("Idempotency-Key", idem);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.json().await.unwrap())
}

#[tokio::test]
async fn stripe_fake_wants_a_test_secret_key() {
    let fake = start().await;
    let form = [("amount", "100"), ("currency", "eur")];
    let (status, headers, body) = post(&fake, None, None, &form).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(headers.contains_key("request-id"));
    let (status, _, body) = post(&fake, Some("sk_live_nope"), None, &form).await;
    assert_eq!(status, 401);
    assert_eq!(
        body["error"]["message"],
        "Invalid API Key provided: sk_test_****nope"
    );
    let (status, _, body) = post(&fake, Some(KEY), None, &form).await;
    assert_eq!(status, 200);
    assert_eq!(body["object"], "payment_intent");
    assert_eq!(body["status"], "requires_payment_method");
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("pi_"));
    assert!(
        body["client_secret"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{id}_secret_"))
    );
    assert_eq!(fake.requests().len(), 3);
    assert_eq!(
        fake.requests()[2].authorization.as_deref(),
        Some("Bearer sk_test_fake123")
    );
}

#[tokio::test]
async fn stripe_fake_validates_amount_and_currency_and_saves_nothing_then() {
    let fake = start().await;
    for (form, param, code) in [
        (vec![("currency", "eur")], "amount", "parameter_missing"),
        (
            vec![("amount", "12.5"), ("currency", "eur")],
            "amount",
            "parameter_invalid_integer",
        ),
        (
            vec![("amount", "0"), ("currency", "eur")],
            "amount",
            "parameter_invalid_integer",
        ),
        (
            vec![("amount", "1234"), ("currency", "kwd")],
            "amount",
            "amount_invalid",
        ),
        (
            vec![("amount", "550"), ("currency", "isk")],
            "amount",
            "invalid_charge_amount_no_decimal_compatible",
        ),
        (vec![("amount", "100")], "currency", "parameter_missing"),
        (
            vec![("amount", "100"), ("currency", "eur"), ("colour", "red")],
            "colour",
            "parameter_unknown",
        ),
    ] {
        let (status, _, body) = post(&fake, Some(KEY), Some("k1"), &form).await;
        assert_eq!(status, 400, "{form:?}");
        assert_eq!(body["error"]["param"], param, "{form:?}");
        assert_eq!(body["error"]["code"], code, "{form:?}");
    }
    let (status, _, body) = post(
        &fake,
        Some(KEY),
        Some("k1"),
        &[("amount", "100"), ("currency", "EUR")],
    )
    .await;
    assert_eq!(status, 400, "Stripe wants lower-case codes");
    assert_eq!(body["error"]["param"], "currency");
    // None of the refusals was saved under k1.
    let (status, headers, _) = post(
        &fake,
        Some(KEY),
        Some("k1"),
        &[("amount", "100"), ("currency", "eur")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(!headers.contains_key("idempotent-replayed"));
}

#[tokio::test]
async fn stripe_fake_replays_and_refuses_reused_keys_like_stripe() {
    let fake = start().await;
    let form = [
        ("amount", "2000"),
        ("currency", "usd"),
        ("payment_method", "pm_card_visa"),
        ("confirm", "true"),
    ];
    let (s1, h1, first) = post(&fake, Some(KEY), Some("same"), &form).await;
    assert_eq!(s1, 200);
    assert_eq!(first["status"], "succeeded");
    assert_eq!(first["amount_received"], 2000);
    assert!(!h1.contains_key("idempotent-replayed"));
    let mut reordered = form;
    reordered.reverse();
    let (s2, h2, second) = post(&fake, Some(KEY), Some("same"), &reordered).await;
    assert_eq!(s2, 200);
    assert_eq!(second, first, "the exact same response");
    assert_eq!(h2["idempotent-replayed"], "true");
    let (s3, _, third) = post(
        &fake,
        Some(KEY),
        Some("same"),
        &[("amount", "2001"), ("currency", "usd")],
    )
    .await;
    assert_eq!(s3, 400);
    assert_eq!(third["error"]["type"], "idempotency_error");
    // Keys belong to an account: another key may use the same string.
    let (s4, _, other) = post(&fake, Some("sk_test_other"), Some("same"), &form).await;
    assert_eq!(s4, 200);
    assert_ne!(other["id"], first["id"]);
    let replays: Vec<bool> = fake.requests().iter().map(|r| r.replayed).collect();
    assert_eq!(replays, [false, true, false, false]);
}

#[tokio::test]
async fn stripe_fake_declines_test_cards_with_the_intent_in_the_error() {
    let fake = start().await;
    let form = [
        ("amount", "500"),
        ("currency", "jpy"),
        ("customer", "cus_1"),
        ("payment_method", "pm_card_chargeDeclined"),
        ("off_session", "true"),
        ("confirm", "true"),
    ];
    let (status, _, body) = post(&fake, Some(KEY), Some("d1"), &form).await;
    assert_eq!(status, 402);
    let e = &body["error"];
    assert_eq!(e["type"], "card_error");
    assert_eq!(e["code"], "card_declined");
    assert_eq!(e["decline_code"], "generic_decline");
    assert_eq!(e["payment_intent"]["status"], "requires_payment_method");
    let id = e["payment_intent"]["id"].as_str().unwrap();
    // The decline was saved: the retry replays it.
    let (status, headers, again) = post(&fake, Some(KEY), Some("d1"), &form).await;
    assert_eq!((status, &again), (402, &body));
    assert_eq!(headers["idempotent-replayed"], "true");
    // And the intent exists.
    let res = reqwest::Client::new()
        .get(format!("{}/v1/payment_intents/{id}", fake.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let pi: Value = res.json().await.unwrap();
    assert_eq!(pi["last_payment_error"]["code"], "card_declined");
    assert_eq!(fake.intent(id).unwrap(), pi);
    let res = reqwest::Client::new()
        .get(format!("{}/v1/payment_intents/pi_nope", fake.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let e: Value = res.json().await.unwrap();
    assert_eq!(e["error"]["code"], "resource_missing");
    // Another account's key does not see it: as on Stripe, a 404.
    let res = reqwest::Client::new()
        .get(format!("{}/v1/payment_intents/{id}", fake.base_url()))
        .bearer_auth("sk_test_another_account")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let e: Value = res.json().await.unwrap();
    assert_eq!(e["error"]["code"], "resource_missing");
}

#[tokio::test]
async fn stripe_fake_fails_on_demand_before_saving_anything() {
    let fake = start().await;
    fake.fail_next(2);
    let form = [("amount", "100"), ("currency", "eur")];
    for _ in 0..2 {
        let (status, _, body) = post(&fake, Some(KEY), Some("f1"), &form).await;
        assert_eq!(status, 500);
        assert_eq!(body["error"]["type"], "api_error");
    }
    let (status, headers, _) = post(&fake, Some(KEY), Some("f1"), &form).await;
    assert_eq!(status, 200);
    assert!(!headers.contains_key("idempotent-replayed"));
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 500, 200]);
}

#[test]
fn stripe_signed_events_verify_with_the_domain_check() {
    use mpanel_domain::billing::stripe::verify_signature;
    let event = json!({"id": "evt_1"});
    let (body, header) = signed_event("whsec_test_secret", 1_700_000_000, &event);
    assert_eq!(body, r#"{"id":"evt_1"}"#);
    // The same vector as the domain's test, computed with python3's hmac.
    assert_eq!(
        header,
        "t=1700000000,v1=248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a"
    );
    assert_eq!(
        verify_signature(
            "whsec_test_secret",
            Some(&header),
            body.as_bytes(),
            1_700_000_100
        ),
        Ok(())
    );
    assert!(
        verify_signature("whsec_other", Some(&header), body.as_bytes(), 1_700_000_000).is_err()
    );
}

async fn confirm(fake: &StripeFake, id: &str, form: &[(&str, &str)]) -> (u16, HeaderMap, Value) {
    let res = reqwest::Client::new()
        .post(format!(
            "{}/v1/payment_intents/{id}/confirm",
            fake.base_url()
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish(),
        )
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.json().await.unwrap())
}

/// A webhook endpoint that answers 503 to its first delivery, then 200,
/// and keeps what it got.
async fn endpoint() -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let got = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let keep = got.clone();
    let app = Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let keep = keep.clone();
            async move {
                let mut got = keep.lock().unwrap();
                let signature = header(&headers, "stripe-signature").unwrap_or_default();
                got.push((signature, body));
                if got.len() == 1 {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

#[tokio::test]
async fn stripe_fake_confirms_from_the_browser_and_delivers_signed_webhooks() {
    let fake = start().await;
    let (url, got) = endpoint().await;
    fake.add_webhook_endpoint(KEY, &url, "whsec_hook");
    let (_, _, pi) = post(
        &fake,
        Some(KEY),
        None,
        &[("amount", "1500"), ("currency", "eur")],
    )
    .await;
    let id = pi["id"].as_str().unwrap();
    let secret = pi["client_secret"].as_str().unwrap();
    let pk = KEY.replace("sk_test_", "pk_test_");

    // A publishable key creates nothing.
    let (status, _, body) = post(&fake, None, None, &[("key", &pk), ("amount", "1")]).await;
    assert_eq!(status, 401, "{body}");
    // The wrong client secret, another account's key: refused.
    let (status, _, body) = confirm(
        &fake,
        id,
        &[("key", &pk), ("client_secret", "pi_x_secret_y")],
    )
    .await;
    assert_eq!(
        (status, &body["error"]["param"]),
        (400, &json!("client_secret"))
    );
    let (status, _, _) = confirm(
        &fake,
        id,
        &[("key", "pk_test_other"), ("client_secret", secret)],
    )
    .await;
    assert_eq!(status, 404);

    // Declined, then paid; a paid intent is not confirmed again.
    let declined = [
        ("key", pk.as_str()),
        ("client_secret", secret),
        ("payment_method", "pm_card_chargeDeclined"),
    ];
    let (status, headers, body) = confirm(&fake, id, &declined).await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert_eq!(body["error"]["decline_code"], "generic_decline");
    let mut paying = declined;
    paying[2].1 = "pm_card_visa";
    let (status, _, body) = confirm(&fake, id, &paying).await;
    assert_eq!((status, &body["status"]), (200, &json!("succeeded")));
    assert_eq!(body["amount_received"], 1500);
    let (status, _, body) = confirm(&fake, id, &paying).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "payment_intent_unexpected_state");

    // Both events delivered, signed; the one first refused sent again.
    for _ in 0..100 {
        if fake.deliveries().iter().filter(|d| d.status == 200).count() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let deliveries = fake.deliveries();
    let statuses: Vec<u16> = deliveries.iter().map(|d| d.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        2,
        "{deliveries:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 503).count(),
        1,
        "{deliveries:?}"
    );
    let got = got.lock().unwrap().clone();
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let mut types = Vec::new();
    for (signature, body) in &got {
        mpanel_domain::billing::stripe::verify_signature(
            "whsec_hook",
            Some(signature),
            body.as_bytes(),
            now,
        )
        .unwrap();
        let event: Value = serde_json::from_str(body).unwrap();
        assert_eq!(event["data"]["object"]["id"], id);
        types.push(event["type"].as_str().unwrap().to_owned());
    }
    types.sort();
    types.dedup();
    assert_eq!(
        types,
        ["payment_intent.payment_failed", "payment_intent.succeeded"]
    );

    // Stripe.js, as a page loads it.
    let res = reqwest::get(format!("{}/v3/", fake.base_url()))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(res.text().await.unwrap().contains("confirmPayment"));
}
