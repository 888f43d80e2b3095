//! `Idempotency-Key` on POSTs that move money: the first answer is stored
//! with the change (in its transaction) and replayed to a retry; the same
//! key with another request is a 422, a request still running a 409.

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mpanel_domain::TenantId;
use mpanel_services::idempotency::IdempotencyHold;
use mpanel_store::orders::IdempotencyStart;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::json::ApiJson;
use crate::problem::codes;
use crate::{AppState, Problem};

/// A JSON body and the request's optional idempotency key, hashed with the
/// method and path so a key cannot be replayed against another route.
pub struct Idempotent<T> {
    pub body: T,
    key: Option<String>,
    hash: Vec<u8>,
}

impl<T, S> FromRequest<S> for Idempotent<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let key = match req.headers().get("idempotency-key") {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .filter(|k| {
                        (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic())
                    })
                    .ok_or_else(|| {
                        Problem::new(
                            StatusCode::BAD_REQUEST,
                            codes::INVALID_IDEMPOTENCY_KEY,
                            "An Idempotency-Key is 1 to 255 visible ASCII characters.",
                        )
                    })?
                    .to_owned(),
            ),
        };
        let mut hasher = Sha256::new();
        hasher.update(req.method().as_str());
        hasher.update(b" ");
        hasher.update(req.uri().path());
        hasher.update(b"\n");
        let ApiJson(raw) = ApiJson::<serde_json::Value>::from_request(req, state).await?;
        hasher.update(raw.to_string().as_bytes());
        let body: T = crate::json::parse(raw.to_string().as_bytes())?;
        Ok(Self {
            body,
            key,
            hash: hasher.finalize().to_vec(),
        })
    }
}

/// How the request goes on.
pub enum Start {
    /// Run it, holding the key (if one was sent).
    Run(Option<IdempotencyHold>),
    /// A retry: this is the first answer.
    Replay(Response),
}

impl<T> Idempotent<T> {
    pub async fn start(&self, state: &AppState, tenant: TenantId) -> Result<Start, Problem> {
        let Some(key) = &self.key else {
            return Ok(Start::Run(None));
        };
        let now = state.clock.now();
        match state
            .store
            .start_idempotency(tenant, key, &self.hash, now)
            .await?
        {
            IdempotencyStart::Fresh { held_since } => Ok(Start::Run(Some(IdempotencyHold {
                key: key.clone(),
                held_since,
            }))),
            IdempotencyStart::Replay { status, body } => Ok(Start::Replay(
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
                    .into_response(),
            )),
            IdempotencyStart::InFlight => Err(Problem::new(
                StatusCode::CONFLICT,
                codes::REQUEST_IN_FLIGHT,
                "A request with this Idempotency-Key is still being processed.",
            )),
            IdempotencyStart::Mismatch => Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                codes::IDEMPOTENCY_KEY_REUSED,
                "This Idempotency-Key was used for a different request.",
            )),
        }
    }
}

/// After a failed attempt nothing was made: a corrected retry may run.
pub async fn release(state: &AppState, tenant: TenantId, hold: Option<&IdempotencyHold>) {
    if let Some(hold) = hold
        && let Err(e) = state
            .store
            .abandon_idempotency(tenant, &hold.key, hold.held_since)
            .await
    {
        tracing::error!(error = %e, "cannot release an idempotency key");
    }
}

/// Runs `op` under the request's key: a replay answers at once; a failure
/// releases the key.
pub async fn run<T, R, F, Fut>(
    state: &AppState,
    tenant: TenantId,
    request: &Idempotent<T>,
    op: F,
) -> Result<Response, Problem>
where
    R: serde::Serialize,
    F: FnOnce(Option<IdempotencyHold>) -> Fut,
    Fut: std::future::Future<Output = Result<R, mpanel_services::ServiceError>>,
{
    let hold = match request.start(state, tenant).await? {
        Start::Replay(response) => return Ok(response),
        Start::Run(hold) => hold,
    };
    match op(hold.clone()).await {
        Ok(out) => Ok((StatusCode::CREATED, axum::Json(out)).into_response()),
        Err(err) => {
            release(state, tenant, hold.as_ref()).await;
            Err(err.into())
        }
    }
}
