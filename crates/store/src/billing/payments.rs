//! Payments against invoices, and credit notes.

use mpanel_domain::{CreditNoteId, CustomerId, InvoiceId, PaymentId, TenantId};
use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Store, StoreResult, Tx};

#[derive(Debug, Clone, PartialEq)]
pub struct PaymentRecord {
    pub id: PaymentId,
    pub tenant_id: TenantId,
    pub invoice_id: InvoiceId,
    pub customer_id: CustomerId,
    /// `MANUAL`, `BANK_TRANSFER`, `STRIPE`, `CREDIT`.
    pub provider: String,
    pub reference: Option<String>,
    pub currency: String,
    pub amount_minor: i64,
    pub applied_minor: i64,
    pub refunded_minor: i64,
    /// `PENDING`, `SUCCESS`, `FAILED`, `REFUNDED`, `PARTIALLY_REFUNDED`.
    pub status: String,
    pub failure: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreditNoteRecord {
    pub id: CreditNoteId,
    pub tenant_id: TenantId,
    pub invoice_id: InvoiceId,
    pub customer_id: CustomerId,
    pub number: String,
    pub currency: String,
    pub amount_minor: i64,
    /// `REDUCE_BALANCE`, `REFUND`, `CREDIT`.
    pub disposition: String,
    pub reason: String,
    pub payment_id: Option<PaymentId>,
    pub external_ref: Option<String>,
    pub created_at: OffsetDateTime,
}

const PAYMENT_COLUMNS: &str = "id, tenant_id, invoice_id, customer_id, provider, reference, currency, \
     amount_minor, applied_minor, refunded_minor, status, failure, created_at, updated_at";

const NOTE_COLUMNS: &str = "id, tenant_id, invoice_id, customer_id, number, currency, amount_minor, \
     disposition, reason, payment_id, external_ref, created_at";

macro_rules! payment_from_row {
    ($row:expr) => {{
        let row = $row;
        PaymentRecord {
            id: PaymentId::from_uuid(row.try_get("id")?),
            tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
            invoice_id: InvoiceId::from_uuid(row.try_get("invoice_id")?),
            customer_id: CustomerId::from_uuid(row.try_get("customer_id")?),
            provider: row.try_get("provider")?,
            reference: row.try_get("reference")?,
            currency: row.try_get("currency")?,
            amount_minor: row.try_get("amount_minor")?,
            applied_minor: row.try_get("applied_minor")?,
            refunded_minor: row.try_get("refunded_minor")?,
            status: row.try_get("status")?,
            failure: row.try_get("failure")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        }
    }};
}

macro_rules! note_from_row {
    ($row:expr) => {{
        let row = $row;
        let payment: Option<Uuid> = row.try_get("payment_id")?;
        CreditNoteRecord {
            id: CreditNoteId::from_uuid(row.try_get("id")?),
            tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
            invoice_id: InvoiceId::from_uuid(row.try_get("invoice_id")?),
            customer_id: CustomerId::from_uuid(row.try_get("customer_id")?),
            number: row.try_get("number")?,
            currency: row.try_get("currency")?,
            amount_minor: row.try_get("amount_minor")?,
            disposition: row.try_get("disposition")?,
            reason: row.try_get("reason")?,
            payment_id: payment.map(PaymentId::from_uuid),
            external_ref: row.try_get("external_ref")?,
            created_at: row.try_get("created_at")?,
        }
    }};
}

impl Store {
    pub async fn payments_of(
        &self,
        tenant: TenantId,
        invoice: InvoiceId,
    ) -> StoreResult<Vec<PaymentRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE tenant_id = $1 AND invoice_id = $2 ORDER BY id"
        ));
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(invoice.as_uuid())
                .fetch_all(p)
                .await?
            {
                out.push(payment_from_row!(&row));
            }
            out
        });
        Ok(found)
    }

    pub async fn credit_notes_of(
        &self,
        tenant: TenantId,
        invoice: InvoiceId,
    ) -> StoreResult<Vec<CreditNoteRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {NOTE_COLUMNS} FROM credit_notes WHERE tenant_id = $1 AND invoice_id = $2 ORDER BY id"
        ));
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(invoice.as_uuid())
                .fetch_all(p)
                .await?
            {
                out.push(note_from_row!(&row));
            }
            out
        });
        Ok(found)
    }

    pub async fn credit_note(
        &self,
        tenant: TenantId,
        id: CreditNoteId,
    ) -> StoreResult<Option<CreditNoteRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {NOTE_COLUMNS} FROM credit_notes WHERE tenant_id = $1 AND id = $2"
        ));
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(p)
                .await?
            {
                Some(row) => Some(note_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }
}

impl Tx {
    /// Inserts a payment; a provider reference already recorded is a
    /// `Conflict("payments_reference")`.
    pub async fn insert_payment(&mut self, p: &PaymentRecord) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO payments (id, tenant_id, invoice_id, customer_id, provider, reference, currency,
                    amount_minor, applied_minor, refunded_minor, status, failure, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(p.id.as_uuid())
            .bind(p.tenant_id.as_uuid())
            .bind(p.invoice_id.as_uuid())
            .bind(p.customer_id.as_uuid())
            .bind(&p.provider)
            .bind(&p.reference)
            .bind(&p.currency)
            .bind(p.amount_minor)
            .bind(p.applied_minor)
            .bind(p.refunded_minor)
            .bind(&p.status)
            .bind(&p.failure)
            .bind(p.created_at)
            .bind(p.updated_at)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    /// The successful payment a provider reference recorded, if any.
    pub async fn payment_by_reference(
        &mut self,
        tenant: TenantId,
        provider: &str,
        reference: &str,
    ) -> StoreResult<Option<PaymentRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments
             WHERE tenant_id = $1 AND provider = $2 AND reference = $3 AND status <> 'FAILED'"
        ));
        let found = on_tx!(self, |conn| {
            match sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(provider)
                .bind(reference)
                .fetch_optional(conn)
                .await?
            {
                Some(row) => Some(payment_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// The invoice's payments that still hold money, newest first.
    pub async fn refundable_payments(
        &mut self,
        tenant: TenantId,
        invoice: InvoiceId,
    ) -> StoreResult<Vec<PaymentRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments
             WHERE tenant_id = $1 AND invoice_id = $2 AND status IN ('SUCCESS', 'PARTIALLY_REFUNDED')
               AND applied_minor > refunded_minor
             ORDER BY id DESC"
        ));
        let found = on_tx!(self, |conn| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(invoice.as_uuid())
                .fetch_all(conn)
                .await?
            {
                out.push(payment_from_row!(&row));
            }
            out
        });
        Ok(found)
    }

    pub async fn set_payment_refunded(
        &mut self,
        tenant: TenantId,
        id: PaymentId,
        refunded_minor: i64,
        status: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE payments SET refunded_minor = $3, status = $4, updated_at = $5
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.as_uuid())
            .bind(id.as_uuid())
            .bind(refunded_minor)
            .bind(status)
            .bind(now)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    pub async fn insert_credit_note(&mut self, n: &CreditNoteRecord) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO credit_notes (id, tenant_id, invoice_id, customer_id, number, currency,
                    amount_minor, disposition, reason, payment_id, external_ref, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(n.id.as_uuid())
            .bind(n.tenant_id.as_uuid())
            .bind(n.invoice_id.as_uuid())
            .bind(n.customer_id.as_uuid())
            .bind(&n.number)
            .bind(&n.currency)
            .bind(n.amount_minor)
            .bind(&n.disposition)
            .bind(&n.reason)
            .bind(n.payment_id.map(|p| p.as_uuid()))
            .bind(&n.external_ref)
            .bind(n.created_at)
            .execute(conn)
            .await?;
        });
        Ok(())
    }
}
