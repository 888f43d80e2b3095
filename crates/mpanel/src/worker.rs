//! `mpanel worker`: a process that runs background work only, no HTTP.
//!
//! The job queue it will drain arrives with the job-queue issue; until then
//! it opens the database, checks the schema and waits for a signal, so
//! deployments can already be laid out with separate worker processes.

use crate::config::Config;
use crate::serve::open_store;

pub async fn run(config: Config) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    tracing::info!(engine = %config.engine, "worker started; no job kinds are registered yet");
    crate::shutdown::signal().await;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}
