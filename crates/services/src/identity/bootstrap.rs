//! The first tenant and its administrator, created on first start only
//! when an administrator e-mail address is configured. There are no
//! default accounts.

use mpanel_domain::Clock;
use mpanel_domain::identity::Role;
use mpanel_store::Store;

use super::secrets;
use super::users::{CreateUser, create_in};
use crate::tenants::{CreateTenant, create_tenant};
use crate::{Actor, ServiceError};

#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub tenant_slug: String,
    pub admin_email: String,
    /// `None`: a random one is made and returned, to be shown once.
    pub admin_password: Option<String>,
}

/// What bootstrapping created.
#[derive(Debug, Clone)]
pub struct Bootstrapped {
    pub tenant_slug: String,
    pub admin_email: String,
    /// Set when the password was generated.
    pub generated_password: Option<String>,
    /// The secret the tenant's marketing site signs orders with.
    pub webhook_secret: String,
}

/// Creates the first tenant and its `TENANT_ADMIN` if the database has no
/// tenant yet; `None` when there was nothing to do.
pub async fn bootstrap(
    store: &Store,
    clock: &dyn Clock,
    input: &Bootstrap,
) -> Result<Option<Bootstrapped>, ServiceError> {
    if !store.list_tenants().await?.is_empty() {
        return Ok(None);
    }
    let actor = Actor::cli("bootstrap");
    let created = create_tenant(
        store,
        clock,
        &actor,
        &CreateTenant {
            slug: input.tenant_slug.clone(),
            name: input.tenant_slug.clone(),
            timezone: "UTC".into(),
            default_currency: "USD".into(),
            profile: Default::default(),
        },
    )
    .await?;
    let tenant = created.tenant;
    let (password, generated) = match &input.admin_password {
        Some(p) => (p.clone(), None),
        None => {
            let p = secrets::new_password()?;
            (p.clone(), Some(p))
        }
    };
    create_in(
        store,
        clock,
        &actor,
        tenant.id,
        None,
        &CreateUser {
            email: input.admin_email.clone(),
            display_name: "Administrator".into(),
            role: Role::TenantAdmin,
            password: Some(password),
        },
    )
    .await?;
    Ok(Some(Bootstrapped {
        tenant_slug: tenant.slug,
        admin_email: input.admin_email.clone(),
        generated_password: generated,
        webhook_secret: created.webhook_secret,
    }))
}
