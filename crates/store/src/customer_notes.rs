//! Notes staff keep on a customer.

use mpanel_domain::{CustomerId, CustomerNoteId, TenantId};
use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Store, StoreResult, Tx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerNoteRecord {
    pub id: CustomerNoteId,
    pub tenant_id: TenantId,
    pub customer_id: CustomerId,
    /// The user who wrote it, if one did.
    pub author_id: Option<Uuid>,
    /// Who wrote it, as they were named then.
    pub author_label: String,
    pub body: String,
    pub created_at: OffsetDateTime,
}

impl Tx {
    pub async fn insert_customer_note(&mut self, n: &CustomerNoteRecord) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO customer_notes (id, tenant_id, customer_id, author_id, author_label,
                     body, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(n.id.as_uuid())
            .bind(n.tenant_id.as_uuid())
            .bind(n.customer_id.as_uuid())
            .bind(n.author_id)
            .bind(&n.author_label)
            .bind(&n.body)
            .bind(n.created_at)
            .execute(conn)
            .await?;
        });
        Ok(())
    }
}

impl Store {
    /// A customer's notes, newest first, those before `before` (a note id)
    /// when given.
    pub async fn customer_notes(
        &self,
        tenant: TenantId,
        customer: CustomerId,
        before: Option<CustomerNoteId>,
        limit: u32,
    ) -> StoreResult<Vec<CustomerNoteRecord>> {
        let notes = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(
                "SELECT id, author_id, author_label, body, created_at FROM customer_notes
                 WHERE tenant_id = $1 AND customer_id = $2 AND ($3 IS NULL OR id < $3)
                 ORDER BY id DESC LIMIT $4",
            )
            .bind(tenant.as_uuid())
            .bind(customer.as_uuid())
            .bind(before.map(|b| b.as_uuid()))
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
            {
                out.push(CustomerNoteRecord {
                    id: CustomerNoteId::from_uuid(row.try_get("id")?),
                    tenant_id: tenant,
                    customer_id: customer,
                    author_id: row.try_get("author_id")?,
                    author_label: row.try_get("author_label")?,
                    body: row.try_get("body")?,
                    created_at: row.try_get("created_at")?,
                });
            }
            out
        });
        Ok(notes)
    }
}
