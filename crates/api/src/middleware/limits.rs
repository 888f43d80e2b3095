//! Request body limit and request timeout, both answered as problem+json.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::Problem;
use crate::problem::codes;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub body_bytes: usize,
    pub timeout: Duration,
}

/// Refuses a declared body over the limit before reading it (a streamed
/// body is cut at the limit by the extractor), and answers 408 when the
/// request is not served within the timeout.
pub async fn enforce_limits(State(limits): State<Limits>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.body_bytes as u64) {
        return Problem::for_status(StatusCode::PAYLOAD_TOO_LARGE)
            .with("limit_bytes", limits.body_bytes)
            .into_response();
    }
    match tokio::time::timeout(limits.timeout, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            tracing::warn!(
                timeout_ms = limits.timeout.as_millis() as u64,
                "request timed out"
            );
            // Our slowness, not the client's: 503, which senders retry.
            let mut res = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                codes::REQUEST_TIMEOUT,
                "The request took too long; try again.",
            )
            .with("retry_after", 1)
            .into_response();
            res.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            res
        }
    }
}
