use serde_json::Value;

use crate::support::{TestApp, problem};

#[tokio::test]
async fn health_answers_without_the_database() {
    let app = TestApp::start().await;
    app.store.close().await;
    let res = app.get("/api/health").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "OK");
}

#[tokio::test]
async fn ready_when_the_database_answers_and_migrations_are_current() {
    let app = TestApp::start().await;
    let res = app.get("/api/ready").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "READY");
    let engine = mpanel_store::testing::TestDatabase::selected_engine().unwrap();
    assert_eq!(body["engine"], engine.as_str().to_ascii_uppercase());
    let all: Vec<i64> = mpanel_store::known_migrations()
        .iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(body["migrations_applied"], serde_json::json!(all));
    // The test server has no smtp_url: a warning, not a failure.
    assert_eq!(body["email"], "NOT_CONFIGURED");
    assert!(
        body["warnings"][0].as_str().unwrap().contains("smtp_url"),
        "{body}"
    );
}

#[tokio::test]
async fn not_ready_while_a_migration_is_pending() {
    let app = TestApp::start().await;
    app.store
        .execute_raw_for_tests("DELETE FROM _sqlx_migrations WHERE version = 1")
        .await
        .unwrap();
    let res = app.get("/api/ready").await;
    assert_eq!(res.status(), 503);
    let body = problem(res).await;
    assert_eq!(body["code"], "not_ready");
    assert_eq!(body["checks"]["migrations"], "PENDING");
    assert!(
        body["detail"].as_str().unwrap().contains("1 foundation"),
        "{body}"
    );
}

#[tokio::test]
async fn not_ready_when_the_database_is_gone() {
    let app = TestApp::start().await;
    app.store.close().await;
    let res = app.get("/api/ready").await;
    assert_eq!(res.status(), 503);
    let body = problem(res).await;
    assert_eq!(body["code"], "not_ready");
    assert_eq!(body["checks"]["database"], "UNAVAILABLE");
}
