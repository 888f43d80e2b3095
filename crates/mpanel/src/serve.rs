//! `mpanel serve`: migrate, then serve the API until a signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use mpanel_api::{AppState, MetricsAccess};
use mpanel_domain::SystemClock;
use mpanel_store::Store;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::config::Config;

/// Connects to the database and applies pending migrations, logging each.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(config.database_url.expose_secret(), &config.pool)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                config.database_url_redacted()
            )
        })?;
    let applied = store.migrate().await.context("cannot apply migrations")?;
    for m in &applied {
        tracing::info!(
            version = m.version,
            description = m.description,
            "migration applied"
        );
    }
    Ok(store)
}

/// Binds the listener; `on_bound` learns the address (port 0 picks one).
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_bound: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    tracing::info!(
        database = %config.database_url_redacted(),
        engine = %config.engine,
        config_file = ?config.file,
        "starting mpanel {}",
        env!("CARGO_PKG_VERSION")
    );
    let store = open_store(&config).await?;
    let state = AppState {
        store: store.clone(),
        clock: Arc::new(SystemClock),
        metrics: MetricsAccess {
            handle: mpanel_api::telemetry::metrics_handle()
                .context("cannot install the metrics recorder")?,
            token: config.http.metrics_token.as_deref().map(Arc::from),
        },
    };
    let app = mpanel_api::app(state, &config.http);
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening on http://{addr}");
    on_bound(addr);
    mpanel_api::serve(listener, app, shutdown, config.shutdown_grace).await?;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}
