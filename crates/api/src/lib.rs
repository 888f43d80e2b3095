//! mPanel's HTTP API: the middleware every request passes through, the
//! routes by feature, problem+json errors, metrics and the OpenAPI document.
#![forbid(unsafe_code)]

mod account_pages;
mod app;
pub mod caller;
mod console;
pub mod idempotency;
pub mod json;
mod middleware;
mod openapi;
pub mod problem;
pub mod query;
mod routes;
pub mod server;
mod settings;
mod signed_order;
mod spec_responses;
mod state;
pub mod telemetry;
mod webhook_body;

pub use app::{app, app_with};
pub use json::ApiJson;
pub use problem::Problem;
pub use server::serve;
pub use settings::{HttpSettings, RateLimit};
pub use state::{AppState, MetricsAccess};
