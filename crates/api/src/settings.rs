//! The HTTP settings the binary's configuration hands to the API.

use std::time::Duration;

/// Requests allowed per client IP: a steady rate and a burst on top.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_minute: u32,
    pub burst: u32,
}

#[derive(Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Origins (`https://panel.example.com`) allowed to call the API from a
    /// browser; empty: none.
    pub cors_allowed_origins: Vec<String>,
    /// `None`: no rate limiting.
    pub rate_limit: Option<RateLimit>,
    /// Take the client IP from the last `X-Forwarded-For` entry (set this
    /// only behind a proxy that appends it).
    pub trust_forwarded_for: bool,
    pub body_limit_bytes: usize,
    pub request_timeout: Duration,
    /// Send `Strict-Transport-Security` (when TLS terminates in front).
    pub hsts: bool,
    /// When set, `GET /metrics` needs `Authorization: Bearer <token>`.
    pub metrics_token: Option<String>,
}

impl std::fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSettings")
            .field("cors_allowed_origins", &self.cors_allowed_origins)
            .field("rate_limit", &self.rate_limit)
            .field("trust_forwarded_for", &self.trust_forwarded_for)
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("request_timeout", &self.request_timeout)
            .field("hsts", &self.hsts)
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            cors_allowed_origins: Vec::new(),
            rate_limit: Some(RateLimit {
                per_minute: 1200,
                burst: 100,
            }),
            trust_forwarded_for: false,
            body_limit_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            hsts: false,
            metrics_token: None,
        }
    }
}
