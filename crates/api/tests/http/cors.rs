use std::time::Duration;

use mpanel_api::HttpSettings;

use crate::support::{TestApp, settings};

async fn app() -> TestApp {
    TestApp::start_with(
        HttpSettings {
            cors_allowed_origins: vec!["https://panel.example.com".into()],
            ..settings()
        },
        Duration::from_secs(5),
    )
    .await
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url("/api/health"))
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn allow_listed_origins_pass_preflight_and_requests() {
    let app = app().await;
    let res = preflight(&app, "https://panel.example.com").await;
    assert!(res.status().is_success());
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://panel.example.com"
    );
    let allowed = res.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap();
    assert!(allowed.contains("authorization"), "{allowed}");

    let res = app
        .client
        .get(app.url("/api/health"))
        .header("origin", "https://panel.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://panel.example.com"
    );
}

#[tokio::test]
async fn other_origins_get_no_cors_grant() {
    let app = app().await;
    let res = preflight(&app, "https://evil.example.net").await;
    assert!(res.headers().get("access-control-allow-origin").is_none());
    let res = app
        .client
        .get(app.url("/api/health"))
        .header("origin", "https://evil.example.net")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn an_empty_allow_list_grants_nobody() {
    let app = TestApp::start().await;
    let res = preflight(&app, "https://panel.example.com").await;
    assert!(res.headers().get("access-control-allow-origin").is_none());
}
