//! `mpanel worker`: runs the job queue's workers and scheduler, no HTTP.
//! Several may run against one PostgreSQL, beside `serve --no-workers`.

use std::sync::Arc;

use mpanel_domain::{Clock, SystemClock};

use crate::config::Config;
use crate::serve::open_long_running_store;

pub async fn run(config: Config) -> anyhow::Result<()> {
    // Listening for signals before anything says it started.
    let stop = crate::shutdown::signal();
    let store = open_long_running_store(&config).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    tracing::info!(engine = %config.engine, concurrency = config.jobs.concurrency, "worker started");
    crate::jobs::run_workers(
        store.clone(),
        clock,
        &config.jobs,
        config.shutdown_grace,
        stop,
    )
    .await?;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}
