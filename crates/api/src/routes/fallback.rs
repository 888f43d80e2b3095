//! Unknown addresses and methods.

use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::Problem;

/// A browser asking for a page outside the API gets the console's
/// not-found page; everyone else the problem.
pub async fn not_found(uri: Uri, headers: HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html && !uri.path().starts_with("/api/") {
        return crate::console::not_found_page();
    }
    Problem::not_found(format!("There is nothing at {}.", uri.path())).into_response()
}

pub async fn method_not_allowed() -> Problem {
    Problem::for_status(StatusCode::METHOD_NOT_ALLOWED)
}
