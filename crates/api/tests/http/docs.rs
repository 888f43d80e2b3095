use serde_json::Value;

use crate::support::TestApp;

#[tokio::test]
async fn the_openapi_document_describes_the_routes() {
    let app = TestApp::start().await;
    let res = app.get("/api/openapi.json").await;
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["info"]["title"], "mPanel API");
    for path in ["/api/health", "/api/ready", "/metrics"] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} missing");
    }
    assert!(doc["components"]["schemas"]["ProblemDoc"].is_object());
}

#[tokio::test]
async fn the_docs_page_is_served_from_the_binary_alone() {
    let app = TestApp::start().await;
    let res = app.get("/api/docs").await;
    assert!(res.status().is_redirection());

    let res = app.get("/api/docs/").await;
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(
        !csp.contains("http"),
        "the page may load nothing remote: {csp}"
    );
    let html = res.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );

    // Every script and stylesheet the page names is served here.
    let assets: Vec<&str> = html
        .split(['"', '\''])
        .filter(|s| s.ends_with(".js") || s.ends_with(".css"))
        .collect();
    assert!(assets.len() >= 3, "{assets:?}");
    for asset in assets {
        let path = format!("/api/docs/{}", asset.trim_start_matches("./"));
        let res = app.get(&path).await;
        assert_eq!(res.status(), 200, "{path}");
    }
    let init = app
        .get("/api/docs/swagger-initializer.js")
        .await
        .text()
        .await
        .unwrap();
    assert!(init.contains("/api/openapi.json"), "{init}");
}
