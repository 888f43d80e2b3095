//! The dashboard's days: orders placed and money received per UTC day,
//! grouped in the database (a bounded answer however busy the days).

use mpanel_domain::TenantId;
use sqlx::Row;
use time::OffsetDateTime;

use crate::ops_overview::tenant_uuid;
use crate::{Store, StoreResult};

/// One day's orders and money received in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRow {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub orders: i64,
    /// Payments received that day, per currency (empty string: no money).
    pub currency: String,
    pub received_minor: i64,
}

impl Store {
    /// Orders placed and money received per UTC day since `since`
    /// (grouped in the database: a bounded answer however busy the days).
    pub async fn ops_daily_activity(
        &self,
        tenant: Option<TenantId>,
        since: OffsetDateTime,
    ) -> StoreResult<Vec<DayRow>> {
        let day = match self.engine() {
            crate::Engine::Sqlite => "substr(created_at, 1, 10)",
            crate::Engine::Postgres => "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        };
        // `day` is one of the two fixed expressions above, never input.
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT day, CAST(SUM(orders) AS BIGINT) AS orders, currency,
                    CAST(SUM(received) AS BIGINT) AS received
             FROM (
               SELECT {day} AS day, 1 AS orders, '' AS currency, 0 AS received
               FROM orders WHERE created_at >= $2 AND ($1 IS NULL OR tenant_id = $1)
               UNION ALL
               SELECT {day} AS day, 0 AS orders, currency, amount_minor - refunded_minor AS received
               FROM payments WHERE created_at >= $2 AND status NOT IN ('FAILED', 'PENDING')
                 AND provider <> 'CREDIT' AND ($1 IS NULL OR tenant_id = $1)
             ) activity
             GROUP BY day, currency ORDER BY day, currency"
        ));
        let since = since.to_offset(time::UtcOffset::UTC);
        let rows = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(tenant_uuid(tenant))
                .bind(since)
                .fetch_all(p)
                .await?
            {
                out.push(DayRow {
                    day: row.try_get("day")?,
                    orders: row.try_get("orders")?,
                    currency: row.try_get("currency")?,
                    received_minor: row.try_get("received")?,
                });
            }
            out
        });
        Ok(rows)
    }
}
