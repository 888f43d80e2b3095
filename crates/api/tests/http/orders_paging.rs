//! `GET /api/me/orders` pages like every other list: `?limit=&cursor=`,
//! and `next_cursor` while more orders exist (it used to stop at 200
//! orders and answer `next_cursor: null`).

use mpanel_domain::identity::Role;
use serde_json::{Value, json};
use time::Duration;

use crate::orders::{order, shop};
use crate::support::problem;

#[tokio::test]
async fn a_customer_walks_all_their_orders_page_by_page() {
    let s = shop().await;
    let jane = s
        .app
        .account("acme", "jane@example.org", Role::Customer)
        .await;
    let mut placed = Vec::new();
    for n in 0..5 {
        let mut body = order(&s.hosting, &format!("page{n}.example"), true);
        body["customer"]["authenticated"] = json!(true);
        let res = s
            .app
            .post_order("acme", &s.secret, &format!("page-{n}"), &body)
            .await;
        assert_eq!(res.status(), 201);
        let id = res.json::<Value>().await.unwrap()["order_id"]
            .as_str()
            .unwrap()
            .to_owned();
        placed.push(id);
        s.app.clock.advance(Duration::minutes(1));
    }
    placed.reverse(); // newest first

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/api/me/orders?limit=2".to_owned(),
            Some(c) => format!("/api/me/orders?limit=2&cursor={c}"),
        };
        let res = s.app.get_as(&jane.access_token, &path).await;
        assert_eq!(res.status(), 200);
        let page: Value = res.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        sizes.push(items.len());
        for view in items {
            seen.push(view["id"].as_str().unwrap().to_owned());
            // Every order keeps its own items and steps, without the
            // drivers' error text.
            let steps = view["items"][0]["steps"].as_array().unwrap();
            assert_eq!(view["items"].as_array().unwrap().len(), 1);
            assert_eq!(steps.len(), 4);
            assert!(steps.iter().all(|st| st["last_error"].is_null()));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(sizes.len() < 10, "the pages never end");
    }
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(seen, placed, "every order once, newest first");

    // One page of the default size holds all five, and says it is the last.
    let all: Value = s
        .app
        .get_as(&jane.access_token, "/api/me/orders")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 5);
    assert!(all["next_cursor"].is_null());

    // A page size or cursor that is not one is refused like on every list.
    for bad in ["limit=0", "limit=201", "cursor=nope"] {
        let res = s
            .app
            .get_as(&jane.access_token, &format!("/api/me/orders?{bad}"))
            .await;
        assert_eq!(res.status(), 422, "{bad}");
        assert_eq!(problem(res).await["code"], "invalid_query");
    }
}
