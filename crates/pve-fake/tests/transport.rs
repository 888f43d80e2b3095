//! §1-§2 of the contract: transport, authentication, envelope, errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use common::{AUTH_DELAY, start};
use serde_json::json;

#[tokio::test]
async fn a_wrong_or_missing_token_is_a_401_with_an_empty_body_after_the_delay() {
    let fake = start().await;
    let started = Instant::now();
    let res = fake
        .http
        .get(fake.url("/version"))
        .header(
            "Authorization",
            format!("PVEAPIToken={}=wrong", fake.run.token_id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    assert!(started.elapsed() >= AUTH_DELAY);
    assert_eq!(res.headers()["connection"], "close");
    assert_eq!(res.text().await.unwrap(), "");

    let bad = format!("PVEAPIToken={}=wrong", fake.run.token_id);
    let (line, body) = fake.raw_get("/version", Some(&bad)).await;
    assert_eq!(line, "HTTP/1.1 401 Authentication failed!");
    assert_eq!(body, "");
    let (line, _) = fake.raw_get("/version", None).await;
    assert_eq!(line, "HTTP/1.1 401 No ticket");
}

#[tokio::test]
async fn the_token_is_split_at_the_last_equals_sign_and_may_be_url_escaped() {
    let fake = start().await;
    let escaped = format!(
        "PVEAPIToken={}%3D{}",
        fake.run.token_id.replace('!', "%21"),
        fake.run.token_secret
    );
    let res = fake
        .http
        .get(fake.url("/version"))
        .header("Authorization", escaped)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let headers = res.headers().clone();
    assert_eq!(headers["server"], "pve-api-daemon/3.0");
    assert_eq!(headers["content-type"], "application/json;charset=UTF-8");
    assert_eq!(headers["cache-control"], "max-age=0");
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["data"]["version"].as_str().unwrap().starts_with("9."));
}

#[tokio::test]
async fn an_unknown_path_or_method_is_a_501_naming_the_relative_uri() {
    let fake = start().await;
    let res = fake.get("/nodes/pve1/foo").await;
    assert_eq!(res.status, 501);
    assert_eq!(
        res.message(),
        "Method 'GET /nodes/pve1/foo' not implemented\n"
    );
    assert_eq!(res.json()["data"], json!(null));
    assert_eq!(res.headers["connection"], "close");
    let res = fake.post("/version", &[]).await;
    assert_eq!(res.status, 501);
    assert_eq!(res.message(), "Method 'POST /version' not implemented\n");
    let (line, _) = fake
        .raw_get("/nodes/pve1/foo", Some(&fake.run.authorization()))
        .await;
    assert_eq!(
        line,
        "HTTP/1.1 501 Method 'GET /nodes/pve1/foo' not implemented"
    );
}

#[tokio::test]
async fn a_body_on_get_or_delete_is_a_501() {
    let fake = start().await;
    let res = fake
        .http
        .get(fake.url("/version"))
        .header("Authorization", fake.run.authorization())
        .body("a=1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 501);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["message"], "Unexpected content for method 'GET'\n");
}

#[tokio::test]
async fn an_unknown_parameter_is_a_400_with_an_errors_map() {
    let fake = start().await;
    let res = fake
        .post(
            "/nodes/pve1/qemu/9000/clone",
            &[("newid", "120"), ("bogus", "1")],
        )
        .await;
    assert_eq!(res.status, 400);
    assert_eq!(
        res.json(),
        json!({
            "errors": {"bogus": "property is not defined in schema and the schema does not allow additional properties"},
            "data": null,
            "message": "Parameter verification failed.\n",
        })
    );
    // A form boolean is 0 or 1 only; JSON may say true.
    let res = fake
        .post(
            "/nodes/pve1/qemu/9000/clone",
            &[("newid", "120"), ("full", "true")],
        )
        .await;
    assert_eq!(res.status, 400);
    assert_eq!(
        res.json()["errors"]["full"],
        "type check ('boolean') failed - got 'true'"
    );
    let res = fake
        .post_json(
            "/nodes/pve1/qemu/9000/clone",
            json!({"newid": 120, "full": true}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    // A missing required parameter.
    let res = fake.post("/nodes/pve1/qemu/9000/clone", &[]).await;
    assert_eq!(
        res.json()["errors"]["newid"],
        "property is missing and it is not optional"
    );
}

#[tokio::test]
async fn a_missing_vm_is_a_500_with_the_message_in_the_status_line() {
    let fake = start().await;
    let (line, body) = fake
        .raw_get(
            "/nodes/pve1/qemu/999/config",
            Some(&fake.run.authorization()),
        )
        .await;
    assert_eq!(
        line,
        "HTTP/1.1 500 Configuration file 'nodes/pve1/qemu-server/999.conf' does not exist"
    );
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body,
        json!({"data": null, "message": "Configuration file 'nodes/pve1/qemu-server/999.conf' does not exist\n"})
    );
    // The template 9100 lives on pve2: asking pve1 is the same error.
    let res = fake.get("/nodes/pve1/qemu/9100/config").await;
    assert_eq!(res.status, 500);
}

#[tokio::test]
async fn nodes_carry_the_certificate_fingerprint_and_stats() {
    let fake = start().await;
    let nodes = fake.get("/nodes").await.data();
    let nodes = nodes.as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    for n in nodes {
        assert_eq!(n["ssl_fingerprint"], fake.run.fingerprint);
        assert_eq!(n["status"], "online");
        assert_eq!(n["maxmem"], json!(32u64 << 30));
        assert_eq!(n["maxcpu"], 16);
    }
    assert!(
        fake.run.fingerprint.len() == 95
            && fake
                .run
                .fingerprint
                .chars()
                .all(|c| c == ':' || c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
    );
    let status = fake.get("/nodes/pve2/status").await.data();
    assert_eq!(status["cpuinfo"]["cpus"], 16);
    assert_eq!(status["memory"]["total"], json!(32u64 << 30));
}

#[tokio::test]
async fn nextid_reserves_nothing_and_is_a_string() {
    let fake = start().await;
    let a = fake.get("/cluster/nextid").await.data();
    let b = fake.get("/cluster/nextid").await.data();
    assert_eq!(a, json!("100"));
    assert_eq!(a, b);
    let res = fake.get("/cluster/nextid?vmid=9000").await;
    assert_eq!(res.status, 400);
    assert_eq!(res.json()["errors"]["vmid"], "VM 9000 already exists");
    assert_eq!(
        fake.get("/cluster/nextid?vmid=555").await.data(),
        json!("555")
    );
}

#[tokio::test]
async fn cluster_resources_lists_templates_of_every_node() {
    let fake = start().await;
    let list = fake.get("/cluster/resources?type=vm").await.data();
    let list = list.as_array().unwrap();
    let ids: Vec<u64> = list.iter().map(|v| v["vmid"].as_u64().unwrap()).collect();
    assert_eq!(ids, vec![9000, 9001, 9100, 9101]);
    let t = &list[2];
    assert_eq!(t["id"], "qemu/9100");
    assert_eq!(t["node"], "pve2");
    assert_eq!(t["type"], "qemu");
    assert_eq!(t["template"], 1);
    assert_eq!(t["name"], "debian-12");
    let res = fake.get("/cluster/resources?type=vms").await;
    assert_eq!(res.status, 400);
}

#[tokio::test]
async fn injected_596_has_no_body_and_may_still_carry_out_the_request() {
    let fake = start().await;
    fake.admin("timeout", json!({"count": 1})).await;
    let res = fake.get("/version").await;
    assert_eq!(res.status, 596);
    assert_eq!(res.text, "");
    assert_eq!(fake.get("/version").await.status, 200);

    fake.clone_template(120).await;
    fake.admin("timeout", json!({"count": 1, "perform": true}))
        .await;
    let res = fake
        .put("/nodes/pve1/qemu/120/config", &[("cores", "4")])
        .await;
    assert_eq!(res.status, 596);
    assert_eq!(
        fake.vm_state(120).await["cores"],
        4,
        "the change happened anyway"
    );
}

#[tokio::test]
async fn a_revoked_token_gets_401_until_restored() {
    let fake = start().await;
    fake.admin("token/revoke", json!({})).await;
    let res = fake.get("/version").await;
    assert_eq!(res.status, 401);
    assert_eq!(res.text, "");
    fake.admin("token/restore", json!({})).await;
    assert_eq!(fake.get("/version").await.status, 200);
}

#[tokio::test]
async fn an_offline_node_answers_595_and_shows_offline() {
    let fake = start().await;
    fake.admin("nodes/pve2/offline", json!({})).await;
    let res = fake.get("/nodes/pve2/status").await;
    assert_eq!(res.status, 595);
    assert_eq!(res.text, "");
    let nodes = fake.get("/nodes").await.data();
    assert_eq!(nodes[1]["status"], "offline");
    assert!(nodes[1].get("mem").is_none());
    let vms = fake.get("/cluster/resources?type=vm").await.data();
    assert_eq!(vms[2]["status"], "unknown");
    assert_eq!(fake.get("/nodes/pve1/status").await.status, 200);
}

#[tokio::test]
async fn unparsable_and_unknown_upids_are_400s() {
    let fake = start().await;
    let res = fake.get("/nodes/pve1/tasks/nonsense/status").await;
    assert_eq!(res.status, 400);
    assert_eq!(res.json()["errors"]["upid"], "unable to parse worker upid");
    let res = fake
        .get(&format!(
            "/nodes/pve1/tasks/{}/status",
            common::enc("UPID:pve1:00001234:00100000:6419CAF8:qmstart:100:root@pam:")
        ))
        .await;
    assert_eq!(res.json()["errors"]["upid"], "no such task");
}
