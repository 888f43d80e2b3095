//! What the billing run reads and writes in bulk: the subscriptions due, the
//! periods it claims (a unique key per subscription and period, so a second
//! run creates nothing), the usage it charges, and invoices written many
//! rows per statement.

use mpanel_domain::{CustomerId, InvoiceId, SubscriptionId, TenantId};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{QueryBuilder, Row};
use time::OffsetDateTime;

use super::invoices::tax_mode_str;
use super::{InvoiceLineRecord, InvoiceRecord};
use crate::audit::AuditEntry;
use crate::subscriptions::{COLUMNS, SubscriptionRecord, subscription_from_row};
use crate::{Engine, StoreResult, Tx};

/// Bind parameters per statement, under both engines' limits.
const MAX_PARAMS: usize = 30_000;

/// A subscription due for billing, with what its lines need.
#[derive(Debug, Clone, PartialEq)]
pub struct DueSubscription {
    pub sub: SubscriptionRecord,
    pub product_name: String,
    pub billing_model: String,
    pub usage: Option<Value>,
}

/// A period the run means to invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodClaim {
    pub subscription: SubscriptionId,
    pub index: i32,
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    pub invoice: Option<InvoiceId>,
}

/// Usage marked as charged on `invoice`: the totals per metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageTotal {
    pub subscription: SubscriptionId,
    pub metric: String,
    pub quantity: i64,
}

/// Which usage an invoice charges: the subscription's unbilled records
/// before `before`.
#[derive(Debug, Clone, Copy)]
pub struct UsageCharge {
    pub subscription: SubscriptionId,
    pub before: OffsetDateTime,
    pub invoice: InvoiceId,
}

/// A subscription's schedule after the run.
#[derive(Debug, Clone, Copy)]
pub struct Advance {
    pub subscription: SubscriptionId,
    pub next_period: i32,
    pub next_bill_at: Option<OffsetDateTime>,
    pub current_period_start: Option<OffsetDateTime>,
    pub current_period_end: Option<OffsetDateTime>,
}

fn rows_per_statement(columns: usize) -> usize {
    (MAX_PARAMS / columns).max(1)
}

impl Tx {
    /// Up to `limit` of the tenant's subscriptions whose next period starts
    /// by `as_of`, in (next_bill_at, id) order after `after`. On PostgreSQL
    /// the rows are locked, and rows another transaction holds (another
    /// run's chunk, a plan change or a staff edit in flight) are skipped for
    /// this run. The lock is the one the chunk's own update takes (`FOR NO
    /// KEY UPDATE`), not `FOR UPDATE`: that one would also hold up, until
    /// the chunk commits, every row written meanwhile that refers to these
    /// subscriptions (the usage records posted during a billing run, checked
    /// by their foreign key), and would make the run skip a subscription
    /// whose usage was being written as it read; a change to the
    /// subscriptions themselves waits either way.
    pub async fn due_subscriptions(
        &mut self,
        tenant: TenantId,
        as_of: OffsetDateTime,
        after: Option<(OffsetDateTime, SubscriptionId)>,
        limit: u32,
    ) -> StoreResult<Vec<DueSubscription>> {
        let lock = match self.engine() {
            Engine::Postgres => " FOR NO KEY UPDATE OF s SKIP LOCKED",
            Engine::Sqlite => "",
        };
        // One plan per case, each walking `subscriptions_due` in order.
        let page = if after.is_some() {
            "AND (s.next_bill_at > $3 OR (s.next_bill_at = $3 AND s.id > $4))"
        } else {
            "AND $3 IS NULL AND $4 IS NULL"
        };
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS}, p.name AS product_name, p.billing_model, p.usage
             FROM subscriptions s JOIN products p ON p.id = s.product_id
             WHERE s.tenant_id = $1 AND s.next_bill_at IS NOT NULL AND s.next_bill_at <= $2
               AND s.status IN ('ACTIVE', 'SUSPENDED') {page}
             ORDER BY s.next_bill_at, s.id LIMIT $5{lock}"
        ));
        let found = on_tx!(self, |conn| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(as_of)
                .bind(after.map(|a| a.0))
                .bind(after.map(|a| a.1).map(|v| v.as_uuid()))
                .bind(i64::from(limit))
                .fetch_all(conn)
                .await?
            {
                let usage: Option<Json<Value>> = row.try_get("usage")?;
                out.push(DueSubscription {
                    sub: subscription_from_row!(&row),
                    product_name: row.try_get("product_name")?,
                    billing_model: row.try_get("billing_model")?,
                    usage: usage.map(|u| u.0),
                });
            }
            out
        });
        Ok(found)
    }

    /// Inserts the periods; returns those this call inserted (a period
    /// already invoiced is left alone).
    pub async fn claim_periods(
        &mut self,
        tenant: TenantId,
        claims: &[PeriodClaim],
        now: OffsetDateTime,
    ) -> StoreResult<Vec<(SubscriptionId, i32)>> {
        let mut claimed = Vec::with_capacity(claims.len());
        for chunk in claims.chunks(rows_per_statement(7)) {
            on_tx!(self, |conn| {
                let mut q = QueryBuilder::new(
                    "INSERT INTO subscription_periods (subscription_id, period_index, tenant_id, period_start, period_end, invoice_id, created_at) ",
                );
                q.push_values(chunk, |mut b, c| {
                    b.push_bind(c.subscription.as_uuid())
                        .push_bind(c.index)
                        .push_bind(tenant.as_uuid())
                        .push_bind(c.start)
                        .push_bind(c.end)
                        .push_bind(c.invoice.map(|i| i.as_uuid()))
                        .push_bind(now);
                });
                q.push(
                    " ON CONFLICT (subscription_id, period_index) DO NOTHING RETURNING subscription_id, period_index",
                );
                for row in q.build().fetch_all(&mut *conn).await? {
                    claimed.push((SubscriptionId::from_uuid(row.try_get(0)?), row.try_get(1)?));
                }
            });
        }
        Ok(claimed)
    }

    /// Forgets the invoice of periods that charged nothing.
    pub async fn clear_period_invoice(
        &mut self,
        subscription: SubscriptionId,
        index: i32,
    ) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query("UPDATE subscription_periods SET invoice_id = NULL WHERE subscription_id = $1 AND period_index = $2")
                .bind(subscription.as_uuid())
                .bind(index)
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    /// Marks each subscription's unbilled usage before `before` as charged
    /// on its invoice; returns the totals per metric.
    pub async fn charge_usage(&mut self, charges: &[UsageCharge]) -> StoreResult<Vec<UsageTotal>> {
        let mut totals = Vec::new();
        for chunk in charges.chunks(rows_per_statement(3)) {
            let engine = self.engine();
            on_tx!(self, |conn| {
                let mut q = QueryBuilder::new("");
                if engine == Engine::Postgres {
                    q.push("WITH v AS (SELECT column1 AS sid, column2 AS before, column3 AS inv FROM (");
                } else {
                    q.push("UPDATE usage_records SET invoice_id = v.inv FROM (SELECT column1 AS sid, column2 AS before, column3 AS inv FROM (");
                }
                q.push_values(chunk, |mut b, c| {
                    b.push_bind(c.subscription.as_uuid())
                        .push_bind(c.before)
                        .push_bind(c.invoice.as_uuid());
                });
                if engine == Engine::Postgres {
                    q.push(
                        ") AS vv), marked AS (UPDATE usage_records u SET invoice_id = v.inv FROM v
                         WHERE u.subscription_id = v.sid AND u.invoice_id IS NULL AND u.occurred_at < v.before
                         RETURNING u.subscription_id, u.metric, u.quantity)
                         SELECT subscription_id, metric, SUM(quantity)::bigint AS quantity FROM marked GROUP BY 1, 2",
                    );
                    for row in q.build().fetch_all(&mut *conn).await? {
                        totals.push(UsageTotal {
                            subscription: SubscriptionId::from_uuid(row.try_get(0)?),
                            metric: row.try_get(1)?,
                            quantity: row.try_get(2)?,
                        });
                    }
                } else {
                    q.push(
                        ") AS vv) AS v WHERE usage_records.subscription_id = v.sid
                         AND usage_records.invoice_id IS NULL AND usage_records.occurred_at < v.before
                         RETURNING subscription_id, metric, quantity",
                    );
                    let mut sums: std::collections::BTreeMap<(SubscriptionId, String), i64> =
                        Default::default();
                    for row in q.build().fetch_all(&mut *conn).await? {
                        let q: i64 = row.try_get(2)?;
                        *sums
                            .entry((SubscriptionId::from_uuid(row.try_get(0)?), row.try_get(1)?))
                            .or_default() += q;
                    }
                    totals.extend(sums.into_iter().map(|((subscription, metric), quantity)| {
                        UsageTotal {
                            subscription,
                            metric,
                            quantity,
                        }
                    }));
                }
            });
        }
        Ok(totals)
    }

    /// Takes `count` consecutive numbers of `kind` for the tenant and year;
    /// returns the first (gapless, like [`Tx::next_document_number`]).
    pub async fn reserve_document_numbers(
        &mut self,
        tenant: TenantId,
        kind: &str,
        year: i32,
        count: u64,
    ) -> StoreResult<u64> {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        let last = on_tx!(self, |conn| {
            sqlx::query_scalar::<_, i64>(
                "INSERT INTO document_sequences (tenant_id, kind, year, last_value) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant_id, kind, year)
                 DO UPDATE SET last_value = document_sequences.last_value + $4
                 RETURNING last_value",
            )
            .bind(tenant.as_uuid())
            .bind(kind)
            .bind(year)
            .bind(count)
            .fetch_one(conn)
            .await?
        });
        Ok(u64::try_from(last - count + 1).unwrap_or(0))
    }

    /// Lets this transaction insert invoice lines before their invoices
    /// until [`Tx::check_invoice_lines_now`]: the lines' foreign key to
    /// their invoice is checked then (or at commit), so a line whose
    /// invoice is never written fails. A line inserted first passes the
    /// frozen-lines trigger, which refuses lines only for an invoice that
    /// exists and is no draft. PostgreSQL only (the billing run's path);
    /// on SQLite it would defer every foreign key until commit.
    pub async fn defer_invoice_line_check(&mut self) -> StoreResult<()> {
        let defer = match self.engine() {
            Engine::Postgres => "SET CONSTRAINTS invoice_lines_invoice_id_fkey DEFERRED",
            Engine::Sqlite => "PRAGMA defer_foreign_keys = ON",
        };
        on_tx!(self, |conn| {
            sqlx::query(defer).execute(conn).await?;
        });
        Ok(())
    }

    /// Checks the invoice lines' foreign key now, for the lines inserted
    /// since [`Tx::defer_invoice_line_check`] and those to come. SQLite
    /// keeps checking at commit: switching its pragma off would forget the
    /// lines it deferred.
    pub async fn check_invoice_lines_now(&mut self) -> StoreResult<()> {
        if self.engine() == Engine::Postgres {
            on_tx!(self, |conn| {
                sqlx::query("SET CONSTRAINTS invoice_lines_invoice_id_fkey IMMEDIATE")
                    .execute(conn)
                    .await?;
            });
        }
        Ok(())
    }

    /// Inserts invoice lines (by invoice id), many rows per statement.
    pub async fn insert_invoice_lines(
        &mut self,
        tenant: TenantId,
        lines: &[(InvoiceId, InvoiceLineRecord)],
    ) -> StoreResult<()> {
        for chunk in lines.chunks(rows_per_statement(14)) {
            on_tx!(self, |conn| {
                let mut q = QueryBuilder::new(
                    "INSERT INTO invoice_lines (id, tenant_id, invoice_id, position, kind, source, description,
                        quantity, unit_price, amount_minor, tax_rate, net_minor, tax_minor, subscription_id) ",
                );
                q.push_values(chunk, |mut b, (invoice, line)| {
                    b.push_bind(line.id)
                        .push_bind(tenant.as_uuid())
                        .push_bind(invoice.as_uuid())
                        .push_bind(line.position)
                        .push_bind(&line.kind)
                        .push_bind(&line.source)
                        .push_bind(&line.description)
                        .push_bind(&line.quantity)
                        .push_bind(&line.unit_price)
                        .push_bind(line.amount_minor)
                        .push_bind(&line.tax_rate)
                        .push_bind(line.net_minor)
                        .push_bind(line.tax_minor)
                        .push_bind(line.subscription_id.map(|v| v.as_uuid()));
                });
                q.build().execute(&mut *conn).await?;
            });
        }
        Ok(())
    }

    /// Inserts invoices as they stand (drafts, or issued and numbered),
    /// many rows per statement.
    pub async fn insert_invoices(&mut self, invoices: &[InvoiceRecord]) -> StoreResult<()> {
        for chunk in invoices.chunks(rows_per_statement(24)) {
            on_tx!(self, |conn| {
                let mut q = QueryBuilder::new(
                    "INSERT INTO invoices (id, tenant_id, customer_id, order_id, status, number, currency, tax_mode,
                        subtotal_minor, tax_minor, total_minor, paid_minor, credited_minor, refunded_minor,
                        customer_snapshot, seller_snapshot, notes, disputed, issued_at, due_at, paid_at, voided_at,
                        created_at, updated_at) ",
                );
                q.push_values(chunk, |mut b, inv| {
                    b.push_bind(inv.id.as_uuid())
                        .push_bind(inv.tenant_id.as_uuid())
                        .push_bind(inv.customer_id.as_uuid())
                        .push_bind(inv.order_id.map(|v| v.as_uuid()))
                        .push_bind(inv.status.as_str())
                        .push_bind(&inv.number)
                        .push_bind(&inv.currency)
                        .push_bind(tax_mode_str(inv.tax_mode))
                        .push_bind(inv.subtotal_minor)
                        .push_bind(inv.tax_minor)
                        .push_bind(inv.total_minor)
                        .push_bind(inv.paid_minor)
                        .push_bind(inv.credited_minor)
                        .push_bind(inv.refunded_minor)
                        .push_bind(inv.customer_snapshot.as_ref().map(Json))
                        .push_bind(inv.seller_snapshot.as_ref().map(Json))
                        .push_bind(Json(&inv.notes))
                        .push_bind(inv.disputed)
                        .push_bind(inv.issued_at)
                        .push_bind(inv.due_at)
                        .push_bind(inv.paid_at)
                        .push_bind(inv.voided_at)
                        .push_bind(inv.created_at)
                        .push_bind(inv.updated_at);
                });
                q.build().execute(&mut *conn).await?;
            });
        }
        Ok(())
    }

    /// DRAFT → ISSUED for drafts this transaction inserted, as `issued`
    /// now holds them: number and dates (lines, amounts, notes and
    /// snapshots were written with the draft). The billing run's way on
    /// SQLite; on PostgreSQL it writes its invoices issued.
    pub async fn issue_drafts(&mut self, issued: &[InvoiceRecord]) -> StoreResult<()> {
        for chunk in issued.chunks(rows_per_statement(4)) {
            on_tx!(self, |conn| {
                let mut q = QueryBuilder::new(
                    "UPDATE invoices SET status = 'ISSUED', number = v.number,
                        issued_at = v.issued_at, due_at = v.due_at, updated_at = v.issued_at
                     FROM (SELECT column1 AS vid, column2 AS number, column3 AS issued_at,
                        column4 AS due_at FROM (",
                );
                q.push_values(chunk, |mut b, inv| {
                    b.push_bind(inv.id.as_uuid())
                        .push_bind(&inv.number)
                        .push_bind(inv.issued_at)
                        .push_bind(inv.due_at);
                });
                // The ids are drafts this transaction inserted for the
                // tenant: a primary-key join, nothing else to match (extra
                // conditions made both engines scan the tenant's invoices).
                q.push(") AS vv) AS v WHERE invoices.id = v.vid");
                q.build().execute(&mut *conn).await?;
            });
        }
        Ok(())
    }

    /// Before a term's final usage is read: waits for the usage being
    /// posted to these subscriptions to commit, and holds off any more
    /// until this transaction ends (PostgreSQL: `FOR UPDATE`, in id order,
    /// which the usage check's `FOR KEY SHARE` in [`Tx::usage_targets`]
    /// waits for). So the term's final invoice has every record accepted
    /// before it ends, and a record posted after is refused. SQLite's
    /// writes are serial already.
    pub async fn close_usage_of(&mut self, subscriptions: &[SubscriptionId]) -> StoreResult<()> {
        if self.engine() == Engine::Sqlite || subscriptions.is_empty() {
            return Ok(());
        }
        let mut sorted = subscriptions.to_vec();
        sorted.sort_unstable();
        for chunk in sorted.chunks(rows_per_statement(1)) {
            on_tx!(self, |conn| {
                let mut q = QueryBuilder::new("SELECT id FROM subscriptions WHERE id IN (");
                let mut sep = q.separated(", ");
                for id in chunk {
                    sep.push_bind(id.as_uuid());
                }
                q.push(") ORDER BY id FOR UPDATE");
                q.build().fetch_all(&mut *conn).await?;
            });
        }
        Ok(())
    }

    /// Moves each subscription's schedule on.
    pub async fn advance_subscriptions(
        &mut self,
        advances: &[Advance],
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        for chunk in advances.chunks(rows_per_statement(5)) {
            on_tx!(self, |conn| {
                let mut q = QueryBuilder::new(
                    "UPDATE subscriptions SET next_period = v.next_period, next_bill_at = v.next_bill_at,
                        current_period_start = v.cps, current_period_end = v.cpe, updated_at = ",
                );
                q.push_bind(now);
                q.push(
                    " FROM (SELECT column1 AS vid, column2 AS next_period, column3 AS next_bill_at,
                        column4 AS cps, column5 AS cpe FROM (",
                );
                q.push_values(chunk, |mut b, a| {
                    b.push_bind(a.subscription.as_uuid())
                        .push_bind(a.next_period)
                        .push_bind(a.next_bill_at)
                        .push_bind(a.current_period_start)
                        .push_bind(a.current_period_end);
                });
                // Ids of the tenant's rows this transaction selected: a
                // primary-key join.
                q.push(") AS vv) AS v WHERE subscriptions.id = v.vid");
                q.build().execute(&mut *conn).await?;
            });
        }
        Ok(())
    }

    /// The customers among `customers` with credit in `currency`.
    pub async fn customers_with_credit(
        &mut self,
        tenant: TenantId,
        customers: &[CustomerId],
    ) -> StoreResult<Vec<(CustomerId, String)>> {
        let mut out = Vec::new();
        for chunk in customers.chunks(rows_per_statement(1)) {
            on_tx!(self, |conn| {
                let mut q = QueryBuilder::new(
                    "SELECT customer_id, currency FROM customer_credit WHERE balance_minor > 0 AND tenant_id = ",
                );
                q.push_bind(tenant.as_uuid());
                q.push(" AND customer_id IN (");
                let mut sep = q.separated(", ");
                for c in chunk {
                    sep.push_bind(c.as_uuid());
                }
                q.push(")");
                for row in q.build().fetch_all(&mut *conn).await? {
                    out.push((CustomerId::from_uuid(row.try_get(0)?), row.try_get(1)?));
                }
            });
        }
        Ok(out)
    }

    /// Audit rows, many per statement.
    pub async fn record_audits(&mut self, entries: &[AuditEntry]) -> StoreResult<()> {
        for chunk in entries.chunks(rows_per_statement(12)) {
            on_tx!(self, |conn| {
                let mut q = QueryBuilder::new(
                    "INSERT INTO audit_log (id, tenant_id, actor_type, actor_id, actor_label, action,
                         target_type, target_id, before, after, request_id, created_at) ",
                );
                q.push_values(chunk, |mut b, e| {
                    b.push_bind(mpanel_domain::AuditEventId::new().as_uuid())
                        .push_bind(e.tenant_id.map(|t| t.as_uuid()))
                        .push_bind(e.actor_type.as_str())
                        .push_bind(e.actor_id)
                        .push_bind(&e.actor_label)
                        .push_bind(&e.action)
                        .push_bind(&e.target_type)
                        .push_bind(&e.target_id)
                        .push_bind(e.before.as_ref().map(Json))
                        .push_bind(e.after.as_ref().map(Json))
                        .push_bind(&e.request_id)
                        .push_bind(e.at);
                });
                q.build().execute(&mut *conn).await?;
            });
        }
        Ok(())
    }
}
