use serde_json::json;

use crate::support::{TestApp, problem};

#[tokio::test]
async fn unknown_route_is_a_404_problem() {
    let app = TestApp::start().await;
    let res = app.get("/api/nothing-here").await;
    assert_eq!(res.status(), 404);
    let body = problem(res).await;
    assert_eq!(body["status"], 404);
    assert_eq!(body["code"], "not_found");
    assert_eq!(body["title"], "Not Found");
    assert_eq!(body["instance"], "/api/nothing-here");
    assert!(body["request_id"].is_string());
}

#[tokio::test]
async fn wrong_method_is_a_405_problem_with_allow() {
    let app = TestApp::start().await;
    let res = app.client.put(app.url("/api/health")).send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert!(res.headers()["allow"].to_str().unwrap().contains("GET"));
    assert_eq!(problem(res).await["code"], "method_not_allowed");
}

#[tokio::test]
async fn wrong_content_type_is_a_415_problem() {
    let app = TestApp::start().await;
    let res = app
        .client
        .post(app.url("/test/echo"))
        .header("content-type", "text/plain")
        .body(r#"{"a": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    assert_eq!(problem(res).await["code"], "unsupported_media_type");
}

#[tokio::test]
async fn malformed_json_is_a_400_naming_the_position() {
    let app = TestApp::start().await;
    let res = app
        .client
        .post(app.url("/test/echo"))
        .header("content-type", "application/json")
        .body("{\n  \"plan\": \"basic\",\n  \"quantity\": 2,,\n}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body = problem(res).await;
    assert_eq!(body["code"], "malformed_json");
    assert_eq!(body["line"], 3);
    assert_eq!(body["column"], 17);
    assert!(
        body["detail"].as_str().unwrap().contains("line 3"),
        "{body}"
    );
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_a_422() {
    let app = TestApp::start().await;
    let res = app
        .client
        .post(app.url("/test/order"))
        .json(&json!({"quantity": "two"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert_eq!(problem(res).await["code"], "invalid_body");

    let ok = app
        .client
        .post(app.url("/test/order"))
        .json(&json!({"quantity": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn a_5xx_never_carries_the_internal_cause() {
    let app = TestApp::start().await;
    let res = app.get("/test/boom").await;
    assert_eq!(res.status(), 500);
    let text = res.text().await.unwrap();
    assert!(!text.contains("db.internal"), "{text}");
    assert!(!text.contains("billing_admin"), "{text}");
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["code"], "internal_error");
}

#[tokio::test]
async fn a_panicking_handler_is_a_plain_500_problem() {
    let app = TestApp::start().await;
    let res = app.get("/test/panic").await;
    assert_eq!(res.status(), 500);
    let body = problem(res).await;
    assert_eq!(body["code"], "internal_error");
    assert!(!body.to_string().contains("secret panic detail"));
    // The server keeps serving.
    assert_eq!(app.get("/api/health").await.status(), 200);
}

/// PostgreSQL cannot store U+0000: text carrying it is refused up front on
/// both engines, never a 500 from deep in a query.
#[tokio::test]
async fn text_with_a_nul_character_is_refused_before_it_reaches_the_database() {
    use mpanel_domain::identity::Role;
    let app = TestApp::start().await;
    let admin = app
        .account("acme", "admin@acme.test", Role::TenantAdmin)
        .await;
    let res = app
        .get_as(&admin.access_token, "/api/audit?actor=a%00b")
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(problem(res).await["code"], "invalid_query");
    let res = app
        .get_as(&admin.access_token, "/api/dns/zones/a%00.test/records")
        .await;
    assert_eq!(res.status(), 404);
    let res = app
        .post_as(
            &admin.access_token,
            "/api/customers",
            json!({"email": "nul@example.org", "name": "a\u{0}b", "country": "DE"}),
        )
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(problem(res).await["code"], "invalid_body");
    let customers: serde_json::Value = app
        .get_as(&admin.access_token, "/api/customers")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(customers["items"], json!([]), "nothing was made");
}
