//! Reading the audit log.

use mpanel_domain::AuditEventId;
use mpanel_store::{AuditFilter, AuditRecord, Store};

use crate::ServiceError;
use crate::identity::Principal;

pub async fn list(
    store: &Store,
    who: &Principal,
    filter: &AuditFilter,
    before: Option<AuditEventId>,
    limit: u32,
) -> Result<Vec<AuditRecord>, ServiceError> {
    Ok(store
        .list_audit(who.tenant_id, filter, before, limit)
        .await?)
}
