//! `mpanel worker` sends webhook deliveries: an event queued in the
//! database reaches a receiver on loopback; a 500 is retried on the
//! schedule (5 s later) without spending the job's attempts.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mpanel_domain::WebhookEndpointId;
use mpanel_domain::webhooks::{DeliveryStatus, EndpointStatus, EventType, WebhookSecret};
use mpanel_store::webhooks::WebhookEndpointRecord;

use crate::support::*;

/// What the receiver heard: each request's header lines (lower case) and body.
type Heard = Arc<Mutex<Vec<(Vec<String>, String)>>>;

/// Records requests; answers 500 first, then 204.
fn receiver() -> (String, Heard) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end().to_ascii_lowercase();
                if line.is_empty() {
                    break;
                }
                if let Some(n) = line.strip_prefix("content-length:") {
                    length = n.trim().parse().unwrap();
                }
                headers.push(line);
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut seen = record.lock().unwrap();
            let status = if seen.is_empty() {
                "500 Oops"
            } else {
                "204 No Content"
            };
            seen.push((headers, String::from_utf8(body).unwrap()));
            drop(seen);
            write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
            .unwrap();
        }
    });
    (url, seen)
}

#[test]
fn the_worker_delivers_a_webhook_and_retries_a_failed_attempt_on_schedule() {
    let db = test_database();
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("MPANEL_DATABASE_URL", db.url()),
        ("MPANEL_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8"),
    ];
    let args = ["admin", "create-tenant", "--slug", "acme", "--name", "Acme"];
    let out = run(dir.path(), &args, &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (url, seen) = receiver();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let secret = WebhookSecret::from_key([9; 32]);
    let delivery = rt.block_on(async {
        let sb = mpanel_store::secret_box::SecretBox::from_base64(TEST_SECRETS_KEY).unwrap();
        let store = mpanel_store::Store::connect(db.url(), &mpanel_store::PoolSettings::default())
            .await
            .unwrap()
            .with_secrets(sb.clone());
        let tenant = store.tenant_by_slug("acme").await.unwrap().unwrap();
        let now = time::OffsetDateTime::now_utc();
        let id = WebhookEndpointId::new();
        let binding = mpanel_store::secret_box::binding("webhook_endpoint", &id.to_string());
        let endpoint = WebhookEndpointRecord {
            id,
            tenant_id: tenant.id,
            url: url.clone(),
            description: String::new(),
            event_types: vec![EventType::InvoicePaid],
            secret: sb.seal(secret.expose().as_bytes(), &binding).unwrap(),
            previous_secret: None,
            previous_secret_until: None,
            status: EndpointStatus::Active,
            failing_since: None,
            last_failure_at: None,
            disabled_reason: None,
            created_at: now,
            updated_at: now,
        };
        let mut tx = store.begin().await.unwrap();
        tx.insert_webhook_endpoint(&endpoint).await.unwrap();
        let data = serde_json::json!({"id": "inv_1", "number": "INV-2026-000001"});
        mpanel_services::webhooks::emit(&mut tx, tenant.id, EventType::InvoicePaid, data, now)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let listed = store
            .list_webhook_deliveries(tenant.id, id, None, 10)
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        (store, listed[0].id)
    });
    let (store, delivery_id) = delivery;

    // A proxy in the environment is not used: it would resolve the host
    // itself, past the address check (this one goes nowhere).
    let mut cmd = mpanel(dir.path(), &["worker"], &env);
    for var in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"] {
        cmd.env(var, "http://127.0.0.1:9");
    }
    let mut worker = Running::start(cmd);
    worker.wait_for_line(|l| l.contains("worker started"));
    let started = Instant::now();
    while seen.lock().unwrap().len() < 2 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
    }
    worker.signal("TERM");
    assert_eq!(worker.wait_exit(), 0);

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one failure, one success: {seen:?}");
    let id_header = format!("webhook-id: msg_{delivery_id}");
    for (headers, body) in &seen {
        assert!(headers.contains(&id_header), "{headers:?}");
        assert!(
            headers
                .iter()
                .any(|h| h.starts_with("webhook-signature: v1,"))
        );
        assert!(body.contains("\"invoice.paid\""), "{body}");
    }
    let done = rt
        .block_on(store.webhook_delivery(delivery_id))
        .unwrap()
        .unwrap();
    assert_eq!(done.status, DeliveryStatus::Succeeded);
    assert_eq!(done.attempts, 2);
    let first = done.created_at;
    let gap = done.last_attempt_at.unwrap() - first;
    assert!(gap >= time::Duration::seconds(5), "retried after {gap}");
}
