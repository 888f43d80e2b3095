use std::time::Duration;

use mpanel_api::{HttpSettings, RateLimit};

use crate::support::{TestApp, parse_raw, problem, settings};

async fn small_body_app() -> TestApp {
    TestApp::start_with(
        HttpSettings {
            body_limit_bytes: 1024,
            ..settings()
        },
        Duration::from_secs(5),
    )
    .await
}

#[tokio::test]
async fn a_declared_body_over_the_limit_is_a_413() {
    let app = small_body_app().await;
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(2048));
    let res = app
        .client
        .post(app.url("/test/echo"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let body = problem(res).await;
    assert_eq!(body["code"], "payload_too_large");
}

#[tokio::test]
async fn a_streamed_body_over_the_limit_is_a_413() {
    let app = small_body_app().await;
    let chunk = format!("{{\"pad\": \"{}\"}}", "x".repeat(2048));
    let request = format!(
        "POST /test/echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let (status, head, body) = parse_raw(&app.raw(request.as_bytes()).await);
    assert_eq!(status, 413, "{head}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    assert!(body.contains("payload_too_large"), "{body}");
}

#[tokio::test]
async fn a_body_within_the_limit_is_served() {
    let app = small_body_app().await;
    let res = app
        .client
        .post(app.url("/test/echo"))
        .json(&serde_json::json!({"pad": "x".repeat(500)}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_request_over_the_timeout_is_a_503_problem() {
    let app = TestApp::start_with(
        HttpSettings {
            request_timeout: Duration::from_millis(300),
            ..settings()
        },
        Duration::from_secs(5),
    )
    .await;
    let res = app.get("/test/sleep").await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().get("retry-after").is_some());
    assert_eq!(problem(res).await["code"], "request_timeout");
    // Quick requests are unaffected.
    assert_eq!(app.get("/api/health").await.status(), 200);
}

#[tokio::test]
async fn too_many_requests_from_one_address_get_429_with_retry_after() {
    let app = TestApp::start_with(
        HttpSettings {
            rate_limit: Some(RateLimit {
                per_minute: 1,
                burst: 3,
            }),
            ..settings()
        },
        Duration::from_secs(5),
    )
    .await;
    for _ in 0..3 {
        assert_eq!(app.get("/nowhere").await.status(), 404);
    }
    let res = app.get("/nowhere").await;
    assert_eq!(res.status(), 429);
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let body = problem(res).await;
    assert_eq!(body["code"], "rate_limited");
    assert_eq!(body["retry_after"], retry_after);

    // Liveness and metrics are never limited; readiness asks the
    // database, so it is.
    for path in ["/api/health", "/metrics"] {
        assert_eq!(app.get(path).await.status(), 200, "{path}");
    }
    assert_eq!(app.get("/api/ready").await.status(), 429);
}
