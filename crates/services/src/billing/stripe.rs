//! A client for Stripe's PaymentIntents API (v1): create one under an
//! idempotency key, and read one back.
//!
//! Errors are sorted the way a retry loop needs them: [`StripeError::Api`]
//! is Stripe's answer and permanent (retrying changes nothing),
//! [`StripeError::Transient`] may succeed later *with the same idempotency
//! key*, and [`StripeError::Invalid`] is a request we refused to send.
//!
//! The secret key is only ever put in the `Authorization` header (marked
//! sensitive); it is never logged or put in an error.
//!
//! TLS: the workspace's `reqwest` is built without TLS (see
//! [`StripeClient::new`]), so this client speaks plain HTTP only, which is
//! what the tests' fake of Stripe serves.

use std::time::Duration;

use mpanel_domain::TenantId;
use mpanel_domain::billing::stripe::{stripe_amount, stripe_currency};
use mpanel_domain::catalog::Currency;
use serde::{Deserialize, Serialize};

/// Stripe's API, the default base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.stripe.com";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const TOTAL_TIMEOUT: Duration = Duration::from_secs(30);
/// Stripe accepts idempotency keys of up to 255 characters.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// Stripe.js's address and the CSP sources of a page that uses it
/// (<https://docs.stripe.com/security/guide#content-security-policy>).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeInBrowser {
    pub js_url: String,
    pub script_src: String,
    pub frame_src: String,
    pub connect_src: String,
}

#[derive(Debug, Clone)]
pub struct StripeClient {
    base_url: String,
    http: reqwest::Client,
}

/// What to charge. The amount is in our ISO minor units and is converted to
/// Stripe's with Stripe's rules (JPY as is, KWD in thousandths ending in 0,
/// ISK in hundredths, …); one that cannot be expressed is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentIntentRequest {
    pub amount_minor: i64,
    pub currency: Currency,
    pub invoice_id: String,
    pub tenant_id: TenantId,
    /// `cus_…`: required for an off-session charge.
    pub customer: Option<String>,
    /// `pm_…`: required for an off-session charge.
    pub payment_method: Option<String>,
    /// Charge a saved payment method now, without the customer
    /// (`off_session=true`, `confirm=true`); otherwise the intent waits for
    /// the customer to pay by card (`payment_method_types[]=card`: the
    /// console offers "pay by card", and a card is settled or declined at
    /// once, never left `processing` for days as a bank debit would be).
    pub off_session: bool,
}

/// The fields of Stripe's PaymentIntent object that we use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentIntent {
    /// `pi_…`
    pub id: String,
    /// For the browser (Stripe.js) to confirm the payment; not a secret key,
    /// but not to be logged either.
    pub client_secret: Option<String>,
    /// `requires_payment_method`, `requires_confirmation`, `requires_action`,
    /// `processing`, `requires_capture`, `canceled` or `succeeded`.
    pub status: String,
    /// In Stripe's units for `currency` (see the domain's `stripe_amount`).
    pub amount: i64,
    /// Lower-case ISO code.
    pub currency: String,
    /// What was actually collected, in Stripe's units.
    #[serde(default)]
    pub amount_received: i64,
    /// Ours on intents mPanel made (`invoice_id`, `tenant_id`).
    #[serde(default)]
    pub metadata: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// Stripe's own refusal (a 4xx other than 429): permanent. A card
    /// decline is a 402 with `kind` `card_error`, a `decline_code` and the
    /// PaymentIntent it concerned; an idempotency key reused with other
    /// parameters is a 400 `idempotency_error`. A 409 (`kind`
    /// `idempotency_error`, code `idempotency_key_in_use`) means a request
    /// with the same key is still running: it is reported here too, and a
    /// later retry with the same key is safe.
    #[error("Stripe refused the request (HTTP {status}{}): {message}", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
    Api {
        status: u16,
        /// Stripe's `error.code` (`card_declined`, `parameter_missing`, …).
        code: Option<String>,
        message: String,
        /// Stripe's `error.type` (`card_error`, `invalid_request_error`,
        /// `idempotency_error`, …).
        kind: Option<String>,
        /// Stripe's `error.decline_code` for card errors.
        decline_code: Option<String>,
        /// Stripe's `error.payment_intent`, sent with card errors.
        payment_intent: Option<Box<PaymentIntent>>,
    },
    /// A network failure, a timeout, a 429 or a 5xx: the outcome is unknown;
    /// retry later with the same idempotency key.
    #[error("Stripe is unavailable: {0}")]
    Transient(String),
    /// Not sent: a bad amount, key, identifier or base URL.
    #[error("invalid Stripe request: {0}")]
    Invalid(String),
}

impl StripeError {
    /// Whether the same request may succeed later.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

/// Stripe's error body: `{"error": {"type", "code", "message", …}}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<String>,
    message: Option<String>,
    decline_code: Option<String>,
    payment_intent: Option<PaymentIntent>,
}

impl StripeClient {
    /// A client for `base_url` (`DEFAULT_BASE_URL` in production; the fake's
    /// address in tests), with a 10 s connect and a 30 s total timeout.
    /// HTTPS uses rustls with ring and the bundled Mozilla roots.
    pub fn new(base_url: &str) -> Result<Self, StripeError> {
        let url = url::Url::parse(base_url)
            .map_err(|e| StripeError::Invalid(format!("base URL {base_url:?}: {e}")))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(StripeError::Invalid(format!(
                "base URL scheme {:?} is not https (or http for a local fake)",
                url.scheme()
            )));
        }
        crate::tls::install_crypto_provider();
        let tls = crate::tls::client_config()
            .map_err(|e| StripeError::Invalid(format!("TLS configuration: {e}")))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TOTAL_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mpanel/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| StripeError::Invalid(format!("HTTP client: {e}")))?;
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            http,
        })
    }

    /// What a card payment page needs of Stripe in the browser: where
    /// Stripe.js is loaded from, and the sources its CSP must allow.
    /// Stripe's own (js.stripe.com, its frames, api.stripe.com) when this
    /// client talks to Stripe; any other base (a fake in tests) serves
    /// both Stripe.js and the API itself.
    pub fn browser(&self) -> StripeInBrowser {
        if self.base_url == DEFAULT_BASE_URL {
            return StripeInBrowser {
                js_url: "https://js.stripe.com/v3/".into(),
                script_src: "https://js.stripe.com https://*.js.stripe.com".into(),
                frame_src: "https://js.stripe.com https://*.js.stripe.com https://hooks.stripe.com"
                    .into(),
                connect_src: "https://api.stripe.com".into(),
            };
        }
        let origin = url::Url::parse(&self.base_url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        StripeInBrowser {
            js_url: format!("{}/v3/", self.base_url),
            script_src: origin.clone(),
            frame_src: origin.clone(),
            connect_src: origin,
        }
    }

    /// `POST /v1/payment_intents` under `idempotency_key`: a retry with the
    /// same key and request returns the first intent, never a second one.
    pub async fn create_payment_intent(
        &self,
        secret_key: &str,
        idempotency_key: &str,
        req: &PaymentIntentRequest,
    ) -> Result<PaymentIntent, StripeError> {
        if idempotency_key.is_empty() || idempotency_key.len() > MAX_IDEMPOTENCY_KEY {
            return Err(StripeError::Invalid(format!(
                "an idempotency key has 1 to {MAX_IDEMPOTENCY_KEY} characters"
            )));
        }
        let body = form_body(req)?;
        self.post_form(secret_key, "/v1/payment_intents", idempotency_key, body)
            .await
    }

    /// A form-encoded `POST` to `path` under `idempotency_key`.
    async fn post_form(
        &self,
        secret_key: &str,
        path: &str,
        idempotency_key: &str,
        body: String,
    ) -> Result<PaymentIntent, StripeError> {
        let request = self
            .http
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(secret_key)
            .header("Idempotency-Key", idempotency_key)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body);
        send(request).await
    }

    /// `POST /v1/payment_intents/:id/cancel`: an intent no longer wanted
    /// (the amount due changed) can no longer be paid.
    pub async fn cancel_payment_intent(
        &self,
        secret_key: &str,
        id: &str,
    ) -> Result<PaymentIntent, StripeError> {
        check_intent_id(id)?;
        self.post_form(
            secret_key,
            &format!("/v1/payment_intents/{id}/cancel"),
            &format!("mpanel-cancel-{id}"),
            "cancellation_reason=abandoned".into(),
        )
        .await
    }

    /// `GET /v1/payment_intents/:id`.
    pub async fn retrieve_payment_intent(
        &self,
        secret_key: &str,
        id: &str,
    ) -> Result<PaymentIntent, StripeError> {
        check_intent_id(id)?;
        let request = self
            .http
            .get(format!("{}/v1/payment_intents/{id}", self.base_url))
            .bearer_auth(secret_key);
        send(request).await
    }
}

fn check_intent_id(id: &str) -> Result<(), StripeError> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(StripeError::Invalid(format!(
            "{id:?} is not a PaymentIntent id"
        )));
    }
    Ok(())
}

/// The form Stripe expects for `req`.
fn form_body(req: &PaymentIntentRequest) -> Result<String, StripeError> {
    let amount = stripe_amount(req.amount_minor, req.currency).map_err(StripeError::Invalid)?;
    if amount < 1 {
        return Err(StripeError::Invalid(format!(
            "the amount must be positive, got {amount}"
        )));
    }
    if req.off_session && (req.customer.is_none() || req.payment_method.is_none()) {
        return Err(StripeError::Invalid(
            "an off-session charge needs a customer and a payment method".into(),
        ));
    }
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("amount", &amount.to_string())
        .append_pair("currency", &stripe_currency(req.currency))
        .append_pair("metadata[invoice_id]", &req.invoice_id)
        .append_pair("metadata[tenant_id]", &req.tenant_id.to_string());
    if let Some(customer) = &req.customer {
        form.append_pair("customer", customer);
    }
    if let Some(pm) = &req.payment_method {
        form.append_pair("payment_method", pm);
    }
    if req.off_session {
        form.append_pair("off_session", "true")
            .append_pair("confirm", "true");
    } else {
        form.append_pair("payment_method_types[]", "card");
    }
    Ok(form.finish())
}

async fn send(request: reqwest::RequestBuilder) -> Result<PaymentIntent, StripeError> {
    // reqwest's errors name the URL (never the headers), so the key stays out.
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    let body = response.bytes().await.map_err(transport)?;
    classify(status.as_u16(), &body)
}

fn transport(e: reqwest::Error) -> StripeError {
    if e.is_builder() {
        // e.g. a secret key that is not a valid header value.
        StripeError::Invalid("the request could not be built".into())
    } else {
        StripeError::Transient(e.to_string())
    }
}

/// Sorts Stripe's answer into a PaymentIntent or one of our errors.
fn classify(status: u16, body: &[u8]) -> Result<PaymentIntent, StripeError> {
    match status {
        200..=299 => serde_json::from_slice(body).map_err(|e| {
            // The outcome is unknown: a retry with the same key will tell.
            StripeError::Transient(format!(
                "HTTP {status} with an unreadable PaymentIntent: {e}"
            ))
        }),
        429 | 500..=599 => Err(StripeError::Transient(format!(
            "HTTP {status}{}",
            serde_json::from_slice::<ErrorBody>(body)
                .ok()
                .and_then(|b| b.error.message)
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ))),
        _ => Err(match serde_json::from_slice::<ErrorBody>(body) {
            Ok(ErrorBody { error }) => StripeError::Api {
                status,
                code: error.code,
                message: error
                    .message
                    .unwrap_or_else(|| format!("HTTP {status} without a message")),
                kind: error.kind,
                decline_code: error.decline_code,
                payment_intent: error.payment_intent.map(Box::new),
            },
            Err(_) => StripeError::Api {
                status,
                code: None,
                message: format!("HTTP {status} without Stripe's error JSON"),
                kind: None,
                decline_code: None,
                payment_intent: None,
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn request(currency: &str, amount_minor: i64) -> PaymentIntentRequest {
        PaymentIntentRequest {
            amount_minor,
            currency: Currency::parse(currency).unwrap(),
            invoice_id: "inv_1".into(),
            tenant_id: TenantId::from_uuid(uuid::Uuid::nil()),
            customer: None,
            payment_method: None,
            off_session: false,
        }
    }

    #[test]
    fn stripe_js_comes_from_stripe_unless_a_stand_in_serves_the_api() {
        let real = StripeClient::new(DEFAULT_BASE_URL).unwrap().browser();
        assert_eq!(real.js_url, "https://js.stripe.com/v3/");
        assert_eq!(real.connect_src, "https://api.stripe.com");
        assert!(real.script_src.starts_with("https://js.stripe.com "));
        assert!(real.frame_src.contains("https://hooks.stripe.com"));
        let fake = StripeClient::new("http://127.0.0.1:9/").unwrap().browser();
        assert_eq!(fake.js_url, "http://127.0.0.1:9/v3/");
        assert_eq!(fake.script_src, "http://127.0.0.1:9");
    }

    #[test]
    fn the_form_carries_stripes_amount_and_lower_case_currency() {
        let body = form_body(&request("KWD", 1230)).unwrap();
        assert_eq!(
            body,
            "amount=1230&currency=kwd&metadata%5Binvoice_id%5D=inv_1\
             &metadata%5Btenant_id%5D=00000000-0000-0000-0000-000000000000\
             &payment_method_types%5B%5D=card"
        );
        assert!(matches!(
            form_body(&request("KWD", 1234)),
            Err(StripeError::Invalid(_))
        ));
        assert!(matches!(
            form_body(&request("EUR", 0)),
            Err(StripeError::Invalid(_))
        ));
        let mut off = request("EUR", 100);
        off.off_session = true;
        assert!(matches!(form_body(&off), Err(StripeError::Invalid(_))));
        off.customer = Some("cus_1".into());
        off.payment_method = Some("pm_1".into());
        assert!(
            form_body(&off)
                .unwrap()
                .ends_with("&customer=cus_1&payment_method=pm_1&off_session=true&confirm=true")
        );
    }

    #[test]
    fn answers_are_sorted_into_permanent_and_transient() {
        let pi = br#"{"id":"pi_1","object":"payment_intent","amount":5,"currency":"jpy",
                      "status":"succeeded","client_secret":null,"metadata":{}}"#;
        assert_eq!(classify(200, pi).unwrap().id, "pi_1");
        assert!(classify(200, b"<html>").unwrap_err().is_transient());
        for status in [429, 500, 502, 503] {
            assert!(classify(status, b"{}").unwrap_err().is_transient());
        }
        let declined = br#"{"error":{"type":"card_error","code":"card_declined",
            "decline_code":"generic_decline","message":"Your card was declined.",
            "payment_intent":{"id":"pi_2","amount":5,"currency":"eur",
                              "status":"requires_payment_method","client_secret":"s"}}}"#;
        match classify(402, declined).unwrap_err() {
            StripeError::Api {
                status: 402,
                code,
                kind,
                decline_code,
                payment_intent: Some(pi),
                ..
            } => {
                assert_eq!(code.as_deref(), Some("card_declined"));
                assert_eq!(kind.as_deref(), Some("card_error"));
                assert_eq!(decline_code.as_deref(), Some("generic_decline"));
                assert_eq!(pi.id, "pi_2");
            }
            other => panic!("{other:?}"),
        }
        let in_use = br#"{"error":{"type":"idempotency_error","code":"idempotency_key_in_use","message":"busy"}}"#;
        assert!(matches!(
            classify(409, in_use),
            Err(StripeError::Api { status: 409, .. })
        ));
        assert!(matches!(
            classify(404, b"not json"),
            Err(StripeError::Api {
                status: 404,
                code: None,
                ..
            })
        ));
    }

    #[test]
    fn stripe_is_reached_over_https_and_a_local_fake_over_http() {
        assert!(StripeClient::new("http://127.0.0.1:1/").is_ok());
        assert!(StripeClient::new(DEFAULT_BASE_URL).is_ok());
        assert!(StripeClient::new("ftp://x").is_err());
        assert!(StripeClient::new("not a url").is_err());
    }
}
