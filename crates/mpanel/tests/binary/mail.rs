//! `mpanel serve` with `smtp_url`: the password in it never reaches the
//! log, and an issued invoice is delivered by the process's own workers
//! (the `notify.email` job kind is registered) through the harness's
//! Postfix relay (`SMTP_RELAY_PORT`, started by `bash scripts/test.sh`).

use serde_json::{Value, json};

use crate::support::*;

fn relay_port() -> String {
    std::env::var("SMTP_RELAY_PORT").unwrap_or_else(|_| {
        panic!("SMTP_RELAY_PORT is not set: run the tests under `bash scripts/test.sh` (it starts the mail relay)")
    })
}

#[test]
fn the_smtp_password_is_never_logged() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Running::start(mpanel(
        dir.path(),
        &["serve"],
        &[
            ("MPANEL_LISTEN", "127.0.0.1:0"),
            ("MPANEL_SMTP_URL", "smtps://mailer:smtp-pw-0451@127.0.0.1:1"),
        ],
    ));
    let line = server.wait_for_line(|l| l.contains("e-mail is sent through"));
    assert!(line.contains("smtps://mailer:***@127.0.0.1:1"), "{line}");
    let (status, body) = get(&server.address(), "/api/ready", None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"email\":\"OK\""), "{body}");
    server.signal("TERM");
    assert_eq!(server.wait_exit(), 0);
    assert!(!server.log().contains("smtp-pw-0451"), "{}", server.log());
}

async fn call(addr: &str, bearer: &str, path: &str, body: Option<Value>) -> Value {
    let client = http_client();
    let url = format!("http://{addr}{path}");
    let req = match body {
        Some(b) => client.post(url).json(&b),
        None => client.get(url),
    };
    let res = req.bearer_auth(bearer).send().await.unwrap();
    let status = res.status();
    let value: Value = res.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {value}");
    value
}

/// Signs in, issues an invoice to a new customer and waits (bounded) for
/// the outbox to say SENT.
async fn issue_and_wait_for_mail(addr: &str) -> Value {
    let login: Value = http_client()
        .post(format!("http://{addr}/api/auth/login"))
        .json(&json!({"tenant": "default", "email": "admin@mail.test", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = login["access_token"].as_str().unwrap().to_owned();
    let to = format!("bin-{}@customer.test", uuid::Uuid::now_v7().simple());
    let customer = call(
        addr,
        &bearer,
        "/api/customers",
        Some(json!({"email": to, "name": "Jane", "country": "DE"})),
    )
    .await;
    let draft = call(addr, &bearer, "/api/billing/invoices", Some(json!({
        "customer_id": customer["id"],
        "lines": [{"kind": "ITEM", "description": "Hosting", "quantity": "1", "unit_price": "5.00"}]})))
    .await;
    let path = format!(
        "/api/billing/invoices/{}/issue",
        draft["id"].as_str().unwrap()
    );
    call(addr, &bearer, &path, Some(json!({}))).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = call(addr, &bearer, "/api/notifications/outbox", None).await;
        let row = page["items"][0].clone();
        if row["status"] == "SENT" {
            return row;
        }
        assert!(Instant::now() < deadline, "not sent: {row}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn serve_delivers_an_issued_invoice_through_smtp() {
    let db = test_database();
    let dir = tempfile::tempdir().unwrap();
    let smtp = format!("smtp://127.0.0.1:{}", relay_port());
    let mut server = Running::start(mpanel(
        dir.path(),
        &["serve"],
        &[
            ("MPANEL_DATABASE_URL", db.url()),
            ("MPANEL_LISTEN", "127.0.0.1:0"),
            ("MPANEL_SMTP_URL", smtp.as_str()),
            ("MPANEL_MAIL_FROM", "Billing <billing@mpanel-bin.test>"),
            ("MPANEL_BOOTSTRAP_ADMIN_EMAIL", "admin@mail.test"),
            ("MPANEL_BOOTSTRAP_ADMIN_PASSWORD", "correct horse battery"),
        ],
    ));
    let addr = server.address();
    let row = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(issue_and_wait_for_mail(&addr));
    assert_eq!(row["attempts"], 1);
    assert!(
        row["message_id"]
            .as_str()
            .unwrap()
            .ends_with("@mpanel-bin.test>"),
        "{row}"
    );
    server.signal("TERM");
    assert_eq!(server.wait_exit(), 0);
}
