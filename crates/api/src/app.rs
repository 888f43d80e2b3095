//! The router with every layer, in the order described in `middleware`.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::middleware::client_ip::{TrustForwardedFor, client_ip};
use crate::middleware::limits::{Limits, enforce_limits};
use crate::middleware::problems::finish_problems;
use crate::middleware::rate_limit::{Limiter, rate_limit};
use crate::middleware::request_context::{self, request_context};
use crate::middleware::security_headers::{Hsts, security_headers};
use crate::routes::fallback;
use crate::{AppState, HttpSettings, openapi};

/// The whole API.
pub fn app(state: AppState, settings: &HttpSettings) -> Router {
    app_with(state, settings, Router::new())
}

/// The whole API plus `extra` routes behind the same layers (tests use it
/// to reach the layers through routes of their own).
pub fn app_with(state: AppState, settings: &HttpSettings, extra: Router<AppState>) -> Router {
    let (routes, mut document) = openapi::routes().split_for_parts();
    crate::spec_responses::add_shared_responses(&mut document);
    routes
        .merge(openapi::docs(document))
        .merge(crate::account_pages::routes())
        .merge(crate::console::routes(
            state.clone(),
            crate::console::CookiePolicy {
                secure: settings.hsts,
            },
        ))
        .merge(extra)
        .fallback(fallback::not_found)
        .method_not_allowed_fallback(fallback::method_not_allowed)
        .layer(from_fn(crate::middleware::nul::refuse_nul))
        .layer(DefaultBodyLimit::max(settings.body_limit_bytes))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(from_fn_with_state(
            Limits {
                body_bytes: settings.body_limit_bytes,
                timeout: settings.request_timeout,
            },
            enforce_limits,
        ))
        .layer(from_fn_with_state(
            Limiter::new(settings.rate_limit),
            rate_limit,
        ))
        .layer(from_fn_with_state(
            TrustForwardedFor(settings.trust_forwarded_for),
            client_ip,
        ))
        .layer(cors(&settings.cors_allowed_origins))
        .layer(from_fn(finish_problems))
        .layer(from_fn_with_state(Hsts(settings.hsts), security_headers))
        .layer(from_fn(request_context))
        .with_state(state)
}

/// A handler that panicked: logged, answered as a bare 500.
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    tracing::error!(panic = %message, "handler panicked");
    crate::Problem::for_status(axum::http::StatusCode::INTERNAL_SERVER_ERROR).into_response()
}

/// CORS for the allow-listed origins only; with an empty list no response
/// carries `Access-Control-Allow-Origin`.
fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static(request_context::HEADER),
        ])
        .expose_headers([
            HeaderName::from_static(request_context::HEADER),
            header::RETRY_AFTER,
        ])
        .max_age(std::time::Duration::from_secs(600))
}
