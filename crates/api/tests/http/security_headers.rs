use std::time::Duration;

use mpanel_api::HttpSettings;

use crate::support::{TestApp, settings};

fn assert_hardened(res: &reqwest::Response) {
    let h = res.headers();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
}

#[tokio::test]
async fn every_response_carries_security_headers() {
    let app = TestApp::start().await;
    for path in [
        "/api/health",
        "/api/ready",
        "/nowhere",
        "/test/boom",
        "/metrics",
    ] {
        let res = app.get(path).await;
        assert_hardened(&res);
        assert!(res.headers().get("strict-transport-security").is_none());
    }
    let res = app
        .client
        .delete(app.url("/api/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_hardened(&res);
}

#[tokio::test]
async fn hsts_is_sent_when_configured() {
    let app = TestApp::start_with(
        HttpSettings {
            hsts: true,
            ..settings()
        },
        Duration::from_secs(5),
    )
    .await;
    let res = app.get("/api/health").await;
    let hsts = res.headers()["strict-transport-security"].to_str().unwrap();
    assert!(hsts.starts_with("max-age=63072000"), "{hsts}");
}
