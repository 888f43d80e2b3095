//! Unknown addresses and methods.

use axum::http::{StatusCode, Uri};

use crate::Problem;

pub async fn not_found(uri: Uri) -> Problem {
    Problem::not_found(format!("There is nothing at {}.", uri.path()))
}

pub async fn method_not_allowed() -> Problem {
    Problem::for_status(StatusCode::METHOD_NOT_ALLOWED)
}
