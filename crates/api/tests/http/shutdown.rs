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
