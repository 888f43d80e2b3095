//! Dunning: the open invoices reminders and suspensions are about, and the
//! steps already taken per invoice (each at most once).

use mpanel_domain::{CustomerId, InvoiceId, SubscriptionId, TenantId};
use sqlx::{QueryBuilder, Row};
use time::OffsetDateTime;

use crate::{Engine, StoreResult, Tx};

/// An issued invoice not yet paid in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenInvoice {
    pub id: InvoiceId,
    pub customer_id: CustomerId,
    pub number: Option<String>,
    pub due_at: OffsetDateTime,
    /// The keys of the dunning steps already taken for it.
    pub taken: Vec<String>,
}

impl OpenInvoice {
    /// Whether the step with this key was taken.
    pub fn took(&self, key: &str) -> bool {
        self.taken.iter().any(|k| k == key)
    }
}

impl Tx {
    /// The tenant's open invoices due between `from` and `to`, ids above
    /// `after`, oldest id first.
    pub async fn open_invoices_due(
        &mut self,
        tenant: TenantId,
        from: OffsetDateTime,
        to: OffsetDateTime,
        after: Option<InvoiceId>,
        limit: u32,
    ) -> StoreResult<Vec<OpenInvoice>> {
        // The steps taken, as one text: keys hold no comma.
        let taken = match self.engine() {
            Engine::Postgres => "string_agg(d.step, ',')",
            Engine::Sqlite => "group_concat(d.step, ',')",
        };
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT id, customer_id, number, due_at,
               (SELECT {taken} FROM dunning_events d WHERE d.invoice_id = invoices.id) AS taken
             FROM invoices
             WHERE tenant_id = $1 AND status IN ('ISSUED', 'PARTIALLY_PAID', 'OVERDUE')
               AND due_at >= $2 AND due_at <= $3 AND ($4 IS NULL OR id > $4)
             ORDER BY id LIMIT $5"
        ));
        let found = on_tx!(self, |conn| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(from)
                .bind(to)
                .bind(after.map(|a| a.as_uuid()))
                .bind(i64::from(limit))
                .fetch_all(conn)
                .await?
            {
                let taken: Option<String> = row.try_get("taken")?;
                out.push(OpenInvoice {
                    id: InvoiceId::from_uuid(row.try_get("id")?),
                    customer_id: CustomerId::from_uuid(row.try_get("customer_id")?),
                    number: row.try_get("number")?,
                    due_at: row.try_get("due_at")?,
                    taken: taken
                        .map(|t| t.split(',').map(str::to_owned).collect())
                        .unwrap_or_default(),
                });
            }
            out
        });
        Ok(found)
    }

    /// Holds the tenant's invoices among `ids` that are still open `FOR KEY
    /// SHARE` until the transaction ends (PostgreSQL, in id order), and
    /// answers those: what recording a dunning step takes anyway, taken
    /// before the subscriptions they charge, as a payment takes its
    /// invoice and then the subscriptions it restores. An invoice paid (or
    /// voided) since it was read, or while this waited for it, is left
    /// out. SQLite's writes are serial: what was read is current, and all
    /// of `ids` are answered.
    pub async fn share_open_invoices(
        &mut self,
        tenant: TenantId,
        ids: &[InvoiceId],
    ) -> StoreResult<Vec<InvoiceId>> {
        if self.engine() == Engine::Sqlite || ids.is_empty() {
            return Ok(ids.to_vec());
        }
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut open = Vec::with_capacity(sorted.len());
        for chunk in sorted.chunks(10_000) {
            on_tx!(self, |conn| {
                let mut q = QueryBuilder::new("SELECT id FROM invoices WHERE tenant_id = ");
                q.push_bind(tenant.as_uuid());
                q.push(" AND status IN ('ISSUED', 'PARTIALLY_PAID', 'OVERDUE') AND id IN (");
                let mut sep = q.separated(", ");
                for id in chunk {
                    sep.push_bind(id.as_uuid());
                }
                q.push(") ORDER BY id FOR KEY SHARE");
                for row in q.build().fetch_all(&mut *conn).await? {
                    open.push(InvoiceId::from_uuid(row.try_get(0)?));
                }
            });
        }
        Ok(open)
    }

    /// Takes the subscriptions the invoices charge as an update of their
    /// fields does (`FOR NO KEY UPDATE`: usage checked against them is not
    /// waited for) until the transaction ends (PostgreSQL), all in one
    /// statement in id order: a dunning page about to suspend or cancel
    /// them must not take them invoice by invoice (out of id order, against
    /// a payment that restores several in id order). SQLite's writes are
    /// serial already.
    pub async fn lock_subscriptions_of_invoices(
        &mut self,
        tenant: TenantId,
        invoices: &[InvoiceId],
    ) -> StoreResult<()> {
        if self.engine() == Engine::Sqlite || invoices.is_empty() {
            return Ok(());
        }
        on_tx!(self, |conn| {
            let mut q = QueryBuilder::new("SELECT s.id FROM subscriptions s WHERE s.tenant_id = ");
            q.push_bind(tenant.as_uuid());
            q.push(
                " AND s.id IN (SELECT l.subscription_id FROM invoice_lines l WHERE l.tenant_id = ",
            );
            q.push_bind(tenant.as_uuid());
            q.push(" AND l.invoice_id IN (");
            let mut sep = q.separated(", ");
            for id in invoices {
                sep.push_bind(id.as_uuid());
            }
            q.push(")) ORDER BY s.id FOR NO KEY UPDATE");
            q.build().fetch_all(&mut *conn).await?;
        });
        Ok(())
    }

    /// Whether an invoice still open that charges the subscription had its
    /// dunning suspension taken: the subscription stays suspended for it,
    /// whatever other invoice is paid.
    pub async fn subscription_dunned_by_open_invoice(
        &mut self,
        tenant: TenantId,
        subscription: SubscriptionId,
    ) -> StoreResult<bool> {
        let found = on_tx!(self, |conn| {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM invoice_lines l
                   JOIN invoices i ON i.id = l.invoice_id
                   JOIN dunning_events d ON d.invoice_id = i.id AND d.step = 'suspend'
                  WHERE l.tenant_id = $1 AND l.subscription_id = $2
                    AND i.status IN ('ISSUED', 'PARTIALLY_PAID', 'OVERDUE'))",
            )
            .bind(tenant.as_uuid())
            .bind(subscription.as_uuid())
            .fetch_one(conn)
            .await?
        });
        Ok(found)
    }

    /// Records that `step` was taken for the invoice; `false` if it had
    /// been already.
    pub async fn record_dunning_step(
        &mut self,
        tenant: TenantId,
        invoice: InvoiceId,
        step: &str,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let n = on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO dunning_events (invoice_id, step, tenant_id, at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (invoice_id, step) DO NOTHING",
            )
            .bind(invoice.as_uuid())
            .bind(step)
            .bind(tenant.as_uuid())
            .bind(at)
            .execute(conn)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// The steps taken for the invoice, in the order taken.
    pub async fn dunning_steps(
        &mut self,
        tenant: TenantId,
        invoice: InvoiceId,
    ) -> StoreResult<Vec<String>> {
        let found = on_tx!(self, |conn| {
            sqlx::query_scalar::<_, String>(
                "SELECT step FROM dunning_events WHERE tenant_id = $1 AND invoice_id = $2 ORDER BY at, step",
            )
            .bind(tenant.as_uuid())
            .bind(invoice.as_uuid())
            .fetch_all(conn)
            .await?
        });
        Ok(found)
    }

    /// Claims the tenant's scheduled run for a local date; `false` if that
    /// day's run has been claimed already (and not given back, or given
    /// back after `max_attempts` runs).
    pub async fn claim_billing_run(
        &mut self,
        tenant: TenantId,
        run_date: &str,
        at: OffsetDateTime,
        max_attempts: i32,
    ) -> StoreResult<bool> {
        let n = on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO billing_runs (tenant_id, run_date, started_at) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant_id, run_date) DO UPDATE
                 SET attempts = billing_runs.attempts + 1, started_at = excluded.started_at,
                     given_back = FALSE
                 WHERE billing_runs.given_back AND billing_runs.attempts < $4",
            )
            .bind(tenant.as_uuid())
            .bind(run_date)
            .bind(at)
            .bind(max_attempts)
            .execute(conn)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Gives back a day's claim whose run failed, so the scheduled job's
    /// retry runs that tenant again (nothing is invoiced twice).
    pub async fn release_billing_run(
        &mut self,
        tenant: TenantId,
        run_date: &str,
    ) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE billing_runs SET given_back = TRUE WHERE tenant_id = $1 AND run_date = $2",
            )
            .bind(tenant.as_uuid())
            .bind(run_date)
            .execute(conn)
            .await?
            .rows_affected()
        });
        Ok(())
    }
}
