use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{TestApp, parse_raw, settings};

/// Starts a request to `/test/hold` that sends only half its body, and
/// returns once the handler is serving it.
async fn half_sent_request(app: &TestApp) -> TcpStream {
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"POST /test/hold HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhello")
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), app.held.notified())
        .await
        .expect("the request reached its handler");
    stream
}

/// Polls until new connections are refused.
async fn wait_until_refusing(app: &TestApp) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while TcpStream::connect(app.addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the listener closed");
}

#[tokio::test]
async fn shutdown_stops_accepting_and_finishes_requests_in_flight() {
    let mut app = TestApp::start_with(settings(), Duration::from_secs(10)).await;
    let mut stream = half_sent_request(&app).await;

    app.shut_down();
    wait_until_refusing(&app).await;

    stream.write_all(b"world").await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let (status, _, body) = parse_raw(&String::from_utf8_lossy(&out));
    assert_eq!(status, 200);
    assert_eq!(body, "helloworld");

    let served = tokio::time::timeout(Duration::from_secs(10), &mut app.server)
        .await
        .expect("the server stopped after the last request");
    served.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_gives_up_on_requests_that_outlast_the_grace_period() {
    let mut app = TestApp::start_with(settings(), Duration::from_millis(200)).await;
    let _stream = half_sent_request(&app).await;
    app.shut_down();
    let served = tokio::time::timeout(Duration::from_secs(10), &mut app.server)
        .await
        .expect("the server stopped at the end of the grace period");
    served.unwrap().unwrap();
}

/// Slow clients: 500 connections that send their headers a byte at a time
/// (or nothing) do not keep others from being served, and each is cut off
/// once it has taken longer than the header read timeout (2 s here on a
/// bare router, 75 s in `serve`).
#[tokio::test]
async fn clients_that_send_headers_slowly_are_cut_off_and_hold_nobody_up() {
    const TIMEOUT: Duration = Duration::from_secs(2);
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(mpanel_api::server::serve_with(
        listener,
        app,
        std::future::pending(),
        Duration::from_secs(1),
        TIMEOUT,
    ));
    let mut slow = Vec::new();
    for _ in 0..500 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
        slow.push(stream);
    }
    let started = std::time::Instant::now();
    mpanel_services::tls::install_crypto_provider();
    let res = reqwest::get(format!("http://{addr}/")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(1), "served at once");

    // One more byte now and then is not enough: the server closes it.
    let mut stream = slow.pop().unwrap();
    let started = std::time::Instant::now();
    let cut = tokio::time::timeout(TIMEOUT + Duration::from_secs(5), async {
        let mut buf = [0u8; 256];
        loop {
            let _ = stream.write_all(b"s").await;
            // Closed, or hyper's 408 before it closes.
            let read = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf));
            if read.await.is_ok() {
                return;
            }
        }
    })
    .await;
    assert!(cut.is_ok(), "a slow client is cut off after the timeout");
    assert!(started.elapsed() >= TIMEOUT - Duration::from_millis(500));
    // The rest, which sent nothing more, are closed too.
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(2), slow[0].read(&mut buf))
        .await
        .expect("closed by now")
        .unwrap_or(0);
    assert!(
        n == 0 || buf.starts_with(b"HTTP/1.1 408"),
        "{:?}",
        &buf[..n]
    );
    server.abort();
}
