//! `mpanel hosting disk-usage`: the hourly disk measurement on demand (an
//! operator checking a node, or a test at a chosen time). Prints the
//! report as JSON.

use std::sync::Arc;

use mpanel_domain::{Clock, SystemClock};

use crate::billing::parse_as_of;
use crate::cli::DiskUsageArgs;
use crate::config::Config;
use crate::serve::open_store;

pub async fn disk_usage_cmd(config: Config, args: DiskUsageArgs) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let as_of = match &args.as_of {
        Some(raw) => parse_as_of(raw)?,
        None => clock.now(),
    };
    let store = open_store(&config).await?;
    let provisioner = mpanel_provision::saga::Provisioner {
        secrets: config
            .secrets_key
            .clone()
            .or_else(|| store.secrets().cloned()),
        store: store.clone(),
        clock,
        control: config.jobs.domain_control.clone(),
    };
    let result = provisioner.measure_disk_usage(as_of).await;
    store.close().await;
    let report = result?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
