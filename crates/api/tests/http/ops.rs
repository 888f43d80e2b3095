//! The job queue as operators see it over HTTP.

use mpanel_domain::Clock;
use mpanel_domain::identity::Role;
use mpanel_store::jobs::NewJob;
use serde_json::{Value, json};

use crate::support::{TestApp, problem};

async fn enqueue(app: &TestApp, kind: &str, queue: &str) -> String {
    let job = NewJob {
        queue: queue.into(),
        kind: kind.into(),
        payload: json!({"order": 7}),
        priority: 0,
        run_at: app.clock.now(),
        max_attempts: 3,
        unique_key: None,
    };
    let (id, _) = app.store.enqueue(&job, app.clock.now()).await.unwrap();
    id.to_string()
}

#[tokio::test]
async fn operators_list_cancel_and_retry_jobs_and_see_queue_counts() {
    let app = TestApp::start().await;
    let ops = app.account("acme", "ops@acme.test", Role::SuperAdmin).await;
    let a = enqueue(&app, "dns.create_zone", "provisioning").await;
    let _b = enqueue(&app, "dns.create_zone", "provisioning").await;
    let _c = enqueue(&app, "mail.create_mailbox", "provisioning").await;

    let page: Value = app
        .get_as(
            &ops.access_token,
            "/api/ops/jobs?state=PENDING&kind=dns.create_zone",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["items"][0]["state"], "PENDING");

    app.clock.advance(time::Duration::seconds(90));
    let queues: Value = app
        .get_as(&ops.access_token, "/api/ops/queues")
        .await
        .json()
        .await
        .unwrap();
    let dns = queues["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["kind"] == "dns.create_zone")
        .unwrap();
    assert_eq!(dns["count"], 2);
    assert_eq!(dns["queue"], "provisioning");
    assert_eq!(dns["oldest_pending_age_secs"], 90);

    let res = app
        .post_as(
            &ops.access_token,
            &format!("/api/ops/jobs/{a}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["state"], "CANCELLED");
    let res = app
        .post_as(
            &ops.access_token,
            &format!("/api/ops/jobs/{a}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 409);
    let body = problem(res).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("PENDING or FAILED"),
        "{body}"
    );

    let res = app
        .post_as(
            &ops.access_token,
            &format!("/api/ops/jobs/{a}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let job: Value = res.json().await.unwrap();
    assert_eq!(job["state"], "PENDING");
    assert_eq!(job["attempts"], 0);

    let res = app
        .post_as(
            &ops.access_token,
            &format!("/api/ops/jobs/{a}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 409, "a pending job is not retried");

    let audit: Value = app
        .get_as(&ops.access_token, "/api/audit?target=job")
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
    assert_eq!(actions, vec!["job.retry", "job.cancel"]);

    let missing = uuid::Uuid::now_v7();
    assert_eq!(
        app.get_as(&ops.access_token, &format!("/api/ops/jobs/{missing}"))
            .await
            .status(),
        404
    );
    assert_eq!(
        app.get_as(&ops.access_token, "/api/ops/jobs?state=SLEEPING")
            .await
            .status(),
        422
    );
}

#[tokio::test]
async fn operators_never_see_secrets_in_job_payloads() {
    let app = TestApp::start().await;
    let ops = app.account("acme", "ops@acme.test", Role::SuperAdmin).await;
    let job = NewJob {
        queue: "provisioning".into(),
        kind: "hosting.account.sftp".into(),
        payload: json!({"hosting_account_id": "a1", "password_hash": "$6$salt$hash",
                        "keys": ["ssh-ed25519 AAAA"]}),
        priority: 0,
        run_at: app.clock.now(),
        max_attempts: 3,
        unique_key: None,
    };
    app.store.enqueue(&job, app.clock.now()).await.unwrap();
    let page: Value = app
        .get_as(&ops.access_token, "/api/ops/jobs?kind=hosting.account.sftp")
        .await
        .json()
        .await
        .unwrap();
    let payload = &page["items"][0]["payload"];
    assert_eq!(payload["password_hash"], "[redacted]", "{payload}");
    assert_eq!(payload["hosting_account_id"], "a1");
    assert!(!page.to_string().contains("$6$salt$hash"));
}
