//! The e-mail outbox and the job queue's keyed jobs.

use super::*;

/// The e-mail outbox: a message written in a transaction, its headers
/// fixed once, attempts counted, pages by status; a tenant's DKIM key
/// stored once per domain.
#[tokio::test]
async fn the_outbox_and_dkim_keys_keep_what_each_attempt_said() {
    use mpanel_domain::notify::{EmailKind, EmailStatus};
    use mpanel_domain::{DkimKeyId, EmailId};
    use mpanel_store::notify::{DkimKeyRecord, EmailFilter, EmailOutcome, EmailRecord};

    let (_db, store) = migrated().await;
    let at = datetime!(2026-11-21 10:00 UTC);
    let tenant = TenantId::new();
    let mut tx = store.begin().await.unwrap();
    tx.insert_tenant(tenant, &acme(), at).await.unwrap();
    let id = EmailId::new();
    tx.insert_email(&EmailRecord {
        id,
        tenant_id: tenant,
        kind: EmailKind::InvoiceIssued,
        recipient: "jane@example.com".into(),
        subject: "Invoice".into(),
        text_body: "text".into(),
        html_body: "<p>html</p>".into(),
        attachments: "[]".into(),
        link_sealed: None,
        sender: None,
        sender_name: None,
        message_id: None,
        status: EmailStatus::Queued,
        attempts: 0,
        last_error: None,
        created_at: at,
        updated_at: at,
        sent_at: None,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let first = store
        .fix_email_headers(tenant, id, Some("A"), "a@one.test", "<1@one.test>")
        .await
        .unwrap()
        .expect("the message");
    let again = store
        .fix_email_headers(tenant, id, Some("B"), "b@two.test", "<2@two.test>")
        .await
        .unwrap()
        .expect("the message");
    assert_eq!(again.message_id.as_deref(), Some("<1@one.test>"));
    assert_eq!(
        (&again.sender, &again.sender_name),
        (&first.sender, &Some("A".to_owned()))
    );

    let retry = EmailOutcome {
        status: EmailStatus::Queued,
        attempted: true,
        last_error: Some("451 later".into()),
        sent_at: None,
    };
    store
        .record_email_outcome(tenant, id, &retry, at)
        .await
        .unwrap();
    // Only one attempt claims a QUEUED message (QUEUED → SENDING).
    assert!(store.claim_email(tenant, id, at).await.unwrap());
    assert!(!store.claim_email(tenant, id, at).await.unwrap());
    assert_eq!(
        store
            .email(tenant, id)
            .await
            .unwrap()
            .expect("the message")
            .status,
        EmailStatus::Sending
    );
    let sent = EmailOutcome {
        status: EmailStatus::Sent,
        attempted: true,
        last_error: None,
        sent_at: Some(at),
    };
    store
        .record_email_outcome(tenant, id, &sent, at)
        .await
        .unwrap();
    let row = store.email(tenant, id).await.unwrap().expect("the message");
    assert_eq!(
        (row.status, row.attempts, row.sent_at),
        (EmailStatus::Sent, 2, Some(at))
    );
    // An outcome recorded late never undoes SENT.
    let late = EmailOutcome {
        status: EmailStatus::Failed,
        attempted: true,
        last_error: Some("late".into()),
        sent_at: None,
    };
    store
        .record_email_outcome(tenant, id, &late, at)
        .await
        .unwrap();
    let row = store.email(tenant, id).await.unwrap().expect("the message");
    assert_eq!(
        (row.status, row.attempts, row.last_error),
        (EmailStatus::Sent, 2, None)
    );
    assert!(!store.claim_email(tenant, id, at).await.unwrap());

    let page = |status| EmailFilter {
        status: Some(status),
        limit: 10,
        ..EmailFilter::default()
    };
    let of_kind = |kind| EmailFilter {
        kind: Some(kind),
        limit: 10,
        ..EmailFilter::default()
    };
    for (kind, n) in [
        (EmailKind::InvoiceIssued, 1),
        (EmailKind::InvoiceReminder, 0),
    ] {
        let found = store.list_emails(tenant, &of_kind(kind)).await.unwrap();
        assert_eq!(found.len(), n, "{kind:?}");
    }
    assert_eq!(
        store
            .list_emails(tenant, &page(EmailStatus::Sent))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .list_emails(tenant, &page(EmailStatus::Failed))
            .await
            .unwrap()
            .is_empty()
    );
    // Another tenant's message is not there for this one.
    assert!(store.email(TenantId::new(), id).await.unwrap().is_none());

    let key = |selector: &str| DkimKeyRecord {
        id: DkimKeyId::new(),
        tenant_id: tenant,
        domain: "one.test".into(),
        selector: selector.into(),
        private_key_sealed: "v1:sealed".into(),
        public_key: "QUJD".into(),
        created_at: at,
    };
    let mut tx = store.begin().await.unwrap();
    assert!(tx.insert_dkim_key(&key("mpfirst")).await.unwrap());
    assert!(
        !tx.insert_dkim_key(&key("mpsecond")).await.unwrap(),
        "one per domain"
    );
    tx.commit().await.unwrap();
    let stored = store.dkim_key(tenant, "one.test").await.unwrap().unwrap();
    assert_eq!(stored.selector, "mpfirst");
    assert!(store.dkim_key(tenant, "two.test").await.unwrap().is_none());
}

/// Jobs about one thing under keys that share a prefix: an earlier live
/// one is found by prefix and by key (another thing's, whose key only
/// begins the same, is not), a finished one no longer counts, and a newer
/// request cancels the ones still waiting but not one running.
#[tokio::test]
async fn earlier_jobs_under_a_key_are_found_and_only_waiting_ones_cancelled() {
    use mpanel_store::jobs::NewJob;
    let (_db, store) = migrated().await;
    let now = datetime!(2027-01-01 00:00 UTC);
    let job = |key: &str| NewJob {
        queue: "default".into(),
        kind: "pod.reboot".into(),
        payload: serde_json::json!({}),
        priority: 0,
        run_at: now,
        max_attempts: 3,
        unique_key: Some(key.into()),
    };
    let (first, _) = store.enqueue(&job("pod.reboot:P1:1"), now).await.unwrap();
    let (before, _) = store.enqueue(&job("pod.reboot:P10:0"), now).await.unwrap();
    let (second, _) = store.enqueue(&job("pod.reboot:P1:2"), now).await.unwrap();
    let (other, _) = store.enqueue(&job("pod.reboot:P10:1"), now).await.unwrap();
    let under = |prefix: &'static str, job| {
        let store = store.clone();
        async move { store.earlier_job_under(prefix, job).await.unwrap() }
    };
    assert!(!under("pod.reboot:P1:", first).await);
    assert!(under("pod.reboot:P1:", second).await);
    assert!(under("pod.reboot:P1:1", second).await, "a whole key");
    assert!(!under("pod.reboot:P1:2", second).await, "not itself");
    assert!(under("pod.reboot:P10:", other).await, "P10's earlier job");
    assert!(
        !under("pod.reboot:P10:", before).await,
        "P1's are not P10's"
    );
    assert!(
        under("pod.reboot:P1", other).await,
        "a shorter prefix takes both"
    );
    let keyed = |key: &str| vec![key.to_owned()];
    assert!(
        store
            .earlier_job_unfinished(&keyed("pod.reboot:P1:1"), second)
            .await
            .unwrap()
    );
    assert!(
        !store
            .earlier_job_unfinished(&keyed("pod.reboot:P1:2"), first)
            .await
            .unwrap()
    );

    // Running still counts; completed does not.
    let lease = now + time::Duration::minutes(5);
    let claimed = store.claim_jobs("w", 2, now, lease).await.unwrap();
    let ids: Vec<_> = claimed.iter().map(|c| c.id).collect();
    assert_eq!(ids, [first, before]);
    assert!(under("pod.reboot:P1:", second).await);
    store.complete_jobs("w", &[first], now).await.unwrap();
    assert!(
        !under("pod.reboot:P1:", second).await,
        "P10's running job is not P1's"
    );
    assert!(under("pod.reboot:P10:", other).await, "running");
    store.complete_jobs("w", &[before], now).await.unwrap();
    assert!(!under("pod.reboot:P10:", other).await);

    // A newer request cancels what waits under its key, not what runs.
    let claimed = store.claim_jobs("w", 1, now, lease).await.unwrap();
    assert_eq!(claimed[0].id, second);
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.cancel_waiting_jobs("pod.reboot:P1:2", now)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        tx.cancel_waiting_jobs("pod.reboot:P10:1", now)
            .await
            .unwrap(),
        1
    );
    tx.commit().await.unwrap();
    assert!(under("pod.reboot:P1", other).await, "the second still runs");
    store.complete_jobs("w", &[second], now).await.unwrap();
    assert!(
        !under("pod.reboot:P1", other).await,
        "no earlier job is live"
    );
}
