//! Every ordered domain gets its own random token with the order, shown
//! to the tenant's staff and to the customer who ordered it, and to no one
//! else (another tenant's staff get a 404); the tenant's policy says
//! whether provisioning waits for the proof (`domain_control`), and a bad
//! value changes nothing. (The wait itself, on the real PowerDNS and
//! nginx: crates/mpanel/tests/binary/domain_control.rs.)

use mpanel_domain::identity::Role;
use serde_json::{Value, json};

use crate::orders::{order, shop};
use crate::security_center::set_policy;

async fn json_of(res: reqwest::Response) -> Value {
    res.json().await.unwrap()
}

#[tokio::test]
async fn each_ordered_domain_shows_its_own_token_to_its_tenant_and_customer_only() {
    let s = shop().await;
    let jane = s
        .app
        .account("acme", "jane@example.org", Role::Customer)
        .await;
    let mut ids = Vec::new();
    for (key, domain) in [("one", "jane.example"), ("two", "jane-shop.example")] {
        // Signed in on the marketing site: both orders are Jane's.
        let mut body = order(&s.hosting, domain, true);
        body["customer"]["authenticated"] = json!(true);
        let res = s.app.post_order("acme", &s.secret, key, &body).await;
        assert_eq!(res.status(), 201);
        ids.push(json_of(res).await["order_id"].as_str().unwrap().to_owned());
    }

    let staff = json_of(
        s.app
            .get_as(&s.admin.access_token, &format!("/api/orders/{}", ids[0]))
            .await,
    )
    .await;
    let proofs = staff["domain_verifications"].as_array().unwrap();
    assert_eq!(proofs.len(), 1, "{staff:#}");
    let proof = &proofs[0];
    assert_eq!(proof["domain"], "jane.example");
    assert_eq!(proof["status"], "PENDING");
    assert!(proof["method"].is_null() && proof["verified_at"].is_null());
    assert_eq!(proof["txt_name"], "_mpanel-challenge.jane.example");
    assert_eq!(
        proof["subscription_id"],
        staff["items"][0]["subscription_id"]
    );
    let token = proof["txt_value"].as_str().unwrap();
    let hex = token.strip_prefix("mpanel-verify=").unwrap();
    assert_eq!(hex.len(), 40, "160 random bits: {token}");
    assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
    // The order list is a summary: no tokens in it.
    let list = json_of(s.app.get_as(&s.admin.access_token, "/api/orders").await).await;
    assert!(
        list["items"][0].get("domain_verifications").is_none(),
        "{list:#}"
    );

    // The customer who ordered sees the same tokens, one per domain.
    let mine = json_of(s.app.get_as(&jane.access_token, "/api/me/orders").await).await;
    let mut tokens: Vec<String> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            o["domain_verifications"][0]["txt_value"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(tokens.len(), 2, "{mine:#}");
    assert!(tokens.contains(&token.to_owned()));
    tokens.dedup();
    assert_eq!(tokens.len(), 2, "each domain has its own token");

    // Nobody else: another customer sees no orders, another tenant's
    // staff get a 404 for the order (its existence is not told).
    let other = s
        .app
        .account("acme", "other@example.org", Role::Customer)
        .await;
    let theirs = json_of(s.app.get_as(&other.access_token, "/api/me/orders").await).await;
    assert!(theirs["items"].as_array().unwrap().is_empty(), "{theirs:#}");
    let rival = s
        .app
        .account("rival", "admin@rival.test", Role::TenantAdmin)
        .await;
    let res = s
        .app
        .get_as(&rival.access_token, &format!("/api/orders/{}", ids[0]))
        .await;
    assert_eq!(res.status(), 404);
    let body = res.text().await.unwrap();
    assert!(!body.contains(token), "{body}");
}

#[tokio::test]
async fn the_policy_requires_proof_unless_set_to_none_and_a_bad_value_changes_nothing() {
    let s = shop().await;
    let policy = json_of(
        s.app
            .get_as(&s.admin.access_token, "/api/security/policy")
            .await,
    )
    .await;
    assert_eq!(policy["domain_control"], "DELEGATION_OR_TXT", "{policy:#}");

    let mut bad = policy.clone();
    bad["domain_control"] = json!("SOMETIMES");
    let res = s
        .app
        .call(
            reqwest::Method::PUT,
            "/api/security/policy",
            Some(&s.admin.access_token),
            Some(bad),
        )
        .await;
    assert_eq!(res.status(), 422);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/problem+json")
    );
    let after = json_of(
        s.app
            .get_as(&s.admin.access_token, "/api/security/policy")
            .await,
    )
    .await;
    assert_eq!(after, policy, "a refused change changes nothing");

    set_policy(&s.app, &s.admin, json!({"domain_control": "NONE"})).await;
    let after = json_of(
        s.app
            .get_as(&s.admin.access_token, "/api/security/policy")
            .await,
    )
    .await;
    assert_eq!(after["domain_control"], "NONE");
}
