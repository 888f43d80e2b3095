//! Reading the audit log.

use mpanel_domain::AuditEventId;
use mpanel_store::{AuditFilter, AuditRecord};

use crate::{Context, ServiceError};

/// Whose audit rows: the caller's tenant's, or the platform's own
/// (servers), which only a SUPER_ADMIN reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Tenant,
    Platform,
}

pub async fn list(
    cx: &Context,
    stream: Stream,
    filter: &AuditFilter,
    before: Option<AuditEventId>,
    limit: u32,
) -> Result<Vec<AuditRecord>, ServiceError> {
    let store = &cx.store;
    let who = &cx.principal;
    let tenant = match stream {
        Stream::Tenant => Some(who.tenant_id),
        Stream::Platform if who.role() == mpanel_domain::identity::Role::SuperAdmin => None,
        Stream::Platform => {
            return Err(ServiceError::Forbidden(
                "the platform's audit stream is for platform operators".into(),
            ));
        }
    };
    Ok(store.list_audit(tenant, filter, before, limit).await?)
}
