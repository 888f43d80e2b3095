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
    if let Some(ip) = resolve(peer, req.headers(), trust.0) {
        req.extensions_mut().insert(ClientIp(ip));
    }
    next.run(req).await
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
