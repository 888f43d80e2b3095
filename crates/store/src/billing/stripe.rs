//! Stripe payment intents created for invoices, and the webhook events
//! already handled (each once).

use mpanel_domain::{CustomerId, InvoiceId, TenantId};
use sqlx::Row;
use time::OffsetDateTime;

use crate::{StoreResult, Tx};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct PaymentIntentRecord {
    pub id: String,
    pub tenant_id: TenantId,
    pub invoice_id: InvoiceId,
    pub attempt: i32,
    pub amount_minor: i64,
    pub currency: String,
    pub status: String,
}

impl Tx {
    /// The invoice's newest payment intent, if any.
    pub async fn latest_payment_intent(
        &mut self,
        tenant: TenantId,
        invoice: InvoiceId,
    ) -> StoreResult<Option<PaymentIntentRecord>> {
        let found = on_tx!(self, |conn| {
            match sqlx::query(
                "SELECT id, attempt, amount_minor, currency, status FROM stripe_payment_intents
                 WHERE tenant_id = $1 AND invoice_id = $2 ORDER BY attempt DESC LIMIT 1",
            )
            .bind(tenant.as_uuid())
            .bind(invoice.as_uuid())
            .fetch_optional(conn)
            .await?
            {
                Some(row) => Some(PaymentIntentRecord {
                    id: row.try_get("id")?,
                    tenant_id: tenant,
                    invoice_id: invoice,
                    attempt: row.try_get("attempt")?,
                    amount_minor: row.try_get("amount_minor")?,
                    currency: row.try_get("currency")?,
                    status: row.try_get("status")?,
                }),
                None => None,
            }
        });
        Ok(found)
    }

    /// Records an intent (again: the same id is kept once).
    pub async fn save_payment_intent(
        &mut self,
        pi: &PaymentIntentRecord,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO stripe_payment_intents (id, tenant_id, invoice_id, attempt, amount_minor, currency,
                    status, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
                 ON CONFLICT (tenant_id, id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at",
            )
            .bind(&pi.id)
            .bind(pi.tenant_id.as_uuid())
            .bind(pi.invoice_id.as_uuid())
            .bind(pi.attempt)
            .bind(pi.amount_minor)
            .bind(&pi.currency)
            .bind(&pi.status)
            .bind(now)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    /// Sets an intent's status unless it already succeeded (a late
    /// `payment_failed` never undoes a success).
    pub async fn set_payment_intent_status(
        &mut self,
        tenant: TenantId,
        id: &str,
        status: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE stripe_payment_intents SET status = $3, updated_at = $4
                 WHERE tenant_id = $1 AND id = $2 AND status <> 'succeeded'",
            )
            .bind(tenant.as_uuid())
            .bind(id)
            .bind(status)
            .bind(now)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    /// Whether mPanel created this payment intent (for this tenant).
    pub async fn payment_intent_known(&mut self, tenant: TenantId, id: &str) -> StoreResult<bool> {
        let n = on_tx!(self, |conn| {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM stripe_payment_intents WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.as_uuid())
            .bind(id)
            .fetch_one(conn)
            .await?
        });
        Ok(n > 0)
    }

    /// Records a webhook event; `false` if it was handled before.
    pub async fn record_stripe_event(
        &mut self,
        tenant: TenantId,
        event_id: &str,
        kind: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let n = on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO stripe_events (tenant_id, event_id, type, received_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant_id, event_id) DO NOTHING",
            )
            .bind(tenant.as_uuid())
            .bind(event_id)
            .bind(kind)
            .bind(now)
            .execute(conn)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }
}

/// A customer's saved Stripe card: `(customer, payment method)`.
pub type SavedCard = (String, String);

impl Tx {
    /// Saves (or, with `None`, forgets) the customer's card for auto-pay;
    /// `false` if there is no such customer.
    pub async fn set_saved_card(
        &mut self,
        tenant: TenantId,
        customer: CustomerId,
        card: Option<&SavedCard>,
    ) -> StoreResult<bool> {
        let n = on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE customers SET stripe_customer_id = $3, stripe_payment_method_id = $4
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.as_uuid())
            .bind(customer.as_uuid())
            .bind(card.map(|c| c.0.as_str()))
            .bind(card.map(|c| c.1.as_str()))
            .execute(conn)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// The customer's saved card, if any.
    pub async fn saved_card(
        &mut self,
        tenant: TenantId,
        customer: CustomerId,
    ) -> StoreResult<Option<SavedCard>> {
        let found = on_tx!(self, |conn| {
            sqlx::query_as::<_, (Option<String>, Option<String>)>(
                "SELECT stripe_customer_id, stripe_payment_method_id FROM customers
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.as_uuid())
            .bind(customer.as_uuid())
            .fetch_optional(conn)
            .await?
        });
        Ok(match found {
            Some((Some(c), Some(pm))) => Some((c, pm)),
            _ => None,
        })
    }
}

impl Tx {
    /// The customers among `ids` with a saved card.
    pub async fn customers_with_saved_card(
        &mut self,
        tenant: TenantId,
        ids: &[CustomerId],
    ) -> StoreResult<Vec<CustomerId>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(10_000) {
            on_tx!(self, |conn| {
                // By primary key (see `customers_by_ids`); tenant checked below.
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT id, tenant_id FROM customers WHERE stripe_payment_method_id IS NOT NULL AND id IN (",
                );
                let mut sep = q.separated(", ");
                for id in chunk {
                    sep.push_bind(id.as_uuid());
                }
                q.push(")");
                for row in q.build().fetch_all(&mut *conn).await? {
                    let owner: Uuid = row.try_get(1)?;
                    if owner == tenant.as_uuid() {
                        out.push(CustomerId::from_uuid(row.try_get(0)?));
                    }
                }
            });
        }
        Ok(out)
    }
}
