//! Serving HTTP/1.1 with graceful shutdown: on the signal, stop accepting,
//! let in-flight requests finish within the grace period, then return.
//!
//! Each connection is served by hyper directly (not `axum::serve`) so that
//! it has a header read timeout: a client that sends its request headers
//! a byte at a time, or opens a connection and says nothing, is cut off
//! after [`HEADER_READ_TIMEOUT`] instead of holding the connection (and a
//! file descriptor) for ever. Every connection is its own task, so a
//! client that never reads its response holds only its own.
//!
//! hyper runs that timer from the moment it waits for a request's head,
//! so it is also how long a kept-alive connection may sit idle: 75 s, as
//! nginx's `keepalive_timeout`, longer than a load balancer's usual 60 s
//! idle timeout (a backend closing first makes the balancer's next request
//! on that connection fail).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;

/// How long a client has to send a request's headers (the first request
/// of a connection, and each next one on a kept-alive connection, idle
/// time included).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(75);

pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    serve_with(listener, app, shutdown, grace, HEADER_READ_TIMEOUT).await
}

/// [`serve`] with another header read timeout.
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
    header_read_timeout: Duration,
) -> std::io::Result<()> {
    let (stopping_tx, stopping_rx) = watch::channel(false);
    // Each connection's task holds a sender: once all are gone, so are
    // the requests in flight.
    let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let conn = connection(
                    stream,
                    peer,
                    app.clone(),
                    stopping_rx.clone(),
                    header_read_timeout,
                );
                let open = open_tx.clone();
                tokio::spawn(async move {
                    conn.await;
                    drop(open);
                });
            }
            // Out of file descriptors and the like: the listener is fine,
            // the next accept may work once a connection closes.
            Err(err) => {
                tracing::warn!(%err, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    tracing::info!(
        grace_secs = grace.as_secs_f64(),
        "shutting down: finishing in-flight requests"
    );
    drop(listener);
    let _ = stopping_tx.send(true);
    drop(open_tx);
    let finished = tokio::time::timeout(grace, open_rx.recv()).await;
    if finished.is_err() {
        tracing::warn!("grace period over: dropping the requests still in flight");
    }
    Ok(())
}

/// One connection, served until it closes or, once shutdown starts, until
/// its request in flight is answered.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    mut stopping: watch::Receiver<bool>,
    header_read_timeout: Duration,
) {
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(req.map(axum::body::Body::new))
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let stop = async move {
        let _ = stopping.wait_for(|stopping| *stopping).await;
    };
    tokio::select! {
        served = conn.as_mut() => {
            if let Err(err) = served {
                tracing::debug!(%err, %peer, "connection ended with an error");
            }
        }
        () = stop => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
