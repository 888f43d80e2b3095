//! Confirming a PaymentIntent (`POST /v1/payment_intents/:id/confirm`), as
//! Stripe.js does from the customer's browser, and the webhook events that
//! follow it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{
    DECLINING, Delivery, FakeRequest, Inner, SUCCEEDING, error_body, invalid_request, signed_event,
};

/// Attempts per delivery, and the first wait between them (doubled each
/// time).
const ATTEMPTS: u32 = 5;
const FIRST_WAIT: Duration = Duration::from_millis(200);

fn missing(id: &str) -> (StatusCode, Value) {
    let (_, body) = invalid_request(
        format!("No such payment_intent: '{id}'"),
        Some("resource_missing"),
        Some("intent"),
    );
    (StatusCode::NOT_FOUND, body)
}

/// The intent `id` of the account of `key` (another account's is not
/// there, as on Stripe).
fn owned_intent(inner: &Inner, key: &str, id: &str) -> Option<Value> {
    inner
        .intents
        .get(id)
        .filter(|(owner, _)| owner == key)
        .map(|(_, pi)| pi.clone())
}

pub(crate) fn confirm(
    inner: &mut Inner,
    key: &str,
    id: &str,
    req: &FakeRequest,
) -> (StatusCode, Value) {
    let Some(mut pi) = owned_intent(inner, key, id) else {
        return missing(id);
    };
    let by_browser = req.authorization.is_none();
    if by_browser && req.param("client_secret") != pi["client_secret"].as_str() {
        return invalid_request(
            "The client_secret provided does not match the client_secret associated with the PaymentIntent.".into(),
            None,
            Some("client_secret"),
        );
    }
    let status = pi["status"].as_str().unwrap_or_default().to_owned();
    if !matches!(
        status.as_str(),
        "requires_payment_method" | "requires_confirmation"
    ) {
        let (_, mut body) = invalid_request(
            format!(
                "You cannot confirm this PaymentIntent because it has a status of {status}. Only a PaymentIntent with one of the following statuses may be confirmed: requires_confirmation, requires_payment_method, requires_action."
            ),
            Some("payment_intent_unexpected_state"),
            None,
        );
        body["error"]["payment_intent"] = pi;
        return (StatusCode::BAD_REQUEST, body);
    }
    let Some(method) = req.param("payment_method").map(str::to_owned) else {
        return invalid_request(
            "You cannot confirm this PaymentIntent because it's missing a payment method. To confirm the PaymentIntent with a payment method, pass payment_method.".into(),
            Some("payment_intent_unexpected_state"),
            Some("payment_method"),
        );
    };
    let declined = DECLINING.iter().find(|(pm, _, _)| *pm == method);
    if declined.is_none() && !SUCCEEDING.contains(&method.as_str()) {
        return invalid_request(
            format!("No such PaymentMethod: '{method}'"),
            Some("resource_missing"),
            Some("payment_method"),
        );
    }
    let charge = inner.id("ch");
    let pm_id = inner.id("pm");
    pi["latest_charge"] = json!(charge);
    let answer = match declined {
        Some((_, decline_code, message)) => {
            let error = json!({
                "type": "card_error",
                "code": "card_declined",
                "decline_code": decline_code,
                "message": message,
                "doc_url": "https://stripe.com/docs/error-codes/card-declined",
                "charge": charge,
                "payment_method": { "id": pm_id, "object": "payment_method", "type": "card" },
            });
            pi["status"] = json!("requires_payment_method");
            pi["payment_method"] = Value::Null;
            pi["last_payment_error"] = error.clone();
            let mut error = error;
            error["payment_intent"] = pi.clone();
            (StatusCode::PAYMENT_REQUIRED, error_body(error))
        }
        None => {
            pi["status"] = json!("succeeded");
            pi["amount_received"] = pi["amount"].clone();
            pi["payment_method"] = json!(pm_id);
            pi["last_payment_error"] = Value::Null;
            (StatusCode::OK, pi.clone())
        }
    };
    let event_type = if declined.is_some() {
        "payment_intent.payment_failed"
    } else {
        "payment_intent.succeeded"
    };
    queue_event(inner, key, event_type, &pi);
    inner.intents.insert(id.to_owned(), (key.to_owned(), pi));
    answer
}

/// `POST /v1/payment_intents/:id/cancel`: an intent not yet paid is
/// canceled (`payment_intent.canceled` follows); any other is refused
/// with the intent in the error, as Stripe does.
pub(crate) fn cancel(
    inner: &mut Inner,
    key: &str,
    id: &str,
    req: &FakeRequest,
) -> (StatusCode, Value) {
    let Some(mut pi) = owned_intent(inner, key, id) else {
        return missing(id);
    };
    let status = pi["status"].as_str().unwrap_or_default().to_owned();
    if !matches!(
        status.as_str(),
        "requires_payment_method"
            | "requires_capture"
            | "requires_confirmation"
            | "requires_action"
            | "processing"
    ) {
        let (_, mut body) = invalid_request(
            format!(
                "You cannot cancel this PaymentIntent because it has a status of {status}. Only a PaymentIntent with one of the following statuses may be canceled: requires_payment_method, requires_capture, requires_confirmation, requires_action, processing."
            ),
            Some("payment_intent_unexpected_state"),
            None,
        );
        body["error"]["payment_intent"] = pi;
        return (StatusCode::BAD_REQUEST, body);
    }
    pi["status"] = json!("canceled");
    pi["canceled_at"] = json!(unix_now());
    pi["cancellation_reason"] = json!(req.param("cancellation_reason"));
    queue_event(inner, key, "payment_intent.canceled", &pi);
    inner
        .intents
        .insert(id.to_owned(), (key.to_owned(), pi.clone()));
    (StatusCode::OK, pi)
}

/// Queues `kind` about `pi` for each of the account's endpoints.
fn queue_event(inner: &mut Inner, key: &str, kind: &str, pi: &Value) {
    let event = json!({
        "id": inner.id("evt"),
        "object": "event",
        "api_version": "2024-06-20",
        "created": unix_now(),
        "livemode": false,
        "type": kind,
        "data": { "object": pi },
    });
    for (url, secret) in inner.endpoints.get(key).cloned().unwrap_or_default() {
        inner.outbox.push((url, secret, event.clone()));
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// Sends `event` to `url` as Stripe does: signed at the moment of each
/// attempt, tried again with back-off until a 2xx.
pub(crate) async fn deliver(state: Arc<Mutex<Inner>>, url: String, secret: String, event: Value) {
    let client = reqwest::Client::new();
    let event_type = event["type"].as_str().unwrap_or_default().to_owned();
    let mut wait = FIRST_WAIT;
    for _ in 0..ATTEMPTS {
        let (body, signature) = signed_event(&secret, unix_now(), &event);
        let status = client
            .post(&url)
            .header("content-type", "application/json; charset=utf-8")
            .header("stripe-signature", signature)
            .body(body)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        state.lock().unwrap().deliveries.push(Delivery {
            event_type: event_type.clone(),
            url: url.clone(),
            status,
        });
        if (200..300).contains(&status) {
            return;
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
}
