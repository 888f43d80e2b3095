use std::time::Duration;

use mpanel_api::HttpSettings;

use crate::support::{TestApp, problem, settings};

fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn requests_are_counted_by_route_and_status() {
    let app = TestApp::start().await;
    for _ in 0..3 {
        assert_eq!(app.get("/test/metrics-probe").await.status(), 200);
    }
    let res = app
        .client
        .post(app.url("/test/metrics-probe"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);

    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = res.text().await.unwrap();
    assert_eq!(
        sample(
            &text,
            r#"http_requests_total{method="GET",route="/test/metrics-probe",status="200"}"#
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"http_requests_total{method="POST",route="/test/metrics-probe",status="405"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"http_request_duration_seconds_count{method="GET",route="/test/metrics-probe",status="200"}"#
        ),
        Some(3.0),
        "{text}"
    );
    assert!(text.contains("# TYPE http_request_duration_seconds histogram"));
}

#[tokio::test]
async fn a_metrics_token_keeps_metrics_private() {
    let app = TestApp::start_with(
        HttpSettings {
            metrics_token: Some("0123456789abcdef-token".into()),
            ..settings()
        },
        Duration::from_secs(5),
    )
    .await;
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 401);
    assert_eq!(problem(res).await["code"], "unauthorized");
    let res = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("0123456789abcdef-token")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
