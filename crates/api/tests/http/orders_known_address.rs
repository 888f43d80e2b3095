//! An order under the address of a known customer: it belongs to that
//! customer (credit, card) only when the marketing site signed them in.

use serde_json::{Value, json};

use crate::orders::{order, shop};

#[tokio::test]
async fn an_order_under_a_known_address_spends_nothing_of_its_owner_unless_signed_in() {
    let s = shop().await;
    let jane: Value = s
        .app
        .post_order(
            "acme",
            &s.secret,
            "jane-1",
            &order(&s.hosting, "jane.example", true),
        )
        .await
        .json()
        .await
        .unwrap();
    let jane_id = jane["customer_id"].as_str().unwrap().to_owned();
    // Jane has 15.00 of credit.
    let res = s
        .app
        .post_as(
            &s.admin.access_token,
            &format!(
                "/api/billing/invoices/{}/credit-notes",
                jane["invoice_id"].as_str().unwrap()
            ),
            json!({"amount_minor": 1500, "disposition": "CREDIT", "reason": "goodwill"}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let get = |path: String| {
        let app = &s.app;
        let token = s.admin.access_token.clone();
        async move {
            app.get_as(&token, &path)
                .await
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let customer = |id: &str| get(format!("/api/customers/{id}"));
    let credit = |id: &str| {
        let credit = get(format!("/api/billing/customers/{id}/credit"));
        async move { credit.await["balances"][0]["balance_minor"].clone() }
    };
    assert_eq!(credit(&jane_id).await, 1500);

    // A stranger who knows her address orders: a pending customer of its
    // own, nothing of Jane's spent, nothing of hers shown to it.
    let mut stranger = order(&s.hosting, "stranger.example", false);
    stranger["customer"]["email"] = json!("JANE@example.org");
    stranger["customer"]["name"] = json!("Not Jane");
    let placed: Value = s
        .app
        .post_order("acme", &s.secret, "stranger-1", &stranger)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        placed["status"], "PENDING_PAYMENT",
        "Jane's credit did not pay it"
    );
    let pending_id = placed["customer_id"].as_str().unwrap().to_owned();
    assert_ne!(pending_id, jane_id);
    let pending = customer(&pending_id).await;
    assert_eq!(pending["status"], "PENDING_VERIFICATION");
    assert_eq!(pending["pending_for"], json!(jane_id));
    assert_eq!(pending["portal_user_id"], Value::Null);
    assert_eq!(credit(&pending_id).await, Value::Null, "no credit at all");
    assert_eq!(credit(&jane_id).await, 1500);
    let jane_now = customer(&jane_id).await;
    assert_eq!(jane_now["status"], "ACTIVE");
    assert_eq!(jane_now["name"], "Jane Doe", "her details are untouched");

    // Signed in on the marketing site: Jane's own order, her credit pays.
    let mut own = order(&s.hosting, "own.example", false);
    own["customer"]["authenticated"] = json!(true);
    let placed: Value = s
        .app
        .post_order("acme", &s.secret, "jane-2", &own)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(placed["customer_id"], json!(jane_id));
    assert_eq!(placed["status"], "PAID");
    assert_eq!(credit(&jane_id).await, 0);
}
