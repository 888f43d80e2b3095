//! A request's `Idempotency-Key`, held while it runs: the use case stores
//! its response against the key in its own transaction, so a retry after a
//! commit gets the first answer and never makes the change twice.

use mpanel_domain::TenantId;
use mpanel_store::Tx;
use serde::Serialize;
use time::OffsetDateTime;

use crate::ServiceError;

#[derive(Debug, Clone)]
pub struct IdempotencyHold {
    pub key: String,
    pub held_since: OffsetDateTime,
}

/// Stores `body` as the answer to the held key (if any) in `tx`.
pub async fn finish(
    tx: &mut Tx,
    tenant: TenantId,
    hold: Option<&IdempotencyHold>,
    status: u16,
    body: &impl Serialize,
) -> Result<(), ServiceError> {
    if let Some(hold) = hold {
        let body = serde_json::to_string(body)
            .map_err(|e| ServiceError::internal("cannot serialize the answer to keep", e))?;
        tx.finish_idempotency(tenant, &hold.key, hold.held_since, status, &body)
            .await?;
    }
    Ok(())
}
