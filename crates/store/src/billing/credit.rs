//! Customers' credit balances, one per currency, and the ledger that
//! explains every change to them.

use mpanel_domain::{CreditNoteId, CustomerId, InvoiceId, PaymentId, TenantId};
use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Engine, Store, StoreResult, Tx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditBalance {
    pub currency: String,
    pub balance_minor: i64,
}

/// One change to a customer's credit.
#[derive(Debug, Clone)]
pub struct CreditEntry<'a> {
    pub tenant: TenantId,
    pub customer: CustomerId,
    pub currency: &'a str,
    pub delta_minor: i64,
    pub reason: &'a str,
    pub invoice: Option<InvoiceId>,
    pub payment: Option<PaymentId>,
    pub credit_note: Option<CreditNoteId>,
    pub at: OffsetDateTime,
}

impl Store {
    pub async fn credit_balances(
        &self,
        tenant: TenantId,
        customer: CustomerId,
    ) -> StoreResult<Vec<CreditBalance>> {
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(
                "SELECT currency, balance_minor FROM customer_credit
                 WHERE tenant_id = $1 AND customer_id = $2 ORDER BY currency",
            )
            .bind(tenant.as_uuid())
            .bind(customer.as_uuid())
            .fetch_all(p)
            .await?
            {
                out.push(CreditBalance {
                    currency: row.try_get("currency")?,
                    balance_minor: row.try_get("balance_minor")?,
                });
            }
            out
        });
        Ok(found)
    }
}

impl Tx {
    /// The customer's credit in `currency`, locked until this transaction
    /// ends (PostgreSQL; SQLite write transactions are serial already).
    pub async fn credit_balance_for_update(
        &mut self,
        tenant: TenantId,
        customer: CustomerId,
        currency: &str,
    ) -> StoreResult<i64> {
        let lock = if self.engine() == Engine::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT balance_minor FROM customer_credit
             WHERE tenant_id = $1 AND customer_id = $2 AND currency = $3{lock}"
        ));
        let found = on_tx!(self, |conn| {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(tenant.as_uuid())
                .bind(customer.as_uuid())
                .bind(currency)
                .fetch_optional(conn)
                .await?
        });
        Ok(found.unwrap_or(0))
    }

    /// Adds `delta` (negative to spend) and writes the ledger row; the
    /// balance never goes below zero (a CHECK refuses it). Returns the new
    /// balance.
    pub async fn adjust_credit(&mut self, e: &CreditEntry<'_>) -> StoreResult<i64> {
        let balance = on_tx!(self, |conn| {
            // Spending updates the row (the CHECK keeps it at or above zero);
            // adding may create it.
            let balance = if e.delta_minor < 0 {
                sqlx::query_scalar::<_, i64>(
                    "UPDATE customer_credit SET balance_minor = balance_minor + $4
                     WHERE tenant_id = $1 AND customer_id = $2 AND currency = $3
                     RETURNING balance_minor",
                )
                .bind(e.tenant.as_uuid())
                .bind(e.customer.as_uuid())
                .bind(e.currency)
                .bind(e.delta_minor)
                .fetch_one(&mut *conn)
                .await?
            } else {
                sqlx::query_scalar::<_, i64>(
                    "INSERT INTO customer_credit (tenant_id, customer_id, currency, balance_minor)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (customer_id, currency)
                     DO UPDATE SET balance_minor = customer_credit.balance_minor + excluded.balance_minor
                     RETURNING balance_minor",
                )
                .bind(e.tenant.as_uuid())
                .bind(e.customer.as_uuid())
                .bind(e.currency)
                .bind(e.delta_minor)
                .fetch_one(&mut *conn)
                .await?
            };
            sqlx::query(
                "INSERT INTO credit_ledger (id, tenant_id, customer_id, currency, delta_minor, reason,
                    invoice_id, payment_id, credit_note_id, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(Uuid::now_v7())
            .bind(e.tenant.as_uuid())
            .bind(e.customer.as_uuid())
            .bind(e.currency)
            .bind(e.delta_minor)
            .bind(e.reason)
            .bind(e.invoice.map(|i| i.as_uuid()))
            .bind(e.payment.map(|p| p.as_uuid()))
            .bind(e.credit_note.map(|c| c.as_uuid()))
            .bind(e.at)
            .execute(&mut *conn)
            .await?;
            balance
        });
        Ok(balance)
    }
}
