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
    // Credit is per currency, at /api/billing/customers/{id}/credit: the
    // view names no single balance (it showed 0 whatever the credit was).
    assert!(bob.get("credit_balance_minor").is_none(), "{bob}");
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

/// Staff find a customer by part of the e-mail, name or company, and keep
/// notes on them; another tenant's customer is not found, a customer's
/// own token is refused, bad notes change nothing.
#[tokio::test]
async fn staff_search_customers_and_keep_notes_on_them() {
    let app = crate::support::TestApp::start().await;
    let support = app
        .account("acme", "support@acme.test", Role::Support)
        .await;
    let customer = app.account("acme", "cust@acme.test", Role::Customer).await;
    let bravo = app
        .account("bravo", "admin@bravo.test", Role::TenantAdmin)
        .await;
    let mut ids = Vec::new();
    for (email, name, company) in [
        ("anna@example.net", "Anna Berg", None),
        ("ben@shop.example", "Ben Carter", Some("Carter 100% Ltd")),
        ("chris@example.net", "Chris Dahl", Some("Dahl_Hosting")),
        // Decoys: found only if % or _ were wildcards.
        ("dora@example.org", "Dora Ström", Some("Ben 1000 Ltd")),
        ("eve@x.example", "Eve", Some("dahlXhosting")),
    ] {
        let res = app
            .post_as(
                &support.access_token,
                "/api/customers",
                json!({"email": email, "name": name, "company": company, "country": "DE",
                    "send_invitation": false}),
            )
            .await;
        assert_eq!(res.status(), 201);
        ids.push(
            res.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let token = support.access_token.clone();
    let found = |q: &'static str| search(&app, token.clone(), q);
    assert_eq!(found("EXAMPLE.NET").await, ["Anna Berg", "Chris Dahl"]);
    assert_eq!(found("carter").await, ["Ben Carter"]);
    assert_eq!(found("100%").await, ["Ben Carter"], "% is a character");
    assert_eq!(found("l_h").await, ["Chris Dahl"], "_ is a character");
    assert!(found("nobody").await.is_empty());
    assert_eq!(found("Ström").await, ["Dora Ström"], "beyond ASCII");
    assert_eq!(found("  ").await.len(), 5, "blank: all");
    let res = app
        .get_as(
            &support.access_token,
            &format!("/api/customers?q={}", "x".repeat(201)),
        )
        .await;
    assert_eq!(res.status(), 422);
    let res = app
        .get_as(&bravo.access_token, "/api/customers?q=example")
        .await;
    let page: Value = res.json().await.unwrap();
    assert!(
        page["items"].as_array().unwrap().is_empty(),
        "only the tenant's"
    );

    // Notes: kept, newest first, paged.
    let notes = format!("/api/customers/{}/notes", ids[0]);
    for body in [
        "Called about the renewal.",
        "Gave 10% off:\nloyal since 2019.",
    ] {
        let res = app
            .post_as(&support.access_token, &notes, json!({"body": body}))
            .await;
        assert_eq!(res.status(), 201);
        let note: Value = res.json().await.unwrap();
        assert_eq!(note["body"], body);
        assert_eq!(note["author"], "support@acme.test");
    }
    let res = app
        .get_as(&support.access_token, &format!("{notes}?limit=1"))
        .await;
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["items"][0]["body"], "Gave 10% off:\nloyal since 2019.");
    let cursor = page["next_cursor"].as_str().unwrap();
    let res = app
        .get_as(
            &support.access_token,
            &format!("{notes}?limit=1&cursor={cursor}"),
        )
        .await;
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["items"][0]["body"], "Called about the renewal.");
    assert!(page["next_cursor"].is_null());

    // Bad notes change nothing.
    for body in [
        json!({"body": "   "}),
        json!({"body": "x".repeat(5001)}),
        json!({"body": "a\u{0007}b"}),
    ] {
        let res = app.post_as(&support.access_token, &notes, body).await;
        assert_eq!(res.status(), 422);
    }
    // Another tenant, a customer's own token, a customer not there.
    let res = app.get_as(&bravo.access_token, &notes).await;
    assert_eq!(res.status(), 404);
    let res = app
        .post_as(&bravo.access_token, &notes, json!({"body": "mine now"}))
        .await;
    assert_eq!(res.status(), 404);
    let res = app.get_as(&customer.access_token, &notes).await;
    assert_eq!(res.status(), 403);
    let res = app
        .post_as(&customer.access_token, &notes, json!({"body": "hello"}))
        .await;
    assert_eq!(res.status(), 403);
    let res = app
        .get_as(
            &support.access_token,
            "/api/customers/01a23d00-0000-7000-8000-000000000000/notes",
        )
        .await;
    assert_eq!(res.status(), 404);
    let res = app.get_as(&support.access_token, &notes).await;
    let page: Value = res.json().await.unwrap();
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        2,
        "nothing more kept"
    );
}

async fn search(app: &crate::support::TestApp, token: String, q: &str) -> Vec<String> {
    let path = format!("/api/customers?q={}", urlencoding(q));
    let res = app.get_as(&token, &path).await;
    assert_eq!(res.status(), 200, "{q}");
    let page: Value = res.json().await.unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
