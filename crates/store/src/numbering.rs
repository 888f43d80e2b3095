//! Gapless document numbers, allocated inside the caller's transaction.

use mpanel_domain::TenantId;

use crate::{StoreResult, Tx};

impl Tx {
    /// The next number of `kind` (`INV`, `CN`) for the tenant and year.
    /// Taken in this transaction: a rollback gives it back, and concurrent
    /// transactions of the same tenant, kind and year wait for this one.
    pub async fn next_document_number(
        &mut self,
        tenant: TenantId,
        kind: &str,
        year: i32,
    ) -> StoreResult<u64> {
        let n = on_tx!(self, |conn| {
            sqlx::query_scalar::<_, i64>(
                "INSERT INTO document_sequences (tenant_id, kind, year, last_value) VALUES ($1, $2, $3, 1)
                 ON CONFLICT (tenant_id, kind, year)
                 DO UPDATE SET last_value = document_sequences.last_value + 1
                 RETURNING last_value",
            )
            .bind(tenant.as_uuid())
            .bind(kind)
            .bind(year)
            .fetch_one(conn)
            .await?
        });
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
