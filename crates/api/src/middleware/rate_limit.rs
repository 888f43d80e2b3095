//! Rate limiting per client IP (GCRA, via `governor`).
//!
//! The counters live in this process's memory: the one piece of state a
//! second node does not share, so behind a load balancer each node allows
//! the configured rate. Health, readiness and metrics are not limited, so
//! probes never starve.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::client_ip::ClientIp;
use crate::problem::codes;
use crate::{Problem, RateLimit};

/// `/api/ready` is not exempt: it asks the database, so an unauthenticated
/// caller must not be able to do it without bound (a load balancer's
/// polling stays far below any sensible limit).
const EXEMPT: &[&str] = &["/api/health", "/metrics"];
/// Forget idle clients once this many are tracked.
const MAX_TRACKED: usize = 100_000;

#[derive(Clone)]
pub struct Limiter {
    limiter: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
}

impl Limiter {
    pub fn new(limit: Option<RateLimit>) -> Self {
        let limiter = limit.and_then(|l| {
            let per_minute = NonZeroU32::new(l.per_minute)?;
            let burst = NonZeroU32::new(l.burst.max(1))?;
            Some(Arc::new(RateLimiter::keyed(
                Quota::per_minute(per_minute).allow_burst(burst),
            )))
        });
        Self { limiter }
    }
}

pub async fn rate_limit(State(limiter): State<Limiter>, req: Request, next: Next) -> Response {
    let Some(rl) = &limiter.limiter else {
        return next.run(req).await;
    };
    if EXEMPT.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let Some(ClientIp(ip)) = req.extensions().get::<ClientIp>().copied() else {
        return next.run(req).await;
    };
    if rl.len() > MAX_TRACKED {
        rl.retain_recent();
    }
    match rl.check_key(&ip) {
        Ok(()) => next.run(req).await,
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let secs = secs.max(1);
            let mut res = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                codes::RATE_LIMITED,
                format!("Too many requests from this address; retry in {secs} s."),
            )
            .with("retry_after", secs)
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            res
        }
    }
}
