//! The job handlers this binary runs, and the worker pool and scheduler
//! that `serve` and `worker` start.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mpanel_domain::Clock;
use mpanel_jobs::{JobError, JobPayload, PoolConfig, Registry, Scheduler, WorkerPool};
use mpanel_store::Store;
use serde::{Deserialize, Serialize};

use crate::config::JobSettings;

mod certificates;
mod probe;
mod provisioning;
use probe::register_probe;
use provisioning::register_provisioning;

/// Every job kind and its handler. Features register theirs here.
pub fn registry(settings: &JobSettings, store: &Store, clock: &Arc<dyn Clock>) -> Registry {
    let mut registry = Registry::new();
    register_billing(&mut registry, store.clone(), clock.clone());
    register_autopay(&mut registry, settings, store.clone(), clock.clone());
    register_webhooks(&mut registry, settings, store.clone(), clock.clone());
    register_provisioning(
        &mut registry,
        mpanel_provision::saga::Provisioner {
            store: store.clone(),
            clock: clock.clone(),
            secrets: settings
                .secrets_key
                .clone()
                .or_else(|| store.secrets().cloned()),
            control: settings.domain_control.clone(),
            acme: settings.acme.clone(),
        },
    );
    register_notify(&mut registry, settings, store.clone(), clock.clone());
    register_platform_backup(&mut registry, settings, clock.clone());
    if let Some(log) = &settings.diagnostics_log {
        register_probe(&mut registry, log.clone());
    }
    registry
}

/// Runs the worker pool (and the scheduler) until `shutdown` resolves.
pub async fn run_workers(
    store: Store,
    clock: Arc<dyn Clock>,
    settings: &JobSettings,
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let config = PoolConfig {
        concurrency: settings.concurrency,
        batch_size: settings.batch_size,
        lease: settings.lease,
        retention: settings.retention,
        shutdown_grace: grace,
        ..PoolConfig::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let scheduler = Scheduler::new(store.clone(), clock.clone(), recurring(settings));
    let mut scheduler_stop = stop_rx.clone();
    let scheduler = tokio::spawn(scheduler.run(Duration::from_secs(1), async move {
        let _ = scheduler_stop.wait_for(|s| *s).await;
    }));
    let registry = registry(settings, &store, &clock);
    let pool = WorkerPool::new(store, clock, registry, config);
    let mut pool_stop = stop_rx;
    let pool = tokio::spawn(pool.run(async move {
        let _ = pool_stop.wait_for(|s| *s).await;
    }));
    shutdown.await;
    let _ = stop_tx.send(true);
    let _ = scheduler.await;
    pool.await??;
    Ok(())
}

/// `billing.mark_overdue`: records OVERDUE on open invoices past due (the
/// API already shows them so; this makes it a fact dunning can act on);
/// `billing.final_usage`: the last usage invoice of a subscription
/// cancelled now (staff, dunning).
fn register_billing(registry: &mut Registry, store: Store, clock: Arc<dyn Clock>) {
    let (retention_store, retention_clock) = (store.clone(), clock.clone());
    registry.handle(move |_ctx, _: Retention| {
        let (store, clock) = (retention_store.clone(), retention_clock.clone());
        async move {
            mpanel_services::security::retention::run(&store, clock.as_ref())
                .await
                .map(drop)
                .map_err(JobError::retry)
        }
    });
    let (run_store, run_clock) = (store.clone(), clock.clone());
    registry.handle(move |_ctx, _: BillingRun| {
        let (store, clock) = (run_store.clone(), run_clock.clone());
        async move {
            let report = mpanel_services::billing::scheduled::scheduled(&store, clock.as_ref())
                .await
                .map_err(JobError::retry)?;
            if report.tenants > 0 || !report.failed.is_empty() {
                tracing::info!(?report, "billing run");
            }
            match report.failed.first() {
                None => Ok(()),
                // Retried: the failed tenants' days were given back.
                Some(f) => Err(JobError::retry(format!(
                    "the billing run of {} tenant(s) failed, {}: {}",
                    report.failed.len(),
                    f.tenant,
                    f.error
                ))),
            }
        }
    });
    let (usage_store, usage_clock) = (store.clone(), clock.clone());
    registry.handle(
        move |_ctx, job: mpanel_services::billing::final_usage::FinalUsage| {
            let (store, clock) = (usage_store.clone(), usage_clock.clone());
            async move {
                mpanel_services::billing::final_usage::bill_final_usage(
                    &store,
                    clock.as_ref(),
                    &job,
                )
                .await
                .map_err(JobError::retry)
            }
        },
    );
    let (resize_store, resize_clock) = (store.clone(), clock.clone());
    registry.handle(
        move |_ctx, job: mpanel_services::billing::service_actions::Resize| {
            let (store, clock) = (resize_store.clone(), resize_clock.clone());
            async move {
                mpanel_services::billing::service_actions::apply_resize(
                    &store,
                    clock.as_ref(),
                    &job,
                )
                .await
                .map_err(JobError::retry)
            }
        },
    );
    registry.register(
        mpanel_services::billing::dunning::REMINDER_JOB,
        move |_ctx, reminder: serde_json::Value| async move {
            // The e-mail itself is an outbox message queued beside this
            // job (`notify.email`); this line stays for log shipping.
            tracing::info!(%reminder, "invoice reminder");
            Ok(())
        },
    );
    registry.handle(move |_ctx, _: MarkOverdue| {
        let (store, clock) = (store.clone(), clock.clone());
        async move {
            mpanel_services::billing::invoices::mark_overdue(&store, clock.as_ref())
                .await
                .map(drop)
                .map_err(JobError::retry)
        }
    });
}

/// `platform.backup`: the daily copy of mPanel's own database into
/// `backup_dir` (see `crate::scheduled_backup`). Registered on every
/// worker, so that a worker without `backup_dir` that claims one says why
/// instead of "no handler".
fn register_platform_backup(
    registry: &mut Registry,
    settings: &JobSettings,
    clock: Arc<dyn Clock>,
) {
    let backup = settings.platform_backup.clone().map(Arc::new);
    registry.handle(move |_ctx, _: PlatformBackup| {
        let (backup, clock) = (backup.clone(), clock.clone());
        async move {
            let Some(backup) = backup else {
                return Err(JobError::Permanent(
                    "backup_dir is not configured on the worker that took this job: set it on \
                     every worker"
                        .into(),
                ));
            };
            let (report, pruned) = crate::scheduled_backup::run(&backup, clock.now())
                .await
                .map_err(|e| JobError::Retry(format!("{e:#}")))?;
            tracing::info!(
                path = %report.path.display(),
                bytes = report.bytes,
                schema_version = report.schema_version,
                duration_ms = report.duration_ms,
                pruned = pruned.len(),
                "platform backup written"
            );
            Ok(())
        }
    });
}

/// `notify.email`: delivers one outbox message (see
/// `mpanel_services::notify::deliver`); `notify.invoice_copies`: writes
/// the messages of a billing run chunk's invoices;
/// `identity.password_reset`: sends a reset link when the account exists.
fn register_notify(
    registry: &mut Registry,
    settings: &JobSettings,
    store: Store,
    clock: Arc<dyn Clock>,
) {
    use mpanel_services::notify::{Mailer, deliver};
    let (reset_store, reset_clock) = (store.clone(), clock.clone());
    registry.handle(
        move |_ctx, job: mpanel_domain::identity::account_link::PasswordResetRequest| {
            let (store, clock) = (reset_store.clone(), reset_clock.clone());
            async move {
                mpanel_services::identity::password_reset::send(&store, clock.as_ref(), &job)
                    .await
                    .map_err(JobError::retry)
            }
        },
    );
    let (copies_store, copies_clock) = (store.clone(), clock.clone());
    registry.handle(
        move |_ctx, job: mpanel_services::notify::invoice_issued::InvoiceCopies| {
            let (store, clock) = (copies_store.clone(), copies_clock.clone());
            async move {
                mpanel_services::notify::invoice_issued::write_copies(&store, clock.as_ref(), &job)
                    .await
                    .map_err(JobError::retry)
            }
        },
    );
    let mailer = match Mailer::new(settings.mail.clone()) {
        Ok(mailer) => Arc::new(mailer),
        Err(err) => {
            // The configuration was checked at start; this cannot happen.
            tracing::error!(error = %err, "cannot build the SMTP transport: e-mail is not sent");
            return;
        }
    };
    registry.handle(move |ctx, job: mpanel_domain::notify::DeliverEmail| {
        let (store, clock, mailer) = (store.clone(), clock.clone(), mailer.clone());
        async move {
            let last = ctx.attempt >= ctx.max_attempts;
            deliver(&store, clock.as_ref(), &mailer, &job, last).await
        }
    });
}

/// `billing.autopay`: charges a saved card off-session (see
/// `mpanel_services::billing::autopay`).
fn register_autopay(
    registry: &mut Registry,
    settings: &JobSettings,
    store: Store,
    clock: Arc<dyn Clock>,
) {
    use mpanel_services::billing::autopay::{Autopay, attempt};
    let Ok(stripe) = mpanel_services::billing::stripe::StripeClient::new(&settings.stripe_api_base)
    else {
        return;
    };
    registry.handle(move |_ctx, job: Autopay| {
        let (store, clock, stripe) = (store.clone(), clock.clone(), stripe.clone());
        async move {
            attempt(&store, clock.as_ref(), &stripe, &job)
                .await
                .map_err(JobError::retry)
        }
    });
}

/// `webhook.deliver`: one signed delivery; a failure waits for the next
/// attempt of the Standard Webhooks schedule without spending the job's
/// attempts (the schedule, not the queue's back-off, decides).
fn register_webhooks(
    registry: &mut Registry,
    settings: &JobSettings,
    store: Store,
    clock: Arc<dyn Clock>,
) {
    use mpanel_services::webhooks::DeliverWebhook;
    use mpanel_services::webhooks::deliver::{Deliverer, Outcome};
    let deliverer = Deliverer {
        store,
        clock: clock.clone(),
        policy: settings.webhooks.clone(),
    };
    registry.handle(move |ctx, job: DeliverWebhook| {
        let (deliverer, clock) = (deliverer.clone(), clock.clone());
        async move {
            match deliverer.deliver(job.delivery_id).await {
                Ok(Outcome::RetryAt(at)) => Err(JobError::Wait {
                    reason: "the receiver did not accept the delivery".into(),
                    retry_in: at - clock.now(),
                }),
                Ok(_) => Ok(()),
                // Our side failed (the database, the secret box): retried
                // with back-off; on the last attempt the delivery is marked
                // FAILED instead of waiting for ever.
                Err(e) if ctx.attempt >= ctx.max_attempts => {
                    let _ = deliverer.abandon(job.delivery_id, &e.to_string()).await;
                    Err(JobError::retry(e))
                }
                Err(e) => Err(JobError::retry(e)),
            }
        }
    });
}

/// The recurring jobs.
fn recurring(settings: &JobSettings) -> Vec<mpanel_jobs::Recurring> {
    use mpanel_jobs::Schedule;
    let mut jobs = vec![
        scheduled::<HealthCheck>(Schedule::Every(60), "provisioning", 1),
        scheduled::<Retention>(
            Schedule::DailyAt {
                hour: 3,
                minute: 30,
            },
            "maintenance",
            3,
        ),
        scheduled::<BillingRun>(Schedule::Every(300), "billing", 3),
        // Hourly: a site filling its disk is noticed within the hour, and
        // a node is read once an hour, one SSH session for all its accounts.
        scheduled::<MeasureDiskUsage>(Schedule::Every(3600), "provisioning", 3),
        scheduled::<MarkOverdue>(Schedule::Every(300), "billing", 3),
        // Hourly: each running pod gets its daily backup within the hour
        // it falls due.
        scheduled::<PodBackupSchedule>(Schedule::Every(3600), "provisioning", 3),
        // Hourly: sites and mailboxes taken in, their daily backups queued
        // within the hour they fall due.
        scheduled::<AccountBackupSchedule>(Schedule::Every(3600), "provisioning", 3),
        // Every 5 minutes: a VM restarted between two readings loses the
        // transfer since the first (its counters begin again).
        scheduled::<PodUsage>(Schedule::Every(300), "provisioning", 3),
        // Daily: certificates due for renewal (30 days before their end)
        // get a new one well before any browser would warn.
        scheduled::<mpanel_domain::tls::RenewDue>(
            Schedule::DailyAt {
                hour: 4,
                minute: 10,
            },
            "provisioning",
            3,
        ),
    ];
    if settings.platform_backup.is_some() {
        // Daily, before the retention sweep; a node starting after 02:15
        // with no backup of that day yet makes it at once.
        jobs.push(scheduled::<PlatformBackup>(
            Schedule::DailyAt {
                hour: 2,
                minute: 15,
            },
            "maintenance",
            3,
        ));
    }
    jobs
}

/// A recurring job named after its kind, with the empty payload its type
/// decodes (`{}`).
fn scheduled<P: JobPayload>(
    schedule: mpanel_jobs::Schedule,
    queue: &str,
    max_attempts: i32,
) -> mpanel_jobs::Recurring {
    mpanel_jobs::Recurring {
        name: P::KIND.into(),
        schedule,
        kind: P::KIND.into(),
        payload: serde_json::json!({}),
        options: mpanel_jobs::JobOptions {
            queue: queue.into(),
            max_attempts,
            ..mpanel_jobs::JobOptions::default()
        },
    }
}

/// The recurring jobs' payloads: they carry nothing, but each type names
/// its kind once, for the schedule and the handler alike.
macro_rules! empty_payload {
    ($($name:ident => $kind:expr;)*) => {$(
        #[derive(Debug, Default, Serialize, Deserialize)]
        struct $name {}

        impl JobPayload for $name {
            const KIND: &'static str = $kind;
        }
    )*};
}

empty_payload! {
    HealthCheck => "servers.health_check";
    Retention => "maintenance.retention";
    BillingRun => "billing.scheduled_run";
    MarkOverdue => "billing.mark_overdue";
    MeasureDiskUsage => mpanel_provision::disk_usage::DISK_USAGE_JOB;
    PodBackupSchedule => mpanel_domain::cloudpods::BACKUP_SCHEDULE_JOB;
    AccountBackupSchedule => mpanel_domain::backups::SCHEDULE_JOB;
    PodUsage => mpanel_provision::cloudpod::usage::USAGE_JOB;
    PlatformBackup => "platform.backup";
}
