//! No text mPanel keeps may contain U+0000: PostgreSQL's `text` and
//! `jsonb` cannot hold it, so it would fail deep in a query (a 500, and on
//! SQLite a value the other engine could never restore). A path or query
//! string carrying `%00` is refused here, before any route; JSON bodies
//! are checked by `ApiJson` (`json::parse`).

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::Problem;
use crate::problem::codes;

/// `%00` decodes to U+0000 (a raw NUL cannot be in a URI at all).
fn has_nul(encoded: &str) -> bool {
    encoded.contains("%00")
}

pub async fn refuse_nul(req: Request, next: Next) -> Response {
    let uri = req.uri();
    if has_nul(uri.path()) {
        // No resource has such a name.
        return Problem::not_found("No such resource.").into_response();
    }
    if uri.query().is_some_and(has_nul) {
        return Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::INVALID_QUERY,
            "The query string is not valid: text may not contain U+0000.",
        )
        .into_response();
    }
    next.run(req).await
}
