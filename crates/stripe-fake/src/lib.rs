//! A fake of Stripe's v1 PaymentIntents API over real HTTP on a loopback
//! port, following Stripe's documented request and response shapes:
//! form-encoded bodies, `Authorization: Bearer sk_test_…`, errors as
//! `{"error": {"type", "code", "message", …}}`, and the idempotency layer
//! (<https://docs.stripe.com/api/idempotent_requests>): the status and body
//! of the first request under a key are saved once the endpoint starts
//! executing and replayed with `Idempotent-Replayed: true`; the same key
//! with other parameters or another endpoint is a 400 `idempotency_error`;
//! requests refused before execution (authentication, validation) save
//! nothing.
//!
//! Test payment methods: `pm_card_visa` and `pm_card_mastercard` succeed,
//! `pm_card_chargeDeclined` and `pm_card_chargeDeclinedInsufficientFunds`
//! are declined with a 402 `card_error`.
//!
//! Every request is recorded ([`StripeFake::requests`]); the next requests
//! can be made to fail ([`StripeFake::fail_next`]). Injected failures come
//! before the idempotency layer (as an outage in front of Stripe would), so
//! nothing is saved for them and a retry under the same key goes through.
//!
//! The browser's side, for the console's card payments: `GET /v3/` serves
//! a Stripe.js with the documented surface a payment page uses
//! (`Stripe(pk)`, `elements({clientSecret})`, `create("payment")`,
//! `mount`, `confirmPayment({elements, confirmParams: {return_url}})`
//! resolving to `{error}` or leaving for the return URL with
//! `payment_intent`, `payment_intent_client_secret` and `redirect_status`).
//! Its payment element is a card-number field taking Stripe's test cards
//! (4242 4242 4242 4242 and 5555 5555 5555 4444 succeed, 4000 0000 0000
//! 0002 and 4000 0000 0000 9995 are declined). It confirms through
//! `POST /v1/payment_intents/:id/confirm` authenticated as Stripe.js is:
//! the account's publishable key (`key`; an account's `pk_test_…` is its
//! `sk_test_…` with the prefix changed) and the intent's `client_secret`.
//! The API answers cross-origin (`Access-Control-Allow-Origin: *`) as
//! Stripe's does. `POST /v1/payment_intents/:id/cancel` cancels an intent
//! not yet paid (a paid one is refused with the intent in the error);
//! `payment_method_types[]` takes `card` only, and not beside
//! `automatic_payment_methods`.
//!
//! Webhooks: an account's endpoints ([`StripeFake::add_webhook_endpoint`])
//! get `payment_intent.succeeded` and `payment_intent.payment_failed`
//! after a confirmation, signed as Stripe signs them, delivered after the
//! answer and tried again with back-off on anything but a 2xx (Stripe
//! retries for three days; the fake five times within seconds). Every
//! attempt is recorded ([`StripeFake::deliveries`]).

// A test double: a poisoned lock or a port that cannot be bound is the
// test's failure, said by the panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One request as the fake saw it, and what it answered.
#[derive(Debug, Clone)]
pub struct FakeRequest {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub idempotency_key: Option<String>,
    pub content_type: Option<String>,
    /// The form body, decoded, in the order sent.
    pub params: Vec<(String, String)>,
    pub status: u16,
    /// Whether the answer was a replay of a saved one.
    pub replayed: bool,
}

impl FakeRequest {
    /// The value of form parameter `name` (the last one, if repeated).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An answer saved under an idempotency key.
#[derive(Clone)]
struct Saved {
    endpoint: String,
    params: Vec<(String, String)>,
    status: StatusCode,
    body: Value,
}

#[derive(Default)]
struct Inner {
    requests: Vec<FakeRequest>,
    /// By id, with the API key (the account) that made it: Stripe objects
    /// belong to one account, and another account's key gets a 404.
    intents: HashMap<String, (String, Value)>,
    /// By (API key, idempotency key): Stripe scopes keys to the account.
    saved: HashMap<(String, String), Saved>,
    failures: VecDeque<(StatusCode, Value)>,
    next_id: u64,
    /// By API key: where the account's events go, and their secrets.
    endpoints: HashMap<String, Vec<(String, String)>>,
    /// Events confirmed but not yet handed to the delivery task.
    outbox: Vec<(String, String, Value)>,
    deliveries: Vec<Delivery>,
}

impl Inner {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_Fake{:016}", self.next_id)
    }
}

/// One attempt at delivering an event to an endpoint.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub event_type: String,
    pub url: String,
    /// The endpoint's answer; 0 when it could not be reached.
    pub status: u16,
}

pub struct StripeFake {
    addr: SocketAddr,
    state: Arc<Mutex<Inner>>,
    server: JoinHandle<()>,
}

/// Starts the fake on a free loopback port.
pub async fn start() -> StripeFake {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let state = Arc::new(Mutex::new(Inner::default()));
    let app = Router::new()
        .route("/v3/", axum::routing::get(stripe_js))
        .fallback(handle)
        .with_state(state.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    StripeFake {
        addr,
        state,
        server,
    }
}

impl StripeFake {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<FakeRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The next `n` requests get a 500 `api_error`.
    pub fn fail_next(&self, n: usize) {
        let body = error_body(json!({
            "type": "api_error",
            "message": "An unknown error occurred",
        }));
        self.fail_next_with(n, 500, body);
    }

    /// The next `n` requests get `status` with `body`.
    pub fn fail_next_with(&self, n: usize, status: u16, body: Value) {
        let status = StatusCode::from_u16(status).unwrap();
        let mut inner = self.state.lock().unwrap();
        inner
            .failures
            .extend(std::iter::repeat_n((status, body), n));
    }

    /// Events of the account of `secret_key` go to `url`, signed with
    /// `signing_secret` (`whsec_…`), as an endpoint added in Stripe's
    /// dashboard.
    pub fn add_webhook_endpoint(&self, secret_key: &str, url: &str, signing_secret: &str) {
        self.state
            .lock()
            .unwrap()
            .endpoints
            .entry(secret_key.to_owned())
            .or_default()
            .push((url.to_owned(), signing_secret.to_owned()));
    }

    /// Every webhook delivery attempt so far, oldest first.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.lock().unwrap().deliveries.clone()
    }

    /// The PaymentIntent the fake holds under `id`, as Stripe would show it.
    pub fn intent(&self, id: &str) -> Option<Value> {
        self.state
            .lock()
            .unwrap()
            .intents
            .get(id)
            .map(|(_, pi)| pi.clone())
    }
}

impl Drop for StripeFake {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A webhook delivery as Stripe signs it: the JSON body, and its
/// `Stripe-Signature` header `t=<t>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
/// under the endpoint secret's bytes.
pub fn signed_event(secret: &str, t: i64, event: &Value) -> (String, String) {
    let body = serde_json::to_string(event).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (body, format!("t={t},v1={hex}"))
}

fn error_body(error: Value) -> Value {
    json!({ "error": error })
}

fn invalid_request(
    message: String,
    code: Option<&str>,
    param: Option<&str>,
) -> (StatusCode, Value) {
    let mut e = json!({ "type": "invalid_request_error", "message": message });
    if let Some(code) = code {
        e["code"] = json!(code);
        e["doc_url"] = json!(format!(
            "https://stripe.com/docs/error-codes/{}",
            code.replace('_', "-")
        ));
    }
    if let Some(param) = param {
        e["param"] = json!(param);
    }
    (StatusCode::BAD_REQUEST, error_body(e))
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn handle(
    State(state): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut record = FakeRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        authorization: header(&headers, "authorization"),
        idempotency_key: header(&headers, "idempotency-key"),
        content_type: header(&headers, "content-type"),
        params,
        status: 0,
        replayed: false,
    };
    let mut inner = state.lock().unwrap();
    let (status, body) = answer(&mut inner, &mut record);
    record.status = status.as_u16();
    let replayed = record.replayed;
    inner.requests.push(record);
    let request_id = inner.id("req");
    let events = std::mem::take(&mut inner.outbox);
    drop(inner);
    for (url, secret, event) in events {
        tokio::spawn(deliver(state.clone(), url, secret, event));
    }
    let mut response = (status, axum::Json(body)).into_response();
    let h = response.headers_mut();
    h.insert("request-id", request_id.parse().unwrap());
    h.insert("access-control-allow-origin", "*".parse().unwrap());
    if replayed {
        h.insert("idempotent-replayed", "true".parse().unwrap());
    }
    if status == StatusCode::UNAUTHORIZED {
        h.insert(
            "www-authenticate",
            "Bearer realm=\"Stripe\"".parse().unwrap(),
        );
    }
    response
}

fn answer(inner: &mut Inner, req: &mut FakeRequest) -> (StatusCode, Value) {
    if let Some(failure) = inner.failures.pop_front() {
        return failure;
    }
    // Stripe.js authenticates with the publishable key as `key`.
    let publishable = req
        .param("key")
        .filter(|_| req.authorization.is_none())
        .and_then(|k| k.strip_prefix("pk_test_"))
        .filter(|rest| !rest.is_empty())
        .map(|rest| format!("sk_test_{rest}"));
    let bearer = req
        .authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "));
    let key = match bearer {
        _ if publishable.is_some() => publishable.clone().unwrap_or_default(),
        Some(k) if k.starts_with("sk_test_") && k.len() > "sk_test_".len() => k.to_owned(),
        Some(k) => {
            let tail: String = k
                .chars()
                .rev()
                .take(4)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return (
                StatusCode::UNAUTHORIZED,
                error_body(json!({
                    "type": "invalid_request_error",
                    "message": format!("Invalid API Key provided: sk_test_****{tail}"),
                })),
            );
        }
        None => {
            return (
                StatusCode::UNAUTHORIZED,
                error_body(json!({
                    "type": "invalid_request_error",
                    "message": "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
                })),
            );
        }
    };
    let segments: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let confirming = matches!(segments.as_slice(), ["v1", "payment_intents", _, "confirm"]);
    if publishable.is_some() && !(confirming && req.method == "POST") {
        return (
            StatusCode::UNAUTHORIZED,
            error_body(json!({
                "type": "invalid_request_error",
                "message": "This API call cannot be made with a publishable API key. Please use a secret API key. You can find a list of your API keys at https://dashboard.stripe.com/account/apikeys.",
            })),
        );
    }
    match (req.method.as_str(), segments.as_slice()) {
        ("POST", ["v1", "payment_intents"]) => {
            let endpoint = format!("{} {}", req.method, req.path);
            let idem = req.idempotency_key.clone().map(|k| (key.clone(), k));
            let mut sorted = req.params.clone();
            sorted.sort();
            if let Some(saved) = idem.as_ref().and_then(|i| inner.saved.get(i)) {
                if saved.endpoint != endpoint || saved.params != sorted {
                    let k = idem.map(|(_, k)| k).unwrap_or_default();
                    return (
                        StatusCode::BAD_REQUEST,
                        error_body(json!({
                            "type": "idempotency_error",
                            "message": format!("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{k}' if you meant to execute a different request."),
                        })),
                    );
                }
                req.replayed = true;
                return (saved.status, saved.body.clone());
            }
            let params = match validate(&req.params) {
                Ok(p) => p,
                Err(refusal) => return refusal,
            };
            let answer = create_intent(inner, &key, params);
            if let Some(idem) = idem {
                inner.saved.insert(
                    idem,
                    Saved {
                        endpoint,
                        params: sorted,
                        status: answer.0,
                        body: answer.1.clone(),
                    },
                );
            }
            answer
        }
        ("POST", ["v1", "payment_intents", id, "confirm"]) => {
            let id = (*id).to_owned();
            confirm::confirm(inner, &key, &id, req)
        }
        ("POST", ["v1", "payment_intents", id, "cancel"]) => {
            let id = (*id).to_owned();
            confirm::cancel(inner, &key, &id, req)
        }
        ("GET", ["v1", "payment_intents", id]) => match inner.intents.get(*id) {
            Some((owner, pi)) if *owner == key => (StatusCode::OK, pi.clone()),
            _ => {
                let (_, body) = invalid_request(
                    format!("No such payment_intent: '{id}'"),
                    Some("resource_missing"),
                    Some("intent"),
                );
                (StatusCode::NOT_FOUND, body)
            }
        },
        _ => (
            StatusCode::NOT_FOUND,
            error_body(json!({
                "type": "invalid_request_error",
                "message": format!("Unrecognized request URL ({}: {}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.", req.method, req.path),
            })),
        ),
    }
}

/// A create request that passed validation.
struct Create {
    amount: i64,
    currency: String,
    metadata: BTreeMap<String, String>,
    customer: Option<String>,
    payment_method: Option<String>,
    confirm: bool,
    automatic_payment_methods: Option<bool>,
}

const ZERO_DECIMAL: &[&str] = &[
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
];
const THREE_DECIMAL: &[&str] = &["bhd", "jod", "kwd", "omr", "tnd"];
/// Two-decimal currencies the tests use; Stripe knows many more.
const TWO_DECIMAL: &[&str] = &[
    "aud", "cad", "chf", "czk", "dkk", "eur", "gbp", "huf", "isk", "nok", "pln", "sek", "twd",
    "usd",
];
const SUCCEEDING: &[&str] = &["pm_card_visa", "pm_card_mastercard"];
const DECLINING: &[(&str, &str, &str)] = &[
    (
        "pm_card_chargeDeclined",
        "generic_decline",
        "Your card was declined.",
    ),
    (
        "pm_card_chargeDeclinedInsufficientFunds",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
];

fn boolean(params: &HashMap<&str, &str>, name: &str) -> Result<Option<bool>, (StatusCode, Value)> {
    match params.get(name) {
        None => Ok(None),
        Some(&"true") => Ok(Some(true)),
        Some(&"false") => Ok(Some(false)),
        Some(v) => Err(invalid_request(
            format!("Invalid boolean: {v}"),
            Some("parameter_invalid_boolean"),
            Some(name),
        )),
    }
}

fn validate(raw: &[(String, String)]) -> Result<Create, (StatusCode, Value)> {
    let params: HashMap<&str, &str> = raw.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let known = |k: &str| {
        matches!(
            k,
            "amount"
                | "currency"
                | "customer"
                | "payment_method"
                | "confirm"
                | "off_session"
                | "automatic_payment_methods[enabled]"
                | "payment_method_types[]"
        ) || (k.starts_with("metadata[") && k.ends_with(']'))
    };
    if let Some(unknown) = params.keys().find(|k| !known(k)) {
        return Err(invalid_request(
            format!("Received unknown parameter: {unknown}"),
            Some("parameter_unknown"),
            Some(unknown),
        ));
    }
    let Some(amount) = params.get("amount") else {
        return Err(invalid_request(
            "Missing required param: amount.".into(),
            Some("parameter_missing"),
            Some("amount"),
        ));
    };
    let Ok(amount) = amount.parse::<i64>() else {
        return Err(invalid_request(
            format!("Invalid integer: {amount}"),
            Some("parameter_invalid_integer"),
            Some("amount"),
        ));
    };
    if amount < 1 {
        return Err(invalid_request(
            "This value must be greater than or equal to 1.".into(),
            Some("parameter_invalid_integer"),
            Some("amount"),
        ));
    }
    let Some(currency) = params.get("currency") else {
        return Err(invalid_request(
            "Missing required param: currency.".into(),
            Some("parameter_missing"),
            Some("currency"),
        ));
    };
    let currency = (*currency).to_owned();
    let c = currency.as_str();
    if !(ZERO_DECIMAL.contains(&c) || THREE_DECIMAL.contains(&c) || TWO_DECIMAL.contains(&c)) {
        return Err(invalid_request(
            format!("Invalid currency: {currency}. Stripe currently supports these currencies: …"),
            None,
            Some("currency"),
        ));
    }
    // Stripe's special cases (docs.stripe.com/currencies). The codes are the
    // fake's choice where Stripe's docs do not name one.
    if THREE_DECIMAL.contains(&c) && amount % 10 != 0 {
        return Err(invalid_request(
            format!("Invalid amount: {c} amounts must end in 0."),
            Some("amount_invalid"),
            Some("amount"),
        ));
    }
    if c == "isk" && amount % 100 != 0 {
        return Err(invalid_request(
            "Invalid amount. Currency ISK has become effectively zero-decimal and charged amounts must be evenly divisible by 100.".into(),
            Some("invalid_charge_amount_no_decimal_compatible"),
            Some("amount"),
        ));
    }
    let customer = params.get("customer").map(|s| (*s).to_owned());
    if let Some(c) = &customer
        && !c.starts_with("cus_")
    {
        return Err(invalid_request(
            format!("No such customer: '{c}'"),
            Some("resource_missing"),
            Some("customer"),
        ));
    }
    let payment_method = params.get("payment_method").map(|s| (*s).to_owned());
    if let Some(pm) = &payment_method
        && !SUCCEEDING.contains(&pm.as_str())
        && !DECLINING.iter().any(|(d, _, _)| d == pm)
    {
        return Err(invalid_request(
            format!("No such PaymentMethod: '{pm}'"),
            Some("resource_missing"),
            Some("payment_method"),
        ));
    }
    let confirm = boolean(&params, "confirm")?.unwrap_or(false);
    let off_session = boolean(&params, "off_session")?.unwrap_or(false);
    let automatic_payment_methods = boolean(&params, "automatic_payment_methods[enabled]")?;
    match params.get("payment_method_types[]") {
        Some(_) if automatic_payment_methods.is_some() => {
            return Err(invalid_request(
                "You may only specify one of these parameters: automatic_payment_methods, payment_method_types.".into(),
                None,
                Some("payment_method_types"),
            ));
        }
        Some(&kind) if kind != "card" => {
            return Err(invalid_request(
                format!("The payment method type \"{kind}\" is invalid. The fake knows only card."),
                Some("parameter_invalid_empty"),
                Some("payment_method_types"),
            ));
        }
        _ => {}
    }
    if off_session && !confirm {
        return Err(invalid_request(
            "off_session can only be set when confirm is true.".into(),
            Some("parameter_invalid_empty"),
            Some("off_session"),
        ));
    }
    if confirm && payment_method.is_none() {
        return Err(invalid_request(
            "You cannot confirm this PaymentIntent because it's missing a payment method.".into(),
            Some("payment_intent_unexpected_state"),
            None,
        ));
    }
    let metadata = params
        .iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix("metadata[")?.strip_suffix(']')?;
            Some((name.to_owned(), (*v).to_owned()))
        })
        .collect();
    Ok(Create {
        amount,
        currency,
        metadata,
        customer,
        payment_method,
        confirm,
        automatic_payment_methods,
    })
}

fn create_intent(inner: &mut Inner, key: &str, c: Create) -> (StatusCode, Value) {
    let id = inner.id("pi");
    let secret = inner.id("secret");
    let pm_id = c.payment_method.as_ref().map(|_| inner.id("pm"));
    let declined = c
        .payment_method
        .as_deref()
        .and_then(|pm| DECLINING.iter().find(|(d, _, _)| *d == pm));
    let charge = (c.confirm && c.payment_method.is_some()).then(|| inner.id("ch"));
    let status = match (&c.payment_method, c.confirm, declined) {
        (None, _, _) => "requires_payment_method",
        (Some(_), false, _) => "requires_confirmation",
        (Some(_), true, Some(_)) => "requires_payment_method",
        (Some(_), true, None) => "succeeded",
    };
    let mut pi = json!({
        "id": id,
        "object": "payment_intent",
        "amount": c.amount,
        "amount_capturable": 0,
        "amount_received": if status == "succeeded" { c.amount } else { 0 },
        "automatic_payment_methods": c.automatic_payment_methods.map(|e| json!({ "enabled": e })),
        "capture_method": "automatic_async",
        "client_secret": format!("{id}_{secret}"),
        "confirmation_method": "automatic",
        "created": 1_700_000_000 + i64::try_from(inner.next_id).unwrap(),
        "currency": c.currency,
        "customer": c.customer,
        "description": null,
        "last_payment_error": null,
        "latest_charge": charge,
        "livemode": false,
        "metadata": c.metadata,
        "payment_method": if declined.is_some() { None } else { pm_id.clone() },
        "payment_method_types": ["card"],
        "setup_future_usage": null,
        "status": status,
    });
    let answer = if let (true, Some((_, decline_code, message))) = (c.confirm, declined) {
        let error = json!({
            "type": "card_error",
            "code": "card_declined",
            "decline_code": decline_code,
            "message": message,
            "doc_url": "https://stripe.com/docs/error-codes/card-declined",
            "charge": charge,
            "payment_method": { "id": pm_id, "object": "payment_method", "type": "card" },
        });
        pi["last_payment_error"] = error.clone();
        let mut error = error;
        error["payment_intent"] = pi.clone();
        (StatusCode::PAYMENT_REQUIRED, error_body(error))
    } else {
        (StatusCode::OK, pi.clone())
    };
    inner.intents.insert(id, (key.to_owned(), pi));
    answer
}

mod browser;
mod confirm;

use browser::stripe_js;
use confirm::deliver;

#[cfg(test)]
mod tests;
