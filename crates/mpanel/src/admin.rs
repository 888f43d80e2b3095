//! `mpanel admin …`: bootstrap tasks run by an operator on a node.

use mpanel_domain::SystemClock;
use mpanel_services::tenants::{CreateTenant, create_tenant};
use mpanel_services::{Actor, ServiceError};

use crate::config::Config;
use crate::serve::open_store;

/// The operator, as far as the node knows.
fn operator() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into())
}

pub async fn create_tenant_cmd(config: Config, input: CreateTenant) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let result = create_tenant(&store, &SystemClock, &Actor::cli(&operator()), &input).await;
    store.close().await;
    match result {
        Ok(t) => {
            println!(
                "created tenant {} ({}): {}, time zone {}, currency {}",
                t.slug, t.id, t.name, t.timezone, t.default_currency
            );
            Ok(())
        }
        Err(ServiceError::Invalid { field, message }) => {
            anyhow::bail!("invalid --{}: {message}", field.replace('_', "-"))
        }
        Err(err) => Err(err.into()),
    }
}
