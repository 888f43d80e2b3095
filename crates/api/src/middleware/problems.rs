//! Every error response leaves as problem+json carrying the request's path
//! (`instance`) and id (`request_id`). Errors raised below the routes that
//! are not problems yet (a framework rejection, say) are replaced by the
//! problem for their status. (The console's HTML error pages pass as
//! they are.)

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::RequestId;
use crate::problem::{self, Problem};

/// Problem bodies are small; anything larger is not one of ours.
const MAX_PROBLEM_BYTES: usize = 64 * 1024;

pub async fn finish_problems(req: Request, next: Next) -> Response {
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    let path = req.uri().path().to_owned();
    // A person's browser outside the API gets an error page.
    let wants_page = !path.starts_with("/api/")
        && req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    // The console's error pages are pages, made for a person.
    let is_page = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if is_page {
        return res;
    }
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(problem::CONTENT_TYPE.as_bytes()));
    let (mut parts, body) = res.into_parts();
    let mut doc: Map<String, Value> = if is_problem {
        match to_bytes(body, MAX_PROBLEM_BYTES).await {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Problem::for_status(status).to_json()),
            Err(_) => Problem::for_status(status).to_json(),
        }
    } else {
        Problem::for_status(status).to_json()
    };
    if wants_page {
        let detail = doc
            .get("detail")
            .and_then(Value::as_str)
            .unwrap_or("That did not work.");
        return crate::console::error_page(status, detail);
    }
    doc.entry("instance").or_insert(json!(path));
    if let Some(id) = request_id {
        doc.entry("request_id").or_insert(json!(id));
    }
    let fresh = problem::response(status, &doc);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(problem::CONTENT_TYPE),
    );
    Response::from_parts(parts, Body::new(fresh.into_body()))
}
