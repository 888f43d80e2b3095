//! The wire: TLS on a loopback listener, HTTP/1.1 through hyper, PVE's
//! response headers, the reason phrase in the status line, and
//! `Connection: close` on every answer ≥ 400.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::ext::ReasonPhrase;
use hyper::header::{CACHE_CONTROL, CONNECTION, CONTENT_TYPE, HeaderValue, PRAGMA, SERVER};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::envelope::Reply;
use crate::router::{self, Incoming as Req};
use crate::world::Shared;

pub async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(answer(&shared, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

async fn answer(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let incoming = Req {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        authorization: header("authorization"),
        content_type: header("content-type"),
        content_length: header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(body.len()),
        body,
    };
    to_response(router::handle(shared, incoming).await)
}

fn to_response(reply: Reply) -> Response<Full<Bytes>> {
    let body = reply
        .body
        .as_ref()
        .map(|b| Bytes::from(b.to_string()))
        .unwrap_or_default();
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = hyper::StatusCode::from_u16(reply.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(reason) = reply.reason {
        let first = reason.lines().next().unwrap_or("").to_owned();
        if let Ok(phrase) = ReasonPhrase::try_from(first) {
            res.extensions_mut().insert(phrase);
        }
    }
    let headers = res.headers_mut();
    headers.insert(SERVER, HeaderValue::from_static("pve-api-daemon/3.0"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=0"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    if reply.body.is_some() {
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=UTF-8"),
        );
    }
    if reply.status >= 400 {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    res
}
