//! `mpanel admin …`: bootstrap tasks run by an operator on a node.

use mpanel_domain::SystemClock;
use mpanel_domain::identity::Role;
use mpanel_services::identity::secrets;
use mpanel_services::identity::users::{CreateUser, create_in};
use mpanel_services::tenants::{CreateTenant, create_tenant};
use mpanel_services::{Actor, ServiceError};

use crate::cli::CreateUserArgs;
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
        Ok(created) => {
            let t = created.tenant;
            println!(
                "created tenant {} ({}): {}, time zone {}, currency {}",
                t.slug, t.id, t.name, t.timezone, t.default_currency
            );
            println!("webhook secret (shown once): {}", created.webhook_secret);
            Ok(())
        }
        Err(ServiceError::Invalid { field, message }) => {
            anyhow::bail!("invalid --{}: {message}", field.replace('_', "-"))
        }
        Err(err) => Err(err.into()),
    }
}

pub async fn create_user_cmd(config: Config, args: CreateUserArgs) -> anyhow::Result<()> {
    let role: Role = args
        .role
        .parse()
        .map_err(|e: String| anyhow::anyhow!("invalid --role: {e}"))?;
    let store = open_store(&config).await?;
    let result = async {
        let tenant = store.tenant_by_slug(&args.tenant).await?.ok_or_else(|| {
            anyhow::anyhow!("invalid --tenant: no tenant with slug {:?}", args.tenant)
        })?;
        let (password, generated) = match args.password {
            Some(p) => (p, false),
            None => (secrets::new_password()?, true),
        };
        let input = CreateUser {
            email: args.email,
            display_name: args.name,
            role,
            password: Some(password.clone()),
        };
        let user = create_in(
            &store,
            &SystemClock,
            &Actor::cli(&operator()),
            tenant.id,
            None,
            &input,
        )
        .await
        .map_err(|err| match err {
            ServiceError::Invalid { field, message } => {
                anyhow::anyhow!("invalid --{field}: {message}")
            }
            other => other.into(),
        })?;
        println!(
            "created user {} ({}) with role {} in tenant {}",
            user.email, user.id, user.role, tenant.slug
        );
        if generated {
            println!("password (shown once): {password}");
        }
        anyhow::Ok(())
    }
    .await;
    store.close().await;
    result
}
