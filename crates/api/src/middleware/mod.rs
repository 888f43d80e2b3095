//! The layers every request passes through, outermost first:
//! request context (id, log, metrics) → security headers → problem
//! finishing → CORS → client address → rate limit → body limit → timeout
//! → no U+0000 in path or query → routes.

pub mod client_ip;
pub mod limits;
pub mod nul;
pub mod problems;
pub mod rate_limit;
pub mod request_context;
pub mod security_headers;

pub use client_ip::ClientIp;
pub use request_context::RequestId;
