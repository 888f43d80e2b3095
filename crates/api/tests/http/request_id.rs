use uuid::Uuid;

use crate::support::{TestApp, problem};

#[tokio::test]
async fn a_request_id_is_made_when_none_is_given() {
    let app = TestApp::start().await;
    let res = app.get("/api/health").await;
    let id = res.headers()["x-request-id"].to_str().unwrap();
    let uuid = Uuid::parse_str(id).unwrap();
    assert_eq!(uuid.get_version_num(), 7);
}

#[tokio::test]
async fn a_given_request_id_is_echoed_and_quoted_in_problems() {
    let app = TestApp::start().await;
    let res = app
        .client
        .get(app.url("/no/such/thing"))
        .header("x-request-id", "lb-7f3a:42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "lb-7f3a:42");
    let body = problem(res).await;
    assert_eq!(body["request_id"], "lb-7f3a:42");
}

#[tokio::test]
async fn an_unsafe_request_id_is_replaced() {
    let app = TestApp::start().await;
    let res = app
        .client
        .get(app.url("/api/health"))
        .header("x-request-id", "<script>alert(1)</script>")
        .send()
        .await
        .unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap();
    assert!(Uuid::parse_str(id).is_ok(), "{id}");
}
