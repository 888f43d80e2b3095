//! Invoices and their lines. Drafts are edited freely; once issued, the
//! database itself refuses changes to the frozen fields (triggers), and
//! only the money columns and the status move.

use mpanel_domain::billing::invoice::InvoiceStatus;
use mpanel_domain::billing::tax::TaxMode;
use mpanel_domain::{CustomerId, InvoiceId, OrderId, SubscriptionId, TenantId};
use serde_json::Value;
use sqlx::Row;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Engine, Store, StoreError, StoreResult, Tx};

#[derive(Debug, Clone, PartialEq)]
pub struct InvoiceRecord {
    pub id: InvoiceId,
    pub tenant_id: TenantId,
    pub customer_id: CustomerId,
    pub order_id: Option<OrderId>,
    pub status: InvoiceStatus,
    pub number: Option<String>,
    pub currency: String,
    pub tax_mode: TaxMode,
    pub subtotal_minor: i64,
    pub tax_minor: i64,
    pub total_minor: i64,
    pub paid_minor: i64,
    pub credited_minor: i64,
    pub refunded_minor: i64,
    pub customer_snapshot: Option<Value>,
    pub seller_snapshot: Option<Value>,
    pub notes: Vec<String>,
    pub disputed: bool,
    pub issued_at: Option<OffsetDateTime>,
    pub due_at: Option<OffsetDateTime>,
    pub paid_at: Option<OffsetDateTime>,
    pub voided_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InvoiceLineRecord {
    pub id: Uuid,
    pub position: i32,
    pub kind: String,
    pub source: String,
    pub description: String,
    /// Decimals, kept as entered (no float on the way).
    pub quantity: String,
    pub unit_price: String,
    pub amount_minor: i64,
    pub tax_rate: String,
    pub net_minor: i64,
    pub tax_minor: i64,
    pub subscription_id: Option<SubscriptionId>,
}

/// What issuing freezes.
#[derive(Debug, Clone)]
pub struct IssueFields {
    pub number: String,
    pub customer_snapshot: Value,
    pub seller_snapshot: Value,
    pub notes: Vec<String>,
    pub issued_at: OffsetDateTime,
    pub due_at: OffsetDateTime,
}

/// The columns that move after issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvoiceMoney {
    pub status: InvoiceStatus,
    pub paid_minor: i64,
    pub credited_minor: i64,
    pub refunded_minor: i64,
    pub paid_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Default)]
pub struct InvoiceFilter {
    /// As the reader sees it (an open invoice past due is `OVERDUE`).
    pub status: Option<InvoiceStatus>,
    pub customer: Option<CustomerId>,
    /// Issued (or, for drafts, created) at or after.
    pub from: Option<OffsetDateTime>,
    /// … and before.
    pub to: Option<OffsetDateTime>,
    /// Ids below this one (the cursor).
    pub before: Option<InvoiceId>,
    pub limit: u32,
    /// Customers never see drafts.
    pub issued_only: bool,
}

const COLUMNS: &str = "id, tenant_id, customer_id, order_id, status, number, currency, tax_mode, \
     subtotal_minor, tax_minor, total_minor, paid_minor, credited_minor, refunded_minor, \
     customer_snapshot, seller_snapshot, notes, disputed, issued_at, due_at, paid_at, voided_at, \
     created_at, updated_at";

const LINE_COLUMNS: &str = "id, position, kind, source, description, quantity, unit_price, \
     amount_minor, tax_rate, net_minor, tax_minor, subscription_id";

/// An invoice (`i`) with its lines (`l`, each column as `l_<name>`) in one
/// statement: one row per line, or one with the `l_` columns NULL.
const WITH_LINES: &str = "SELECT i.id AS id, i.tenant_id AS tenant_id, \
     i.customer_id AS customer_id, i.order_id AS order_id, i.status AS status, \
     i.number AS number, i.currency AS currency, i.tax_mode AS tax_mode, \
     i.subtotal_minor AS subtotal_minor, i.tax_minor AS tax_minor, \
     i.total_minor AS total_minor, i.paid_minor AS paid_minor, \
     i.credited_minor AS credited_minor, i.refunded_minor AS refunded_minor, \
     i.customer_snapshot AS customer_snapshot, i.seller_snapshot AS seller_snapshot, \
     i.notes AS notes, i.disputed AS disputed, i.issued_at AS issued_at, i.due_at AS due_at, \
     i.paid_at AS paid_at, i.voided_at AS voided_at, i.created_at AS created_at, \
     i.updated_at AS updated_at, \
     l.id AS l_id, l.position AS l_position, l.kind AS l_kind, l.source AS l_source, \
     l.description AS l_description, l.quantity AS l_quantity, l.unit_price AS l_unit_price, \
     l.amount_minor AS l_amount_minor, l.tax_rate AS l_tax_rate, l.net_minor AS l_net_minor, \
     l.tax_minor AS l_tax_minor, l.subscription_id AS l_subscription_id \
     FROM invoices i LEFT JOIN invoice_lines l ON l.tenant_id = i.tenant_id AND l.invoice_id = i.id \
     WHERE i.tenant_id = $1 AND i.id = $2 ORDER BY l.position";

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(
        format!("invoice {what} {value:?}").into(),
    ))
}

macro_rules! invoice_from_row {
    ($row:expr) => {{
        let row = $row;
        let status: String = row.try_get("status")?;
        let tax_mode: String = row.try_get("tax_mode")?;
        let customer_snapshot: Option<Json<Value>> = row.try_get("customer_snapshot")?;
        let seller_snapshot: Option<Json<Value>> = row.try_get("seller_snapshot")?;
        let notes: Json<Vec<String>> = row.try_get("notes")?;
        InvoiceRecord {
            id: InvoiceId::from_uuid(row.try_get("id")?),
            tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
            customer_id: CustomerId::from_uuid(row.try_get("customer_id")?),
            order_id: row
                .try_get::<Option<uuid::Uuid>, _>("order_id")?
                .map(OrderId::from_uuid),
            status: status.parse().map_err(|_| corrupt("status", &status))?,
            number: row.try_get("number")?,
            currency: row.try_get("currency")?,
            tax_mode: match tax_mode.as_str() {
                "INCLUSIVE" => TaxMode::Inclusive,
                "EXCLUSIVE" => TaxMode::Exclusive,
                other => return Err(corrupt("tax mode", other)),
            },
            subtotal_minor: row.try_get("subtotal_minor")?,
            tax_minor: row.try_get("tax_minor")?,
            total_minor: row.try_get("total_minor")?,
            paid_minor: row.try_get("paid_minor")?,
            credited_minor: row.try_get("credited_minor")?,
            refunded_minor: row.try_get("refunded_minor")?,
            customer_snapshot: customer_snapshot.map(|j| j.0),
            seller_snapshot: seller_snapshot.map(|j| j.0),
            notes: notes.0,
            disputed: row.try_get("disputed")?,
            issued_at: row.try_get("issued_at")?,
            due_at: row.try_get("due_at")?,
            paid_at: row.try_get("paid_at")?,
            voided_at: row.try_get("voided_at")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        }
    }};
}

/// A line from a row of [`LINE_COLUMNS`], or of the `l_` columns
/// ([`WITH_LINES`]) with their prefix (`line_from_row!(&row, "l_")`).
macro_rules! line_from_row {
    ($row:expr) => {
        line_from_row!($row, "")
    };
    ($row:expr, $prefix:literal) => {{
        let row = $row;
        InvoiceLineRecord {
            id: row.try_get(concat!($prefix, "id"))?,
            position: row.try_get(concat!($prefix, "position"))?,
            kind: row.try_get(concat!($prefix, "kind"))?,
            source: row.try_get(concat!($prefix, "source"))?,
            description: row.try_get(concat!($prefix, "description"))?,
            quantity: row.try_get(concat!($prefix, "quantity"))?,
            unit_price: row.try_get(concat!($prefix, "unit_price"))?,
            amount_minor: row.try_get(concat!($prefix, "amount_minor"))?,
            tax_rate: row.try_get(concat!($prefix, "tax_rate"))?,
            net_minor: row.try_get(concat!($prefix, "net_minor"))?,
            tax_minor: row.try_get(concat!($prefix, "tax_minor"))?,
            subscription_id: row
                .try_get::<Option<uuid::Uuid>, _>(concat!($prefix, "subscription_id"))?
                .map(SubscriptionId::from_uuid),
        }
    }};
}

pub(crate) fn tax_mode_str(mode: TaxMode) -> &'static str {
    match mode {
        TaxMode::Inclusive => "INCLUSIVE",
        TaxMode::Exclusive => "EXCLUSIVE",
    }
}

/// The status a reader sees, in SQL (mirrors `effective_status`).
const EFFECTIVE_STATUS: &str = "CASE WHEN status IN ('ISSUED', 'PARTIALLY_PAID') AND due_at < $2 \
     THEN 'OVERDUE' ELSE status END";

impl Store {
    pub async fn invoice(
        &self,
        tenant: TenantId,
        id: InvoiceId,
    ) -> StoreResult<Option<InvoiceRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM invoices WHERE tenant_id = $1 AND id = $2"
        ));
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(p)
                .await?
            {
                Some(row) => Some(invoice_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// The invoice and its lines, in one statement.
    pub async fn invoice_with_lines(
        &self,
        tenant: TenantId,
        id: InvoiceId,
    ) -> StoreResult<Option<(InvoiceRecord, Vec<InvoiceLineRecord>)>> {
        // One statement, not two: each is a round trip (to SQLite's
        // connection thread, or to PostgreSQL), and this is the page every
        // invoice link opens.
        let found = on_pool!(self.pool, |p| {
            let rows = sqlx::query(WITH_LINES)
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_all(p)
                .await?;
            match rows.first() {
                None => None,
                Some(first) => {
                    let invoice = invoice_from_row!(first);
                    let mut lines = Vec::with_capacity(rows.len());
                    for row in &rows {
                        if row.try_get::<Option<uuid::Uuid>, _>("l_id")?.is_some() {
                            lines.push(line_from_row!(row, "l_"));
                        }
                    }
                    Some((invoice, lines))
                }
            }
        });
        Ok(found)
    }

    pub async fn invoice_lines(
        &self,
        tenant: TenantId,
        id: InvoiceId,
    ) -> StoreResult<Vec<InvoiceLineRecord>> {
        // One statement: no transaction around it (on PostgreSQL a BEGIN
        // and a COMMIT would double its round trips).
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {LINE_COLUMNS} FROM invoice_lines WHERE tenant_id = $1 AND invoice_id = $2 ORDER BY position"
        ));
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_all(p)
                .await?
            {
                out.push(line_from_row!(&row));
            }
            out
        });
        Ok(found)
    }

    /// Newest first; `now` decides which open invoices read as overdue.
    pub async fn list_invoices(
        &self,
        tenant: TenantId,
        filter: &InvoiceFilter,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<InvoiceRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM invoices
             WHERE tenant_id = $1
               AND ($3 IS NULL OR {EFFECTIVE_STATUS} = $3)
               AND ($4 IS NULL OR customer_id = $4)
               AND ($5 IS NULL OR COALESCE(issued_at, created_at) >= $5)
               AND ($6 IS NULL OR COALESCE(issued_at, created_at) < $6)
               AND ($7 IS NULL OR id < $7)
               AND ($9 = FALSE OR status <> 'DRAFT')
             ORDER BY id DESC LIMIT $8"
        ));
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(now)
                .bind(filter.status.map(|s| s.as_str()))
                .bind(filter.customer.map(|v| v.as_uuid()))
                .bind(filter.from)
                .bind(filter.to)
                .bind(filter.before.map(|b| b.as_uuid()))
                .bind(i64::from(filter.limit))
                .bind(filter.issued_only)
                .fetch_all(p)
                .await?
            {
                out.push(invoice_from_row!(&row));
            }
            out
        });
        Ok(found)
    }
}

impl Tx {
    /// The invoice, locked until this transaction ends (PostgreSQL; SQLite
    /// write transactions are serial already); `None` when the tenant has
    /// no such invoice.
    pub async fn invoice_for_update(
        &mut self,
        tenant: TenantId,
        id: InvoiceId,
    ) -> StoreResult<Option<InvoiceRecord>> {
        let lock = if self.engine() == Engine::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM invoices WHERE tenant_id = $1 AND id = $2{lock}"
        ));
        let found = on_tx!(self, |conn| {
            match sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(conn)
                .await?
            {
                Some(row) => Some(invoice_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// The tenant's invoices among `ids`, in no particular order (the
    /// billing run's, for their customers' copies).
    pub async fn invoices_by_ids(
        &mut self,
        tenant: TenantId,
        ids: &[InvoiceId],
    ) -> StoreResult<Vec<InvoiceRecord>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(10_000) {
            on_tx!(self, |conn| {
                let mut q = sqlx::QueryBuilder::new(format!(
                    "SELECT {COLUMNS} FROM invoices WHERE id IN ("
                ));
                let mut sep = q.separated(", ");
                for id in chunk {
                    sep.push_bind(id.as_uuid());
                }
                q.push(")");
                for row in q.build().fetch_all(&mut *conn).await? {
                    out.push(invoice_from_row!(&row));
                }
            });
        }
        out.retain(|inv| inv.tenant_id == tenant);
        Ok(out)
    }

    pub async fn invoice_lines(
        &mut self,
        tenant: TenantId,
        id: InvoiceId,
    ) -> StoreResult<Vec<InvoiceLineRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {LINE_COLUMNS} FROM invoice_lines WHERE tenant_id = $1 AND invoice_id = $2 ORDER BY position"
        ));
        let found = on_tx!(self, |conn| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_all(conn)
                .await?
            {
                out.push(line_from_row!(&row));
            }
            out
        });
        Ok(found)
    }

    /// Inserts a draft (or, for an order, an invoice about to be issued).
    pub async fn insert_invoice(&mut self, inv: &InvoiceRecord) -> StoreResult<()> {
        self.insert_invoices(std::slice::from_ref(inv)).await
    }

    /// Replaces a draft's lines and amounts (the triggers refuse this once
    /// the invoice is issued).
    pub async fn replace_draft(
        &mut self,
        inv: &InvoiceRecord,
        lines: &[InvoiceLineRecord],
    ) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query("DELETE FROM invoice_lines WHERE tenant_id = $1 AND invoice_id = $2")
                .bind(inv.tenant_id.as_uuid())
                .bind(inv.id.as_uuid())
                .execute(&mut *conn)
                .await?;
        });
        // One statement: PostgreSQL checks added lines once per statement.
        let lines: Vec<(InvoiceId, InvoiceLineRecord)> =
            lines.iter().map(|l| (inv.id, l.clone())).collect();
        self.insert_invoice_lines(inv.tenant_id, &lines).await?;
        on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE invoices SET customer_id = $3, currency = $4, tax_mode = $5, subtotal_minor = $6,
                    tax_minor = $7, total_minor = $8, notes = $9, updated_at = $10
                 WHERE tenant_id = $1 AND id = $2 AND status = 'DRAFT'",
            )
            .bind(inv.tenant_id.as_uuid())
            .bind(inv.id.as_uuid())
            .bind(inv.customer_id.as_uuid())
            .bind(&inv.currency)
            .bind(tax_mode_str(inv.tax_mode))
            .bind(inv.subtotal_minor)
            .bind(inv.tax_minor)
            .bind(inv.total_minor)
            .bind(Json(&inv.notes))
            .bind(inv.updated_at)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// DRAFT → ISSUED with its number, snapshots and dates, in one write.
    pub async fn issue_invoice(
        &mut self,
        tenant: TenantId,
        id: InvoiceId,
        fields: &IssueFields,
    ) -> StoreResult<()> {
        let n = on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE invoices SET status = 'ISSUED', number = $3, customer_snapshot = $4,
                    seller_snapshot = $5, notes = $6, issued_at = $7, due_at = $8, updated_at = $7
                 WHERE tenant_id = $1 AND id = $2 AND status = 'DRAFT'",
            )
            .bind(tenant.as_uuid())
            .bind(id.as_uuid())
            .bind(&fields.number)
            .bind(Json(&fields.customer_snapshot))
            .bind(Json(&fields.seller_snapshot))
            .bind(Json(&fields.notes))
            .bind(fields.issued_at)
            .bind(fields.due_at)
            .execute(conn)
            .await?
            .rows_affected()
        });
        if n == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict("invoice_not_draft".into()))
        }
    }

    /// Writes the money columns and the status of an issued invoice.
    pub async fn update_invoice_money(
        &mut self,
        tenant: TenantId,
        id: InvoiceId,
        money: &InvoiceMoney,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE invoices SET status = $3, paid_minor = $4, credited_minor = $5, refunded_minor = $6,
                    paid_at = $7, updated_at = $8
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.as_uuid())
            .bind(id.as_uuid())
            .bind(money.status.as_str())
            .bind(money.paid_minor)
            .bind(money.credited_minor)
            .bind(money.refunded_minor)
            .bind(money.paid_at)
            .bind(now)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    pub async fn void_invoice(
        &mut self,
        tenant: TenantId,
        id: InvoiceId,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE invoices SET status = 'VOID', voided_at = $3, updated_at = $3
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.as_uuid())
            .bind(id.as_uuid())
            .bind(now)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    pub async fn flag_invoice_disputed(
        &mut self,
        tenant: TenantId,
        id: InvoiceId,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE invoices SET disputed = TRUE, updated_at = $3 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.as_uuid())
            .bind(id.as_uuid())
            .bind(now)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    /// Records `OVERDUE` on open invoices past their due date; returns them.
    pub async fn mark_overdue_invoices(
        &mut self,
        now: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<(TenantId, InvoiceId)>> {
        let found = on_tx!(self, |conn| {
            let mut out = Vec::new();
            for row in sqlx::query(
                "UPDATE invoices SET status = 'OVERDUE', updated_at = $1
                 WHERE id IN (SELECT id FROM invoices
                              WHERE status IN ('ISSUED', 'PARTIALLY_PAID') AND due_at < $1 LIMIT $2)
                   -- Again here: on PostgreSQL a row paid or voided while
                   -- this waited for its lock is re-checked by this clause.
                   AND status IN ('ISSUED', 'PARTIALLY_PAID') AND due_at < $1
                 RETURNING tenant_id, id",
            )
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await?
            {
                out.push((
                    TenantId::from_uuid(row.try_get("tenant_id")?),
                    InvoiceId::from_uuid(row.try_get("id")?),
                ));
            }
            out
        });
        Ok(found)
    }

    /// The order's invoice, if it has one.
    pub async fn invoice_of_order(
        &mut self,
        tenant: TenantId,
        order: OrderId,
    ) -> StoreResult<Option<InvoiceId>> {
        let found = on_tx!(self, |conn| {
            sqlx::query_scalar::<_, Uuid>(
                "SELECT id FROM invoices WHERE tenant_id = $1 AND order_id = $2 AND status <> 'VOID'",
            )
            .bind(tenant.as_uuid())
            .bind(order.as_uuid())
            .fetch_optional(conn)
            .await?
        });
        Ok(found.map(InvoiceId::from_uuid))
    }
}
