//! When a job does not succeed: retries, waits, dead jobs, kinds without a
//! handler and lapsed leases.

use super::*;

#[tokio::test]
async fn failures_retry_with_back_off_on_the_clock_then_die() {
    let h = harness().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let mut registry = Registry::new();
    registry.register("flaky", move |ctx, _: serde_json::Value| {
        let runs = counter.clone();
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            Err(JobError::Retry(format!(
                "upstream refused (attempt {})",
                ctx.attempt
            )))
        }
    });
    let options = JobOptions {
        max_attempts: 3,
        ..JobOptions::default()
    };
    let (id, _) = h.enqueue("flaky", serde_json::json!({}), &options).await;
    let pool = h.start(registry, config());

    let job = h.wait_for_state(id, JobState::Failed).await;
    assert_eq!(job.attempts, 1);
    let wait = job.run_at - h.clock.now();
    assert!(
        wait >= time::Duration::seconds(1) && wait <= time::Duration::seconds(2),
        "{wait}"
    );
    assert_eq!(
        job.last_error.as_deref(),
        Some("upstream refused (attempt 1)")
    );

    // Not before its time: the clock has not moved, so it stays failed.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    h.clock.advance(time::Duration::seconds(2));
    let job = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let job = h.store.job(id).await.unwrap().expect("the job");
            if job.attempts == 2 && job.state == JobState::Failed {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    let wait = job.run_at - h.clock.now();
    assert!(
        wait >= time::Duration::seconds(2) && wait <= time::Duration::seconds(4),
        "second back-off {wait}"
    );

    h.clock.advance(time::Duration::seconds(4));
    let job = h.wait_for_state(id, JobState::Dead).await;
    assert_eq!(job.attempts, 3);
    assert_eq!(
        job.last_error.as_deref(),
        Some("upstream refused (attempt 3)")
    );
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    pool.stop().await;
}

#[tokio::test]
async fn a_waiting_job_comes_back_at_its_time_without_spending_attempts() {
    let h = harness().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let mut registry = Registry::new();
    registry.register("patient", move |_ctx, _: serde_json::Value| {
        let runs = counter.clone();
        async move {
            // Waits three times, then finishes: more runs than attempts.
            if runs.fetch_add(1, Ordering::SeqCst) < 3 {
                Err(JobError::Wait {
                    reason: "waiting for the customer".into(),
                    retry_in: time::Duration::minutes(5),
                })
            } else {
                Ok(())
            }
        }
    });
    let options = JobOptions {
        max_attempts: 1,
        ..JobOptions::default()
    };
    let (id, _) = h.enqueue("patient", serde_json::json!({}), &options).await;
    let pool = h.start(registry, config());
    for round in 1..=3 {
        let job = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let job = h.store.job(id).await.unwrap().expect("the job");
                // Put back to wait: pending again, at a later time (a job
                // just claimed can read as pending with its old time).
                if runs.load(Ordering::SeqCst) == round
                    && job.state == JobState::Pending
                    && job.run_at > h.clock.now()
                {
                    return job;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
        assert_eq!(job.attempts, 0, "a wait spends no attempt");
        assert_eq!(job.run_at - h.clock.now(), time::Duration::minutes(5));
        assert_eq!(job.last_error.as_deref(), Some("waiting for the customer"));
        // Not before its time.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(runs.load(Ordering::SeqCst), round);
        h.clock.advance(time::Duration::minutes(5));
    }
    let job = h.wait_for_state(id, JobState::Completed).await;
    assert_eq!(job.attempts, 1);
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    pool.stop().await;
}

#[tokio::test]
async fn bad_payloads_and_permanent_errors_die_at_once_and_the_worker_goes_on() {
    let h = harness().await;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut registry = Registry::new();
    registry.register("greet", move |_ctx, g: Greet| {
        let done = done_tx.clone();
        async move {
            if g.name == "never" {
                return Err(JobError::Permanent("this account no longer exists".into()));
            }
            let _ = done.send(g.name);
            Ok(())
        }
    });
    registry.register("boom", |_ctx, _: serde_json::Value| async {
        if std::hint::black_box(true) {
            panic!("handler bug");
        }
        Ok(())
    });
    let (bad, _) = h
        .enqueue(
            "greet",
            serde_json::json!({"nom": 1}),
            &JobOptions::default(),
        )
        .await;
    let (permanent, _) = h
        .enqueue(
            "greet",
            serde_json::json!({"name": "never"}),
            &JobOptions::default(),
        )
        .await;
    let one_try = JobOptions {
        max_attempts: 1,
        ..JobOptions::default()
    };
    let (panics, _) = h.enqueue("boom", serde_json::json!({}), &one_try).await;
    let (good, _) = h
        .enqueue(
            "greet",
            serde_json::json!({"name": "ok"}),
            &JobOptions::default(),
        )
        .await;
    let pool = h.start(registry, config());

    assert_eq!(done_rx.recv().await.unwrap(), "ok");
    h.wait_for_state(good, JobState::Completed).await;
    let job = h.wait_for_state(bad, JobState::Dead).await;
    assert!(job.last_error.unwrap().contains("cannot be decoded"));
    let job = h.wait_for_state(permanent, JobState::Dead).await;
    assert_eq!(
        job.last_error.as_deref(),
        Some("this account no longer exists")
    );
    let job = h.wait_for_state(panics, JobState::Dead).await;
    assert_eq!(job.last_error.as_deref(), Some("the handler panicked"));
    pool.stop().await;
}

#[tokio::test]
async fn a_kind_a_worker_does_not_know_is_left_for_one_that_does() {
    let h = harness().await;
    let one_try = JobOptions {
        max_attempts: 1,
        ..JobOptions::default()
    };
    let (id, _) = h
        .enqueue("newer.kind", serde_json::json!({}), &one_try)
        .await;
    // An older worker, during an upgrade: it has no handler for the kind.
    let older = h.start(Registry::new(), config());
    let job = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let job = h.store.job(id).await.unwrap().expect("the job");
            if job.state == JobState::Pending && job.last_error.is_some() {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the older worker put the job back");
    older.stop().await;
    assert_eq!(job.attempts, 0, "no attempt spent");
    assert_eq!(job.run_at - h.clock.now(), UNKNOWN_KIND_RETRY);
    assert!(job.last_error.unwrap().contains("no handler"));
    // A worker of the newer release runs it once it is due again.
    let mut newer = Registry::new();
    newer.register("newer.kind", |_ctx, _: serde_json::Value| async { Ok(()) });
    let pool = h.start(newer, config());
    h.clock.advance(UNKNOWN_KIND_RETRY);
    let job = h.wait_for_state(id, JobState::Completed).await;
    assert_eq!(job.attempts, 1);
    pool.stop().await;
    // A kind no worker takes for a day is dead, for an operator to see.
    let (id, _) = h
        .enqueue("dropped.kind", serde_json::json!({}), &one_try)
        .await;
    h.clock.advance(UNKNOWN_KIND_GIVE_UP);
    let older = h.start(Registry::new(), config());
    let job = h.wait_for_state(id, JobState::Dead).await;
    older.stop().await;
    assert!(job.last_error.unwrap().contains("more than a day ago"));
}

#[tokio::test]
async fn a_job_whose_lease_lapsed_is_claimed_again() {
    let h = harness().await;
    let (id, _) = h
        .enqueue(
            "greet",
            serde_json::json!({"name": "again"}),
            &JobOptions::default(),
        )
        .await;
    // A worker claims it and vanishes.
    let now = h.clock.now();
    let claimed = h
        .store
        .claim_jobs("ghost", 10, now, now + time::Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(
        h.store
            .claim_jobs("other", 10, now, now)
            .await
            .unwrap()
            .is_empty(),
        "held under the lease"
    );
    assert_eq!(
        h.store.requeue_expired_leases(now).await.unwrap(),
        0,
        "the lease holds"
    );

    h.clock.advance(time::Duration::seconds(31));
    assert_eq!(
        h.store.requeue_expired_leases(h.clock.now()).await.unwrap(),
        1
    );
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut registry = Registry::new();
    registry.register("greet", move |ctx, g: Greet| {
        let done = done_tx.clone();
        async move {
            let _ = done.send((g.name, ctx.attempt));
            Ok(())
        }
    });
    let pool = h.start(registry, config());
    assert_eq!(done_rx.recv().await.unwrap(), ("again".into(), 2));
    h.wait_for_state(id, JobState::Completed).await;
    pool.stop().await;
    // The vanished worker cannot complete it behind the new one's back.
    assert_eq!(
        h.store
            .complete_jobs("ghost", &[id], h.clock.now())
            .await
            .unwrap(),
        0
    );
}
