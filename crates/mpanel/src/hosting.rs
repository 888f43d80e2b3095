//! `mpanel hosting disk-usage`: the hourly disk measurement on demand (an
//! operator checking a node, or a test at a chosen time); `mpanel servers
//! check`: the health check on demand; `mpanel cloudpods usage|backups`:
//! a pod usage reading, the due backups queued; `mpanel backups run`:
//! the due site and mailbox backups run. Each prints its report as
//! JSON.

use std::sync::Arc;

use mpanel_domain::{Clock, SystemClock};

use crate::billing::parse_as_of;
use crate::cli::DiskUsageArgs;
use crate::config::Config;
use crate::serve::open_store;

pub async fn disk_usage_cmd(config: Config, args: DiskUsageArgs) -> anyhow::Result<()> {
    run_as_of(config, args.as_of.as_deref(), |p, as_of| async move {
        Ok(serde_json::to_value(p.measure_disk_usage(as_of).await?)?)
    })
    .await
}

/// `mpanel backups run [--as-of]`.
pub async fn backups_run_cmd(
    config: Config,
    args: crate::cli::BackupsRunArgs,
) -> anyhow::Result<()> {
    run_as_of(config, args.as_of.as_deref(), |p, as_of| async move {
        Ok(serde_json::to_value(p.run_due_backups(as_of).await?)?)
    })
    .await
}

/// Runs `work` on a provisioner as of `--as-of` (default now), with the
/// store closed whatever happened, and prints its report.
async fn run_as_of<F, Fut>(config: Config, as_of: Option<&str>, work: F) -> anyhow::Result<()>
where
    F: FnOnce(mpanel_provision::saga::Provisioner, time::OffsetDateTime) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<serde_json::Value>>,
{
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let as_of = match as_of {
        Some(raw) => parse_as_of(raw)?,
        None => clock.now(),
    };
    let store = open_store(&config).await?;
    let result = work(provisioner(&config, &store, clock), as_of).await;
    store.close().await;
    println!("{}", serde_json::to_string_pretty(&result?)?);
    Ok(())
}

fn provisioner(
    config: &Config,
    store: &mpanel_store::Store,
    clock: Arc<dyn Clock>,
) -> mpanel_provision::saga::Provisioner {
    mpanel_provision::saga::Provisioner {
        secrets: config
            .secrets_key
            .clone()
            .or_else(|| store.secrets().cloned()),
        store: store.clone(),
        clock,
        control: config.jobs.domain_control.clone(),
        acme: config.jobs.acme.clone(),
    }
}

pub async fn servers_check_cmd(config: Config) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = open_store(&config).await?;
    let p = provisioner(&config, &store, clock);
    let checked = match p.check_nodes().await {
        Ok(n) => p
            .check_clusters()
            .await
            .map(|c| n + c)
            .map_err(anyhow::Error::from),
        Err(e) => Err(e.into()),
    };
    store.close().await;
    println!("{}", serde_json::json!({"checked": checked?}));
    Ok(())
}

pub async fn cloudpods_cmd(
    config: Config,
    command: crate::cli::CloudpodsCommand,
) -> anyhow::Result<()> {
    use crate::cli::CloudpodsCommand;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = open_store(&config).await?;
    let p = provisioner(&config, &store, clock);
    let report = match command {
        CloudpodsCommand::Usage => p
            .meter_pods()
            .await
            .map(|r| serde_json::json!(r))
            .map_err(anyhow::Error::from),
        CloudpodsCommand::Backups => p
            .schedule_backups()
            .await
            .map(|n| serde_json::json!({"queued": n}))
            .map_err(anyhow::Error::from),
    };
    store.close().await;
    println!("{}", report?);
    Ok(())
}
