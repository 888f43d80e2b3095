//! The job handlers of what orders provision: subscriptions, account and
//! CloudPod actions, backups and mailboxes.

use mpanel_jobs::{JobError, Registry};
use mpanel_store::Store;

use super::certificates::register_certificates;
use super::{AccountBackupSchedule, HealthCheck, MeasureDiskUsage, PodBackupSchedule, PodUsage};

/// `provision.subscription`: a paid subscription's zone, site and
/// mailboxes, then its activation (see `mpanel_provision::saga`); and the
/// later work on what it made (account actions, mailboxes, SFTP, disk
/// usage). A driver's error becomes the job's through `From<DriverError>`.
pub(super) fn register_provisioning(
    registry: &mut Registry,
    provisioner: mpanel_provision::saga::Provisioner,
) {
    let p = provisioner.clone();
    registry.handle(move |_ctx, _: HealthCheck| {
        let p = p.clone();
        async move {
            p.check_nodes().await?;
            p.check_clusters().await?;
            Ok(())
        }
    });
    register_account_actions(registry, &provisioner);
    register_certificates(registry, &provisioner);
    register_pod_actions(registry, &provisioner);
    register_mail(registry, &provisioner);
    register_backups(registry, &provisioner);
    let p = provisioner.clone();
    registry.handle(move |_ctx, _: PodUsage| {
        let p = p.clone();
        async move {
            let report = p.meter_pods().await?;
            if report.unread > 0 {
                tracing::info!(?report, "CloudPod usage read");
            }
            Ok(())
        }
    });
    let p = provisioner.clone();
    registry.handle(move |_ctx, _: PodBackupSchedule| {
        let p = p.clone();
        async move {
            let queued = p.schedule_backups().await?;
            if queued > 0 {
                tracing::info!(queued, "CloudPod backups queued");
            }
            Ok(())
        }
    });
    let p = provisioner.clone();
    registry.handle(move |_ctx, _: MeasureDiskUsage| {
        let p = p.clone();
        async move {
            let report = p.measure_disk_usage(p.clock.now()).await?;
            if report.over_quota > 0 || report.failed_nodes > 0 {
                tracing::info!(?report, "disk usage measured");
            }
            Ok(())
        }
    });
    let p = provisioner.clone();
    registry.handle(move |_ctx, s: mpanel_provision::lifecycle::SftpAccess| {
        let p = p.clone();
        async move { Ok(p.set_sftp(&s).await?) }
    });
    registry.handle(
        move |ctx, job: mpanel_provision::saga::ProvisionSubscription| {
            let provisioner = provisioner.clone();
            async move {
                let last = ctx.attempt >= ctx.max_attempts;
                Ok(provisioner.provision(&job, last).await?)
            }
        },
    );
}

/// Suspend, unsuspend and terminate of a hosting account (one payload,
/// three kinds), each after the account's earlier actions.
fn register_account_actions(
    registry: &mut Registry,
    provisioner: &mpanel_provision::saga::Provisioner,
) {
    use mpanel_provision::lifecycle::{self, HostingAction};
    for (kind, suspend) in [
        (lifecycle::SUSPEND_JOB, true),
        (lifecycle::UNSUSPEND_JOB, false),
    ] {
        let p = provisioner.clone();
        registry.register(kind, move |ctx, a: HostingAction| {
            let p = p.clone();
            async move {
                in_order(&p.store, &ctx, &a).await?;
                Ok(p.set_suspended(&a, suspend).await?)
            }
        });
    }
    let p = provisioner.clone();
    registry.register(lifecycle::TERMINATE_JOB, move |ctx, a: HostingAction| {
        let p = p.clone();
        async move {
            in_order(&p.store, &ctx, &a).await?;
            Ok(p.terminate(&a).await?)
        }
    });
}

/// A CloudPod's jobs, each after the pod's earlier ones.
fn register_pod_actions(
    registry: &mut Registry,
    provisioner: &mpanel_provision::saga::Provisioner,
) {
    use mpanel_domain::cloudpods as pods;
    use mpanel_services::cloudpods::jobs::PodJob;
    for kind in pods::POD_JOBS {
        let p = provisioner.clone();
        registry.register(kind, move |ctx, job: PodJob| {
            let p = p.clone();
            async move {
                let prefix = mpanel_services::cloudpods::jobs::prefix_of(&ctx.kind, job.pod_id);
                if p.store
                    .earlier_job_under(&prefix, ctx.id)
                    .await
                    .map_err(JobError::retry)?
                {
                    return Err(JobError::Wait {
                        reason: "an earlier action on this CloudPod is still under way".into(),
                        retry_in: time::Duration::seconds(1),
                    });
                }
                let done = match ctx.kind.as_str() {
                    pods::SUSPEND_JOB => p.pod_suspend(&job, ctx.id).await,
                    pods::RESUME_JOB => p.pod_resume(&job, ctx.id).await,
                    pods::REBOOT_JOB => p.pod_reboot(&job, ctx.id).await,
                    pods::UPDATE_JOB => p.pod_update(&job, ctx.id).await,
                    pods::RESIZE_JOB => p.pod_resize(&job, ctx.id).await,
                    pods::DELETE_JOB => p.pod_delete(&job, ctx.id).await,
                    pods::BACKUP_JOB => {
                        let last = ctx.attempt >= ctx.max_attempts;
                        p.pod_backup(&job, ctx.id, last).await
                    }
                    pods::RESTORE_JOB => p.pod_restore(&job, ctx.id).await,
                    other => Err(mpanel_provision::DriverError::Permanent(format!(
                        "{other} is not run here yet"
                    ))),
                };
                if let Err(e) = &done {
                    let last = ctx.attempt >= ctx.max_attempts;
                    p.note_pod_failure(job.pod_id, e, last).await;
                }
                Ok(done?)
            }
        });
    }
}

/// Site and mailbox backups: the hourly schedule, and each target's backup
/// and restore jobs, one at a time per target in the order asked.
fn register_backups(registry: &mut Registry, provisioner: &mpanel_provision::saga::Provisioner) {
    use mpanel_services::backups::jobs::{BackupRestore, BackupRun, prefix};
    let p = provisioner.clone();
    registry.handle(move |_ctx, _: AccountBackupSchedule| {
        let p = p.clone();
        async move {
            let report = p.schedule_account_backups().await?;
            if report != mpanel_provision::backup::BackupReport::default() {
                tracing::info!(?report, "site and mailbox backups scheduled");
            }
            Ok(())
        }
    });
    let p = provisioner.clone();
    registry.register(
        mpanel_domain::backups::RUN_JOB,
        move |ctx, job: BackupRun| {
            let p = p.clone();
            async move {
                one_at_a_time(&p.store, &ctx, &prefix(job.tenant_id)).await?;
                Ok(p.run_backup_job(&job).await?)
            }
        },
    );
    let p = provisioner.clone();
    registry.register(
        mpanel_domain::backups::RESTORE_JOB,
        move |ctx, job: BackupRestore| {
            let p = p.clone();
            async move {
                one_at_a_time(&p.store, &ctx, &prefix(job.tenant_id)).await?;
                let last = ctx.attempt >= ctx.max_attempts;
                Ok(p.run_restore_job(&job, last).await?)
            }
        },
    );
}

/// Waits while an earlier job under `prefix` is unfinished.
async fn one_at_a_time(
    store: &Store,
    ctx: &mpanel_jobs::JobContext,
    prefix: &str,
) -> Result<(), JobError> {
    if store
        .earlier_job_under(prefix, ctx.id)
        .await
        .map_err(JobError::retry)?
    {
        return Err(JobError::Wait {
            reason: "an earlier backup or restore of this tenant is still under way".into(),
            retry_in: time::Duration::seconds(5),
        });
    }
    Ok(())
}

/// Suspend, unsuspend and terminate of one account run in the order they
/// were asked for: a payment's unsuspend waits for a dunning suspension
/// still under way, instead of racing it.
async fn in_order(
    store: &Store,
    ctx: &mpanel_jobs::JobContext,
    a: &mpanel_provision::lifecycle::HostingAction,
) -> Result<(), JobError> {
    use mpanel_provision::lifecycle;
    let keys: Vec<String> = [
        lifecycle::SUSPEND_JOB,
        lifecycle::UNSUSPEND_JOB,
        lifecycle::TERMINATE_JOB,
    ]
    .iter()
    .map(|kind| format!("{kind}:{}", a.hosting_account_id))
    .collect();
    if store
        .earlier_job_unfinished(&keys, ctx.id)
        .await
        .map_err(JobError::retry)?
    {
        return Err(JobError::Retry(
            "an earlier action on this account is still under way".into(),
        ));
    }
    Ok(())
}

/// A further mailbox and a mailbox's new password (one payload, two kinds).
fn register_mail(registry: &mut Registry, provisioner: &mpanel_provision::saga::Provisioner) {
    use mpanel_provision::lifecycle::{self, MailPassword};
    let p = provisioner.clone();
    registry.register(
        mpanel_domain::provisioning::MAIL_CREATE_JOB,
        move |_ctx, m: MailPassword| {
            let p = p.clone();
            async move { Ok(p.create_mailbox(&m).await?) }
        },
    );
    let p = provisioner.clone();
    registry.register(
        lifecycle::MAIL_PASSWORD_JOB,
        move |_ctx, m: MailPassword| {
            let p = p.clone();
            async move { Ok(p.set_mail_password(&m).await?) }
        },
    );
}
