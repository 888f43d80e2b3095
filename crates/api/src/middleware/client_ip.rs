//! The client's address, once per request: the peer, or behind a trusted
//! proxy the last `X-Forwarded-For` entry. Rate limiting and login
//! throttling count against it.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;

/// The address a request is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Whether to believe `X-Forwarded-For`.
#[derive(Debug, Clone, Copy)]
pub struct TrustForwardedFor(pub bool);

pub async fn client_ip(
    State(trust): State<TrustForwardedFor>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if !trust.0
        && let Some(peer) = peer
        && is_private(peer)
    {
        warn_once_about_proxy(peer);
    }
    if let Some(ip) = resolve(peer, req.headers(), trust.0) {
        req.extensions_mut().insert(ClientIp(ip));
    }
    next.run(req).await
}

/// A private (not loopback) peer is most likely a reverse proxy: without
/// `trust_forwarded_for`, every client behind it shares one address for
/// rate limits, login throttling and the IP allow-list.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private(),
        IpAddr::V6(v6) => v6.is_unique_local(),
    }
}

fn warn_once_about_proxy(peer: IpAddr) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            %peer,
            "requests arrive from a private address, likely a reverse proxy, and trust_forwarded_for is off: \
             every client behind it is counted as one for rate limits, login throttling and the IP allow-list"
        );
    }
}

fn resolve(peer: Option<IpAddr>, headers: &HeaderMap, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .next_back()
            .and_then(|s| s.trim().parse::<IpAddr>().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn forwarded_for_is_used_only_when_trusted() {
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.1.1.1, 203.0.113.9"),
        );
        assert_eq!(resolve(Some(peer), &headers, false), Some(peer));
        assert_eq!(
            resolve(Some(peer), &headers, true),
            Some("203.0.113.9".parse().unwrap())
        );
        assert_eq!(resolve(Some(peer), &HeaderMap::new(), true), Some(peer));
    }
}
