//! Invoice numbers follow the year in the tenant's time zone.

use serde_json::{Value, json};

use crate::billing::{billing_admin, customer, draft, issue};
use crate::support::TestApp;

#[tokio::test]
async fn numbers_follow_the_year_in_the_tenants_time_zone() {
    let app = TestApp::start().await;
    // Created before `account` would make it in UTC.
    mpanel_services::tenants::create_tenant(
        &app.store,
        app.clock.as_ref(),
        &mpanel_services::Actor::cli("test"),
        &mpanel_services::tenants::CreateTenant {
            slug: "kiwi".into(),
            name: "Kiwi Hosting".into(),
            timezone: "Pacific/Auckland".into(),
            default_currency: "NZD".into(),
            profile: Default::default(),
        },
    )
    .await
    .unwrap();
    // 31 December, 12:00 UTC is already 1 January 01:00 in Auckland.
    app.clock.set(time::macros::datetime!(2026-12-31 12:00 UTC));
    let admin = billing_admin(&app, "kiwi").await;
    let aroha = customer(&app, &admin, "aroha@example.nz", "NZ", None).await;
    let inv = draft(
        &app,
        &admin,
        json!({"customer_id": aroha, "lines": [{"kind": "ITEM", "description": "Hosting", "quantity": "1", "unit_price": "20.00"}]}),
    )
    .await;
    assert_eq!(inv["currency"], "NZD");
    let issued: Value = issue(&app, &admin, inv["id"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(issued["number"], "INV-2027-000001");
}
