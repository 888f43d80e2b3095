//! `mpanel serve`: migrate, then serve the API until a signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use mpanel_api::{AppState, MetricsAccess};
use mpanel_domain::{Clock, SystemClock};
use mpanel_services::identity::AccessTokens;
use mpanel_services::identity::bootstrap::{Bootstrap, bootstrap};
use mpanel_services::identity::secrets::random_bytes;
use mpanel_store::sealing::is_sealed_signing_key;
use mpanel_store::secret_box::{binding, kind};
use mpanel_store::{PoolSettings, Store};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::config::Config;

/// Resolves `secrets_key` (required; see [`crate::secrets`]), connects to
/// the database, applies pending migrations, logging each, and seals any
/// secret an older release stored in clear.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    open_store_with(config, &config.pool).await
}

/// [`open_store`] for a process that runs until it is stopped (`serve`,
/// `worker`): on PostgreSQL every connection of the pool is opened at
/// start and kept open, so a burst after a quiet spell does not wait for
/// new server processes (measured: docs/benchmarks.md, "Job queue").
pub async fn open_long_running_store(config: &Config) -> anyhow::Result<Store> {
    let kept_open = PoolSettings {
        keep_open: true,
        ..config.pool.clone()
    };
    open_store_with(config, &kept_open).await
}

async fn open_store_with(config: &Config, settings: &PoolSettings) -> anyhow::Result<Store> {
    let secrets = crate::secrets::resolve(config)?;
    let store = Store::connect(config.database_url.expose_secret(), settings)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                config.database_url_redacted()
            )
        })?
        .with_secrets(secrets);
    let applied = store.migrate().await.context("cannot apply migrations")?;
    for m in &applied {
        tracing::info!(
            version = m.version,
            description = m.description,
            "migration applied"
        );
    }
    let sealed = store
        .seal_clear_secrets(SystemClock.now())
        .await
        .context("cannot seal the secrets stored in clear")?;
    if !sealed.is_empty() {
        tracing::info!(
            stripe_secret_keys = sealed.stripe_secret_keys,
            stripe_webhook_secrets = sealed.stripe_webhook_secrets,
            order_webhook_secrets = sealed.order_webhook_secrets,
            totp_seeds = sealed.totp_seeds,
            signing_keys = sealed.signing_keys,
            recovery_code_users = sealed.recovery_code_users,
            "sealed secrets stored in clear by an older release"
        );
    }
    Ok(store)
}

/// Binds the listener; `on_bound` learns the address (port 0 picks one).
pub async fn run(
    config: Config,
    with_workers: bool,
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
    let store = open_long_running_store(&config).await?;
    let state = app_state(&config, &store).await?;
    // Aborted when dropped, on every way out of here (errors included).
    let mut upkeep = tokio::task::JoinSet::new();
    upkeep.spawn(mpanel_api::telemetry::keep_up(state.metrics.handle.clone()));
    let app = mpanel_api::app(state, &config.http);
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening on http://{addr}");
    match config.jobs.mail.smtp_url_redacted() {
        Some(smtp) => {
            tracing::info!(%smtp, sender = %config.jobs.mail.sender, "e-mail is sent through this SMTP server")
        }
        None => {
            tracing::warn!("no smtp_url is configured: e-mail stays in the outbox, undeliverable")
        }
    }
    on_bound(addr);
    // One signal stops both the HTTP server and the workers.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let workers = with_workers.then(|| {
        let mut stop = stop_rx.clone();
        let store = store.clone();
        let settings = config.jobs.clone();
        let grace = config.shutdown_grace;
        tokio::spawn(async move {
            crate::jobs::run_workers(store, clock_for_jobs(), &settings, grace, async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
        })
    });
    let mut http_stop = stop_rx;
    let http = mpanel_api::serve(
        listener,
        app,
        async move {
            let _ = http_stop.wait_for(|s| *s).await;
        },
        config.shutdown_grace,
    );
    tokio::pin!(http);
    let served = tokio::select! {
        served = &mut http => served,
        () = shutdown => {
            // The HTTP server drains on this signal.
            let _ = stop_tx.send(true);
            (&mut http).await
        }
    };
    // The workers stop within their grace period whatever ended the HTTP
    // server: `serve` ends only on the stop signal today, but should it
    // ever fail, no job is cut off by the process exiting.
    let _ = stop_tx.send(true);
    let stopped = match workers {
        Some(workers) => workers.await.map_err(anyhow::Error::from).and_then(|r| r),
        None => Ok(()),
    };
    upkeep.abort_all();
    store.close().await;
    // The server's failure first (it is why the workers were stopped);
    // the workers' own, if any, is logged rather than lost.
    if let (Err(_), Err(err)) = (&served, &stopped) {
        tracing::error!(error = %err, "the workers failed too");
    }
    served?;
    stopped?;
    tracing::info!("stopped");
    Ok(())
}

/// What every request shares: the store, the clock, the token keys and
/// the clients built from the config; the first tenant is made here when
/// the config asks for one.
async fn app_state(config: &Config, store: &Store) -> anyhow::Result<AppState> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let tokens = access_tokens(config, store, clock.as_ref()).await?;
    bootstrap_first_tenant(config, store, clock.as_ref()).await?;
    Ok(AppState {
        store: store.clone(),
        clock,
        tokens,
        passkeys: mpanel_services::security::webauthn::Passkeys::new(
            &config.webauthn_rp_id,
            &config.webauthn_origin,
        )?,
        stripe: mpanel_services::billing::stripe::StripeClient::new(&config.stripe_api_base)?,
        secrets: store.secrets().cloned(),
        mail: config.jobs.mail.clone(),
        metrics: MetricsAccess {
            handle: mpanel_api::telemetry::metrics_handle()
                .context("cannot install the metrics recorder")?,
            token: config.http.metrics_token.as_deref().map(Arc::from),
            figures: Default::default(),
        },
        webhooks: config.webhooks.clone(),
        upload_roots: config.upload_roots.clone(),
    })
}

fn clock_for_jobs() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// The access-token key: configured, or else the one every node shares
/// through the database (made by the first node that starts).
pub async fn access_tokens(
    config: &Config,
    store: &Store,
    clock: &dyn Clock,
) -> anyhow::Result<AccessTokens> {
    let key = match &config.jwt_secret {
        Some(secret) => secret.expose_secret().as_bytes().to_vec(),
        None => {
            // Stored sealed, bound to its name; opened here, where it is used.
            let sb = mpanel_services::sealed::secret_box(store)?;
            let binding = binding(kind::SIGNING_KEY, "jwt");
            let candidate = sb.seal(&random_bytes::<32>()?, &binding)?;
            let stored = store
                .signing_key_or_insert("jwt", candidate.as_bytes(), clock.now())
                .await
                .context("cannot read the signing key")?;
            if is_sealed_signing_key(&stored) {
                let sealed = String::from_utf8(stored).context("the signing key is not text")?;
                sb.open(&sealed, &binding)?
            } else {
                // Stored in clear by an older node after this one's sealing
                // pass; the next start seals it.
                stored
            }
        }
    };
    Ok(AccessTokens::new(&key)?)
}

/// On an empty database with `bootstrap_admin_email` set: the first tenant
/// and its admin. A generated password is printed once, on standard output
/// (never logged).
async fn bootstrap_first_tenant(
    config: &Config,
    store: &Store,
    clock: &dyn Clock,
) -> anyhow::Result<()> {
    let Some(b) = &config.bootstrap else {
        return Ok(());
    };
    let input = Bootstrap {
        tenant_slug: b.tenant.clone(),
        admin_email: b.admin_email.clone(),
        admin_password: b
            .admin_password
            .as_ref()
            .map(|p| p.expose_secret().to_owned()),
    };
    if let Some(done) = bootstrap(store, clock, &input)
        .await
        .context("bootstrap failed")?
    {
        tracing::info!(tenant = %done.tenant_slug, admin = %done.admin_email, "created the first tenant and its TENANT_ADMIN");
        println!(
            "mpanel: webhook secret of tenant {:?} (shown once): {}",
            done.tenant_slug, done.webhook_secret
        );
        if let Some(pw) = done.generated_password {
            println!(
                "mpanel: first tenant {:?}, TENANT_ADMIN {} with password: {pw}\nmpanel: this password is shown once; change it after logging in.",
                done.tenant_slug, done.admin_email
            );
        }
    }
    Ok(())
}
