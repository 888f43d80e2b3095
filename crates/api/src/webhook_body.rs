//! The raw body of an unauthenticated webhook (orders, Stripe), read up to
//! a limit of its own, far below the API's general one: the sender is not
//! known until the body's MAC is checked, so the bytes it may make us read
//! and hash are bounded here.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use http_body_util::{BodyExt, Limited};

use crate::Problem;
use crate::problem::codes;

/// 256 KiB: an order of many items or a Stripe event fits many times over.
pub const WEBHOOK_BODY_LIMIT: usize = 256 * 1024;

/// The whole body, at most [`WEBHOOK_BODY_LIMIT`] bytes (else 413).
pub struct WebhookBody(pub Bytes);

fn too_large() -> Problem {
    Problem::for_status(StatusCode::PAYLOAD_TOO_LARGE).with("limit_bytes", WEBHOOK_BODY_LIMIT)
}

impl<S: Send + Sync> FromRequest<S> for WebhookBody {
    type Rejection = Problem;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Problem> {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > WEBHOOK_BODY_LIMIT as u64) {
            return Err(too_large());
        }
        let body: Body = req.into_body();
        match Limited::new(body, WEBHOOK_BODY_LIMIT).collect().await {
            Ok(collected) => Ok(Self(collected.to_bytes())),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Err(_) => Err(Problem::new(
                StatusCode::BAD_REQUEST,
                codes::UNREADABLE_BODY,
                "The request body could not be read.",
            )),
        }
    }
}
