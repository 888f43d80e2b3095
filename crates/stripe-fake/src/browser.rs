//! `GET /v3/`: the Stripe.js a payment page loads, with the documented
//! surface the console uses (see the crate's documentation).

use axum::http::header;
use axum::response::IntoResponse;

pub(crate) async fn stripe_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("stripe.js"),
    )
}
