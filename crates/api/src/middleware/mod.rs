//! The layers every request passes through, outermost first:
//! request context (id, log, metrics) → security headers → problem
//! finishing → CORS → rate limit → body limit → timeout → routes.

pub mod limits;
pub mod problems;
pub mod rate_limit;
pub mod request_context;
pub mod security_headers;

pub use request_context::RequestId;
