//! Customers made and edited by staff, with an audit trail.

use mpanel_domain::identity::Role;
use serde_json::{Value, json};

use crate::orders::shop;

#[tokio::test]
async fn staff_create_and_edit_customers_with_an_audit_trail() {
    let s = shop().await;
    let support = s
        .app
        .account("acme", "support@acme.test", Role::Support)
        .await;
    let res = s
        .app
        .post_as(
            &support.access_token,
            "/api/customers",
            json!({"email": "bob@example.net", "name": "Bob", "country": "FR", "tax_id": "FR0123",
                   "address": {"line1": "1 rue X", "city": "Paris"}}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let bob: Value = res.json().await.unwrap();
    assert_eq!(bob["credit_balance_minor"], 0);
    assert!(bob["portal_user_id"].is_string());
    let id = bob["id"].as_str().unwrap();
    let res = s
        .app
        .post_as(
            &support.access_token,
            "/api/customers",
            json!({"email": "BOB@example.net", "name": "B", "country": "FR"}),
        )
        .await;
    assert_eq!(res.status(), 409);

    let res = s
        .app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/customers/{id}"),
            Some(&support.access_token),
            Some(json!({"tax_id": null, "company": "Bob SARL"})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let bob: Value = res.json().await.unwrap();
    assert_eq!(bob["tax_id"], Value::Null);
    assert_eq!(bob["company"], "Bob SARL");
    assert_eq!(bob["address"]["city"], "Paris", "untouched fields stay");
    let res = s
        .app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/customers/{id}"),
            Some(&support.access_token),
            Some(json!({"country": "France"})),
        )
        .await;
    assert_eq!(res.status(), 422);

    let audit: Value = s
        .app
        .get_as(&s.admin.access_token, "/api/audit?target=customer")
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["customer.update", "customer.create"]);
    assert_eq!(audit["items"][0]["before"]["tax_id"], "FR0123");
}

#[tokio::test]
async fn addresses_mail_servers_refuse_and_unknown_countries_are_refused_everywhere() {
    let s = shop().await;
    let admin = &s.admin;
    for (body, field) in [
        (
            json!({"email": "bob@-example.net", "name": "Bob", "country": "FR"}),
            "customer.email",
        ),
        (
            json!({"email": "\"bob smith\"@example.net", "name": "Bob", "country": "FR"}),
            "customer.email",
        ),
        (
            json!({"email": "bob@example", "name": "Bob", "country": "FR"}),
            "customer.email",
        ),
        (
            json!({"email": "bob@example.net", "name": "Bob", "country": "XX"}),
            "customer.country",
        ),
    ] {
        let res = s
            .app
            .post_as(&admin.access_token, "/api/customers", body.clone())
            .await;
        assert_eq!(res.status(), 422, "{body}");
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["field"], field, "{problem}");
    }
    let listed: Value = s
        .app
        .get_as(&admin.access_token, "/api/customers")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"], json!([]), "nothing was made");

    // A change of country is held to the same list (it was not checked).
    let res = s
        .app
        .post_as(
            &admin.access_token,
            "/api/customers",
            json!({"email": "bob@bücher.example", "name": "Bob", "country": "AT"}),
        )
        .await;
    assert_eq!(res.status(), 201, "an IDN domain is an address");
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = s
        .app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/customers/{id}"),
            Some(&admin.access_token),
            Some(json!({"country": "QQ"})),
        )
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(res.json::<Value>().await.unwrap()["field"], "country");

    // Staff users too.
    let res = s
        .app
        .post_as(
            &admin.access_token,
            "/api/users",
            json!({"email": "ops@under_score.example", "role": "SUPPORT",
                   "password": "correct horse battery staple"}),
        )
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(res.json::<Value>().await.unwrap()["field"], "email");
}
