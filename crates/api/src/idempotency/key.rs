//! The `Idempotency-Key` header, checked once for every route.

use axum::http::{HeaderMap, StatusCode};

use crate::Problem;
use crate::problem::codes;

/// The header's name.
pub const HEADER: &str = "idempotency-key";

/// A client's key for one attempt at a change: 1 to 255 visible ASCII
/// characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    /// `raw` if it is a key.
    pub fn parse(raw: &str) -> Option<Self> {
        ((1..=Self::MAX_LEN).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic()))
            .then(|| Self(raw.to_owned()))
    }

    /// `raw` if it is a key that can be signed: no `.`, since an order's
    /// signature covers `"<t>.<key>.<body>"`, which must read one way only.
    pub fn parse_signable(raw: &str) -> Option<Self> {
        Self::parse(raw).filter(|k| !k.0.contains('.'))
    }

    /// The key of a route where it is optional: none sent is `None`; one
    /// sent that is not a key is a 400.
    pub fn optional(headers: &HeaderMap) -> Result<Option<Self>, Problem> {
        headers
            .get(HEADER)
            .map(|v| {
                v.to_str().ok().and_then(Self::parse).ok_or_else(|| {
                    Problem::new(
                        StatusCode::BAD_REQUEST,
                        codes::INVALID_IDEMPOTENCY_KEY,
                        "An Idempotency-Key is 1 to 255 visible ASCII characters.",
                    )
                })
            })
            .transpose()
    }

    /// The key of a signed order, which must carry one (400 without).
    pub fn signable(headers: &HeaderMap) -> Result<Self, Problem> {
        headers
            .get(HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(Self::parse_signable)
            .ok_or_else(|| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    codes::IDEMPOTENCY_KEY_REQUIRED,
                    "Send an Idempotency-Key header (1 to 255 visible characters, no '.') unique to this order.",
                )
            })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(IdempotencyKey::parse("order-1").is_some());
        assert!(IdempotencyKey::parse("a.b").is_some());
        assert!(IdempotencyKey::parse_signable("a.b").is_none());
        assert!(IdempotencyKey::parse("").is_none());
        assert!(IdempotencyKey::parse("with space").is_none());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_some());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_none());
    }
}
