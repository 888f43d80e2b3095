//! Invoices over HTTP: drafts, issue, payments, credit, credit notes,
//! PDFs, the frozen store, and orders paid through their invoice.

use mpanel_domain::identity::Role;
use serde_json::{Value, json};

use crate::support::{Account, TestApp};

pub async fn billing_admin(app: &TestApp, slug: &str) -> Account {
    app.account(slug, &format!("billing@{slug}.test"), Role::TenantAdmin)
        .await
}

pub async fn put_settings(app: &TestApp, admin: &Account, settings: Value) {
    // Stripe keys are a step-up change: the admin, signed in (a token
    // cannot make it), enters the password.
    let bearer = if admin.access_token.starts_with("mpt_") {
        let user = app
            .store
            .user(admin.tenant_id, admin.user_id)
            .await
            .unwrap()
            .unwrap();
        let tenant = app.store.tenant(admin.tenant_id).await.unwrap().unwrap();
        app.sign_in(&tenant.slug, &user.email, admin.user_id)
            .await
            .access_token
    } else {
        admin.access_token.clone()
    };
    crate::security_center::reauthenticate(app, &bearer).await;
    let res = app
        .call(
            reqwest::Method::PUT,
            "/api/billing/settings",
            Some(&bearer),
            Some(settings),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

/// A customer created by staff, its invitation held.
pub async fn customer(
    app: &TestApp,
    admin: &Account,
    email: &str,
    country: &str,
    tax_id: Option<&str>,
) -> String {
    let res = app
        .post_as(
            &admin.access_token,
            "/api/customers",
            // Billing tests look at billing mail; invitations are tested
            // on their own.
            json!({"email": email, "name": "Jane Müller", "country": country, "tax_id": tax_id,
                   "send_invitation": false}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub async fn draft(app: &TestApp, admin: &Account, body: Value) -> Value {
    let res = app
        .post_as(&admin.access_token, "/api/billing/invoices", body)
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    res.json().await.unwrap()
}

pub async fn issue(app: &TestApp, admin: &Account, id: &str) -> reqwest::Response {
    app.post_as(
        &admin.access_token,
        &format!("/api/billing/invoices/{id}/issue"),
        json!({}),
    )
    .await
}

pub async fn get_invoice(app: &TestApp, admin: &Account, id: &str) -> Value {
    app.get_as(&admin.access_token, &format!("/api/billing/invoices/{id}"))
        .await
        .json()
        .await
        .unwrap()
}

async fn pay(app: &TestApp, admin: &Account, id: &str, amount: i64) -> reqwest::Response {
    app.post_as(
        &admin.access_token,
        &format!("/api/billing/invoices/{id}/pay"),
        json!({"amount_minor": amount, "provider": "BANK_TRANSFER"}),
    )
    .await
}

fn pdf_text(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("doc.pdf");
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-layout", path.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext (poppler-utils) is installed by scripts/test.sh");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn an_invoice_is_drafted_issued_frozen_paid_and_its_excess_becomes_credit() {
    let app = TestApp::start().await;
    let admin = billing_admin(&app, "acme").await;
    put_settings(
        &app,
        &admin,
        json!({"legal_name": "Acme Hosting GmbH", "address_lines": ["Hauptstr. 1", "10115 Berlin"],
               "country": "DE", "tax_id": "DE999999999", "tax_mode": "EXCLUSIVE",
               "tax_rates": {"DE": "0.19"}, "payment_terms_days": 14,
               "stripe_secret_key": "sk_test_123"}),
    )
    .await;
    let settings: Value = app
        .get_as(&admin.access_token, "/api/billing/settings")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(settings["stripe_secret_key_set"], true);
    assert!(
        !settings.to_string().contains("sk_test_123"),
        "keys are write-only"
    );

    let jane = customer(&app, &admin, "jane@example.de", "DE", None).await;
    // A float for money is refused, and nothing is made.
    let res = app
        .post_as(
            &admin.access_token,
            "/api/billing/invoices",
            json!({"customer_id": jane, "lines": [{"kind": "ITEM", "description": "x", "quantity": 1, "unit_price": 9.99}]}),
        )
        .await;
    assert_eq!(res.status(), 422);
    let inv = draft(
        &app,
        &admin,
        json!({"customer_id": jane, "lines": [
            {"kind": "ITEM", "description": "Web hosting Pro", "quantity": "3", "unit_price": "9.99"},
            {"kind": "DISCOUNT", "description": "Loyalty", "quantity": 1, "unit_price": "-5.00"}]}),
    )
    .await;
    let id = inv["id"].as_str().unwrap().to_owned();
    assert_eq!(inv["status"], "DRAFT");
    assert_eq!(inv["number"], Value::Null);
    // 29.97 + 5.69 tax; -5.00 - 0.95 tax.
    assert_eq!(
        (
            &inv["subtotal_minor"],
            &inv["tax_minor"],
            &inv["total_minor"]
        ),
        (&json!(2497), &json!(474), &json!(2971))
    );

    let res = issue(&app, &admin, &id).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let issued: Value = res.json().await.unwrap();
    assert_eq!(issued["number"], "INV-2026-000001");
    assert_eq!(issued["status"], "ISSUED");
    assert_eq!(issued["due_at"], "2026-12-05T09:00:00Z");
    assert_eq!(issued["customer"]["name"], "Jane Müller");
    assert_eq!(issued["seller"]["name"], "Acme Hosting GmbH");

    // Frozen: no edit, no second issue; the refusal says what is allowed.
    let res = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/billing/invoices/{id}"),
            Some(&admin.access_token),
            Some(json!({"customer_id": jane, "lines": []})),
        )
        .await;
    assert_eq!(res.status(), 409);
    let res = issue(&app, &admin, &id).await;
    assert_eq!(res.status(), 409);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["code"], "invalid_transition");
    assert_eq!(
        problem["allowed"],
        json!(["PARTIALLY_PAID", "PAID", "OVERDUE", "VOID"])
    );
    // The database refuses too, whoever asks.
    let new_id = match app.store.engine() {
        mpanel_store::Engine::Postgres => "gen_random_uuid()",
        mpanel_store::Engine::Sqlite => "randomblob(16)",
    };
    for sql in [
        "UPDATE invoices SET total_minor = 1 WHERE number = 'INV-2026-000001'".to_owned(),
        "UPDATE invoice_lines SET amount_minor = 1".to_owned(),
        "DELETE FROM invoice_lines".to_owned(),
        "DELETE FROM invoices".to_owned(),
        format!(
            "INSERT INTO invoice_lines (id, tenant_id, invoice_id, position, kind, source, description,
                quantity, unit_price, amount_minor, tax_rate, net_minor, tax_minor)
             SELECT {new_id}, tenant_id, invoice_id, position + 100, kind, source, description,
                quantity, unit_price, amount_minor, tax_rate, net_minor, tax_minor FROM invoice_lines"
        ),
    ] {
        assert!(
            app.store.execute_raw_for_tests(&sql).await.is_err(),
            "{sql} must be refused"
        );
    }
    assert_eq!(get_invoice(&app, &admin, &id).await["total_minor"], 2971);

    // A part, then the rest and more: the excess is credit.
    let res = pay(&app, &admin, &id, 1000).await;
    assert_eq!(res.status(), 201);
    let paid: Value = res.json().await.unwrap();
    assert_eq!(paid["invoice_status"], "PARTIALLY_PAID");
    assert_eq!(paid["amount_due_minor"], 1971);
    let res = app
        .post_as(
            &admin.access_token,
            &format!("/api/billing/invoices/{id}/void"),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 409, "money was received: no void");
    let res = pay(&app, &admin, &id, 2500).await;
    let paid: Value = res.json().await.unwrap();
    assert_eq!(paid["invoice_status"], "PAID");
    assert_eq!(
        (&paid["applied_minor"], &paid["credited_minor"]),
        (&json!(1971), &json!(529))
    );
    let res = pay(&app, &admin, &id, 1).await;
    assert_eq!(res.status(), 409);
    let credit: Value = app
        .get_as(
            &admin.access_token,
            &format!("/api/billing/customers/{jane}/credit"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        credit["balances"],
        json!([{"currency": "EUR", "balance_minor": 529}])
    );

    // The PDF says what the invoice says.
    let res = app
        .get_as(
            &admin.access_token,
            &format!("/api/billing/invoices/{id}/pdf"),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    let text = pdf_text(&res.bytes().await.unwrap());
    for needle in [
        "INV-2026-000001",
        "Acme Hosting GmbH",
        "Jane Müller",
        "Web hosting Pro",
        "Loyalty",
        "29.71 EUR",
        "PAID",
    ] {
        assert!(text.contains(needle), "{needle:?} not in the PDF:\n{text}");
    }

    // The next invoice takes the credit by itself, and the next number.
    let next = draft(
        &app,
        &admin,
        json!({"customer_id": jane, "lines": [{"kind": "ITEM", "description": "Domain", "quantity": "1", "unit_price": "10.00"}]}),
    )
    .await;
    let res = issue(&app, &admin, next["id"].as_str().unwrap()).await;
    assert_eq!(res.status(), 200);
    let next: Value = res.json().await.unwrap();
    assert_eq!(next["number"], "INV-2026-000002", "{next}");
    assert_eq!(
        (&next["total_minor"], &next["paid_minor"]),
        (&json!(1190), &json!(529))
    );
    assert_eq!(next["status"], "PARTIALLY_PAID");
    let credit: Value = app
        .get_as(
            &admin.access_token,
            &format!("/api/billing/customers/{jane}/credit"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(credit["balances"][0]["balance_minor"], 0);

    // Past the due date an open invoice reads OVERDUE, and filters so.
    app.clock.advance(time::Duration::days(15));
    let admin = app
        .sign_in("acme", "billing@acme.test", admin.user_id)
        .await;
    let overdue: Value = app
        .get_as(&admin.access_token, "/api/billing/invoices?status=OVERDUE")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(overdue["items"].as_array().unwrap().len(), 1, "{overdue}");
    assert_eq!(overdue["items"][0]["number"], "INV-2026-000002");
    // The periodic job records it once; paying still settles it.
    let marked =
        mpanel_services::billing::invoices::mark_overdue(&app.store, app.clock.as_ref()).await;
    assert_eq!(marked.unwrap(), 1);
    let again =
        mpanel_services::billing::invoices::mark_overdue(&app.store, app.clock.as_ref()).await;
    assert_eq!(again.unwrap(), 0);
    let second = overdue["items"][0]["id"].as_str().unwrap();
    let res = pay(&app, &admin, second, 661).await;
    assert_eq!(res.json::<Value>().await.unwrap()["invoice_status"], "PAID");
}

#[tokio::test]
async fn credit_notes_reduce_refund_or_credit_and_are_numbered_like_invoices() {
    let app = TestApp::start().await;
    let admin = billing_admin(&app, "acme").await;
    let jane = customer(&app, &admin, "jane@example.de", "DE", None).await;
    let inv = draft(
        &app,
        &admin,
        json!({"customer_id": jane, "lines": [{"kind": "ITEM", "description": "Server", "quantity": "1", "unit_price": "100.00"}]}),
    )
    .await;
    let id = inv["id"].as_str().unwrap().to_owned();
    let note = |body: Value| {
        let app = &app;
        let token = admin.access_token.clone();
        let id = id.clone();
        async move {
            app.post_as(
                &token,
                &format!("/api/billing/invoices/{id}/credit-notes"),
                body,
            )
            .await
        }
    };
    // Not on a draft.
    let res =
        note(json!({"amount_minor": 100, "disposition": "REDUCE_BALANCE", "reason": "x"})).await;
    assert_eq!(res.status(), 409);
    assert_eq!(issue(&app, &admin, &id).await.status(), 200);
    let res =
        note(json!({"amount_minor": 2000, "disposition": "REDUCE_BALANCE", "reason": "Outage"}))
            .await;
    assert_eq!(res.status(), 201);
    let cn: Value = res.json().await.unwrap();
    assert_eq!(cn["number"], "CN-2026-000001");
    assert_eq!(cn["amount_due_minor"], 8000);
    // Nothing paid yet: nothing to refund.
    let res = note(json!({"amount_minor": 1, "disposition": "REFUND", "reason": "x"})).await;
    assert_eq!(res.status(), 422);
    assert_eq!(pay(&app, &admin, &id, 8000).await.status(), 201);
    let res =
        note(json!({"amount_minor": 3000, "disposition": "REFUND", "reason": "Goodwill"})).await;
    assert_eq!(res.status(), 201);
    let res =
        note(json!({"amount_minor": 5000, "disposition": "CREDIT", "reason": "Downgrade"})).await;
    assert_eq!(res.status(), 201);
    let cn: Value = res.json().await.unwrap();
    assert_eq!(cn["number"], "CN-2026-000003");
    // Everything paid was given back: no more.
    let res = note(json!({"amount_minor": 1, "disposition": "CREDIT", "reason": "x"})).await;
    assert_eq!(res.status(), 422);
    let inv = get_invoice(&app, &admin, &id).await;
    assert_eq!(
        (
            &inv["status"],
            &inv["credited_minor"],
            &inv["refunded_minor"]
        ),
        (&json!("PAID"), &json!(10000), &json!(8000))
    );
    let moves: Value = app
        .get_as(
            &admin.access_token,
            &format!("/api/billing/invoices/{id}/payments"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(moves["payments"][0]["status"], "PARTIALLY_REFUNDED");
    assert_eq!(moves["credit_notes"].as_array().unwrap().len(), 3);
    let credit: Value = app
        .get_as(
            &admin.access_token,
            &format!("/api/billing/customers/{jane}/credit"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(credit["balances"][0]["balance_minor"], 5000);
    let note_id = cn["id"].as_str().unwrap();
    let res = app
        .get_as(
            &admin.access_token,
            &format!("/api/billing/credit-notes/{note_id}/pdf"),
        )
        .await;
    assert_eq!(res.status(), 200);
    let text = pdf_text(&res.bytes().await.unwrap());
    assert!(
        text.contains("CN-2026-000003") && text.contains("Downgrade") && text.contains("50.00 EUR"),
        "{text}"
    );
}

#[tokio::test]
async fn reverse_charge_inclusive_prices_and_zero_and_three_decimal_currencies() {
    let app = TestApp::start().await;
    let admin = billing_admin(&app, "acme").await;
    put_settings(
        &app,
        &admin,
        json!({"country": "DE", "tax_mode": "INCLUSIVE", "tax_rates": {"DE": "0.19", "FR": "0.20", "JP": "0.10"}}),
    )
    .await;
    let pierre = customer(
        &app,
        &admin,
        "pierre@example.fr",
        "FR",
        Some("FR12345678901"),
    )
    .await;
    let inv = draft(
        &app,
        &admin,
        json!({"customer_id": pierre, "lines": [{"kind": "ITEM", "description": "VPS", "quantity": "1", "unit_price": "120.00"}]}),
    )
    .await;
    let issued: Value = issue(&app, &admin, inv["id"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&issued["tax_minor"], &issued["total_minor"]),
        (&json!(0), &json!(12000))
    );
    assert!(
        issued["notes"][0]
            .as_str()
            .unwrap()
            .starts_with("Reverse charge")
    );

    let kenji = customer(&app, &admin, "kenji@example.jp", "JP", None).await;
    let yen = draft(
        &app,
        &admin,
        json!({"customer_id": kenji, "currency": "JPY", "lines": [{"kind": "ITEM", "description": "VPS", "quantity": "1", "unit_price": "1100"}]}),
    )
    .await;
    assert_eq!(
        (
            &yen["subtotal_minor"],
            &yen["tax_minor"],
            &yen["total_minor"]
        ),
        (&json!(1000), &json!(100), &json!(1100))
    );
    let dinar = draft(
        &app,
        &admin,
        json!({"customer_id": kenji, "currency": "KWD", "lines": [{"kind": "ITEM", "description": "VPS", "quantity": "2", "unit_price": "1.2345"}]}),
    )
    .await;
    assert_eq!(dinar["total_minor"], 2469);
    assert_eq!(dinar["tax_minor"], 224);
}

#[tokio::test]
async fn an_unpaid_orders_invoice_starts_provisioning_when_paid() {
    let app = TestApp::start().await;
    let admin = billing_admin(&app, "acme").await;
    let product: Value = app
        .post_as(
            &admin.access_token,
            "/api/billing/products",
            json!({"name": "Web Pro", "slug": "web-pro", "category": "HOSTING", "billing_model": "RECURRING",
                   "status": "ACTIVE", "visibility": "PUBLIC", "base_currency": "EUR",
                   "provisioning_template": {"type": "HOSTING", "dns_zone": true, "mailboxes": 1}}),
        )
        .await
        .json()
        .await
        .unwrap();
    let product = product["id"].as_str().unwrap().to_owned();
    app.post_as(
        &admin.access_token,
        &format!("/api/billing/products/{product}/prices"),
        json!({"period": "MONTHLY", "currency": "EUR", "amount_minor": 1500, "setup_fee_minor": 500}),
    )
    .await;
    let res = app
        .post_order(
            "acme",
            &app.webhook_secret("acme"),
            "order-1",
            &json!({"customer": {"email": "c@example.org", "name": "C", "country": "DE"},
                    "items": [{"product_id": product, "period": "MONTHLY", "domain": "example-1.test"}],
                    "currency": "EUR"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let placed: Value = res.json().await.unwrap();
    assert_eq!(placed["status"], "PENDING_PAYMENT");
    assert_eq!(placed["invoice_number"], "INV-2026-000001");
    let order = placed["order_id"].as_str().unwrap();
    let invoice = placed["invoice_id"].as_str().unwrap();
    let inv = get_invoice(&app, &admin, invoice).await;
    assert_eq!(inv["total_minor"], 2000);
    assert_eq!(
        inv["lines"].as_array().unwrap().len(),
        2,
        "the period and the setup fee"
    );
    let steps = |order: Value| order["items"][0]["steps"].as_array().unwrap().len();
    let before: Value = app
        .get_as(&admin.access_token, &format!("/api/orders/{order}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(steps(before), 0, "nothing is provisioned before payment");
    // The customer sees the issued invoice as theirs.
    assert_eq!(pay(&app, &admin, invoice, 1500).await.status(), 201);
    let half: Value = app
        .get_as(&admin.access_token, &format!("/api/orders/{order}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(half["status"], "PENDING_PAYMENT");
    let res = pay(&app, &admin, invoice, 500).await;
    assert_eq!(res.json::<Value>().await.unwrap()["invoice_status"], "PAID");
    let after: Value = app
        .get_as(&admin.access_token, &format!("/api/orders/{order}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["status"], "PAID");
    assert_eq!(steps(after), 4, "zone, site, mailboxes, activation");
}

#[tokio::test]
async fn a_replayed_idempotency_key_records_one_payment() {
    let app = TestApp::start().await;
    let admin = billing_admin(&app, "acme").await;
    let jane = customer(&app, &admin, "jane@example.de", "DE", None).await;
    let inv = draft(
        &app,
        &admin,
        json!({"customer_id": jane, "lines": [{"kind": "ITEM", "description": "Server", "quantity": "1", "unit_price": "100.00"}]}),
    )
    .await;
    let id = inv["id"].as_str().unwrap();
    issue(&app, &admin, id).await;
    let send = |amount: i64| {
        app.client
            .post(app.url(&format!("/api/billing/invoices/{id}/pay")))
            .bearer_auth(&admin.access_token)
            .header("idempotency-key", "pay-1")
            .json(&json!({"amount_minor": amount, "provider": "MANUAL"}))
            .send()
    };
    let first = send(4000).await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = send(4000).await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let other = send(5000).await.unwrap();
    assert_eq!(other.status(), 422);
    assert_eq!(
        other.json::<Value>().await.unwrap()["code"],
        "idempotency_key_reused"
    );
    let inv = get_invoice(&app, &admin, id).await;
    assert_eq!(inv["paid_minor"], 4000, "one payment, whatever the retries");
}

#[tokio::test]
async fn an_order_written_off_or_free_goes_ahead_like_a_paid_one() {
    let app = TestApp::start().await;
    let admin = billing_admin(&app, "acme").await;
    let product = |slug: &'static str, amount: i64| {
        let app = &app;
        let token = admin.access_token.clone();
        async move {
            let p: Value = app
                .post_as(
                    &token,
                    "/api/billing/products",
                    json!({"name": slug, "slug": slug, "category": "HOSTING", "billing_model": "RECURRING",
                           "status": "ACTIVE", "visibility": "PUBLIC", "base_currency": "EUR",
                           "provisioning_template": {"type": "HOSTING", "dns_zone": true, "mailboxes": 0}}),
                )
                .await
                .json()
                .await
                .unwrap();
            let id = p["id"].as_str().unwrap().to_owned();
            app.post_as(
                &token,
                &format!("/api/billing/products/{id}/prices"),
                json!({"period": "MONTHLY", "currency": "EUR", "amount_minor": amount}),
            )
            .await;
            id
        }
    };
    let paid_product = product("web", 1500).await;
    let free_product = product("free", 0).await;
    let order = |key: &'static str,
                 product: String,
                 domain: &'static str,
                 payment: Option<Value>| {
        let app = &app;
        async move {
            let mut body = json!({"customer": {"email": "c@example.org", "name": "C", "country": "DE"},
                    "items": [{"product_id": product, "period": "MONTHLY", "domain": domain}],
                    "currency": "EUR"});
            if let Some(p) = payment {
                body["payment"] = p;
            }
            let res = app
                .post_order("acme", &app.webhook_secret("acme"), key, &body)
                .await;
            assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
            res.json::<Value>().await.unwrap()
        }
    };
    // Free, and the site says paid: settled on issue, provisioned.
    let free = order(
        "free-1",
        free_product,
        "free.test",
        Some(json!({"status": "PAID", "provider": "stripe", "reference": "pi_free", "amount_minor": 0})),
    )
    .await;
    assert_eq!(free["status"], "PAID");
    assert_eq!(free["items"][0]["steps"].as_array().unwrap().len(), 3);
    // Unpaid, then written off in full by a credit note: provisioned too.
    let placed = order("owed-1", paid_product, "owed.test", None).await;
    let invoice = placed["invoice_id"].as_str().unwrap();
    let res = app
        .post_as(
            &admin.access_token,
            &format!("/api/billing/invoices/{invoice}/credit-notes"),
            json!({"amount_minor": 1500, "disposition": "REDUCE_BALANCE", "reason": "launch offer"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let order_id = placed["order_id"].as_str().unwrap();
    let after: Value = app
        .get_as(&admin.access_token, &format!("/api/orders/{order_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["status"], "PAID");
    assert_eq!(after["items"][0]["steps"].as_array().unwrap().len(), 3);
}
