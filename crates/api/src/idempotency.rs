//! `Idempotency-Key` on POSTs that make money or resources: the first
//! answer is stored with the change (in its transaction) and replayed to a
//! retry; the same key with another request is a 422, a request still
//! running a 409. Every idempotent route goes through [`begin`]: the JSON
//! routes through the [`Idempotent`] extractor and [`run`], the signed
//! order webhook through `SignedOrder` and `begin`/`release` itself.

mod key;

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mpanel_domain::TenantId;
use mpanel_services::Context;
use mpanel_services::idempotency::IdempotencyHold;
use mpanel_store::Store;
use mpanel_store::orders::IdempotencyStart;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

pub use key::{HEADER, IdempotencyKey};

use crate::Problem;
use crate::json::ApiJson;
use crate::problem::codes;

/// What a key was first used for: a retry must send the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHash([u8; 32]);

impl RequestHash {
    /// A JSON route's request: its method and path (so a key cannot be
    /// replayed against another route) and its body as parsed JSON.
    pub fn of_json(method: &str, path: &str, body: &serde_json::Value) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(method);
        hasher.update(b" ");
        hasher.update(path);
        hasher.update(b"\n");
        hasher.update(body.to_string().as_bytes());
        Self(hasher.finalize().into())
    }

    /// A signed webhook's request: its raw body, byte for byte (the bytes
    /// the signature covers).
    pub fn of_raw(body: &[u8]) -> Self {
        Self(Sha256::digest(body).into())
    }
}

/// How a request with a key goes on.
pub enum Start {
    /// Run it, holding the key: the use case stores its answer against it.
    Run(IdempotencyHold),
    /// A retry of a finished request: this is the first answer.
    Replay(Response),
}

/// Takes `key` for this request, or answers the retry, or refuses: a
/// request still running is a 409, another request under the same key a
/// 422.
pub async fn begin(
    store: &Store,
    now: OffsetDateTime,
    tenant: TenantId,
    key: &IdempotencyKey,
    hash: &RequestHash,
) -> Result<Start, Problem> {
    match store
        .start_idempotency(tenant, key.as_str(), &hash.0, now)
        .await?
    {
        IdempotencyStart::Fresh { held_since } => Ok(Start::Run(IdempotencyHold {
            key: key.as_str().to_owned(),
            held_since,
        })),
        IdempotencyStart::Replay { status, body } => Ok(Start::Replay(replay(status, body))),
        IdempotencyStart::InFlight => Err(in_flight(
            "A request with this Idempotency-Key is still being processed.",
        )),
        IdempotencyStart::Mismatch => Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::IDEMPOTENCY_KEY_REUSED,
            "This Idempotency-Key was used for a different request.",
        )),
    }
}

/// The stored first answer, marked as a replay.
fn replay(status: u16, body: String) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::HeaderName::from_static("idempotent-replayed"),
                HeaderValue::from_static("true"),
            ),
        ],
        body,
    )
        .into_response()
}

/// The 409 for a key another request holds.
pub fn in_flight(detail: &'static str) -> Problem {
    Problem::new(StatusCode::CONFLICT, codes::REQUEST_IN_FLIGHT, detail)
}

/// After a failed attempt nothing was made: a corrected retry may run.
pub async fn release(store: &Store, tenant: TenantId, hold: &IdempotencyHold) {
    if let Err(e) = store
        .abandon_idempotency(tenant, &hold.key, hold.held_since)
        .await
    {
        tracing::error!(error = %e, "cannot release an idempotency key");
    }
}

/// A JSON body and the request's optional idempotency key, hashed with the
/// method and path so a key cannot be replayed against another route.
pub struct Idempotent<T> {
    pub body: T,
    key: Option<IdempotencyKey>,
    hash: RequestHash,
}

impl<T, S> FromRequest<S> for Idempotent<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let key = IdempotencyKey::optional(req.headers())?;
        let (method, path) = (req.method().clone(), req.uri().path().to_owned());
        let ApiJson(raw) = ApiJson::<serde_json::Value>::from_request(req, state).await?;
        let hash = RequestHash::of_json(method.as_str(), &path, &raw);
        let body: T = crate::json::parse(raw.to_string().as_bytes())?;
        Ok(Self { body, key, hash })
    }
}

impl<T> Idempotent<T> {
    /// A console form under the key its page carried (a fresh one per page
    /// shown): a form sent twice is one action. The fields are hashed with
    /// the path as a JSON body's would be.
    pub fn of_form(key: &str, path: &str, fields: &serde_json::Value, body: T) -> Self {
        Self {
            body,
            key: IdempotencyKey::parse(key),
            hash: RequestHash::of_json("POST", path, fields),
        }
    }
}

/// Runs `op` under the request's key (if it sent one): a replay answers at
/// once; a success is a 201 with `op`'s answer; a failure releases the key.
pub async fn run<T, R, F, Fut>(
    cx: &Context,
    request: &Idempotent<T>,
    op: F,
) -> Result<Response, Problem>
where
    R: serde::Serialize,
    F: FnOnce(Option<IdempotencyHold>) -> Fut,
    Fut: std::future::Future<Output = Result<R, mpanel_services::ServiceError>>,
{
    let hold = match &request.key {
        None => None,
        Some(key) => match begin(&cx.store, cx.now(), cx.tenant_id(), key, &request.hash).await? {
            Start::Replay(response) => return Ok(response),
            Start::Run(hold) => Some(hold),
        },
    };
    match op(hold.clone()).await {
        Ok(out) => Ok((StatusCode::CREATED, axum::Json(out)).into_response()),
        Err(err) => {
            if let Some(hold) = &hold {
                release(&cx.store, cx.tenant_id(), hold).await;
            }
            Err(err.into())
        }
    }
}
