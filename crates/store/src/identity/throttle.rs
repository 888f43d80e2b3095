//! Login throttling state, per key (`account:…` or `address:…`), shared by
//! every node through the database.

use mpanel_domain::identity::throttle::ThrottleState;
use sqlx::Row;

use crate::{Store, StoreResult};

impl Store {
    pub async fn throttle_state(&self, key: &str) -> StoreResult<Option<ThrottleState>> {
        let state = on_pool!(self.pool, |p| {
            match sqlx::query(
                "SELECT failures, last_failure_at, locked_until FROM login_throttle WHERE key = $1",
            )
            .bind(key)
            .fetch_optional(p)
            .await?
            {
                None => None,
                Some(row) => {
                    let failures: i32 = row.try_get("failures")?;
                    Some(ThrottleState {
                        failures: u32::try_from(failures).unwrap_or(0),
                        last_failure_at: row.try_get("last_failure_at")?,
                        locked_until: row.try_get("locked_until")?,
                    })
                }
            }
        });
        Ok(state)
    }

    pub async fn save_throttle_state(&self, key: &str, state: &ThrottleState) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query(
                "INSERT INTO login_throttle (key, failures, last_failure_at, locked_until)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (key) DO UPDATE SET failures = $2, last_failure_at = $3, locked_until = $4",
            )
            .bind(key)
            .bind(i32::try_from(state.failures).unwrap_or(i32::MAX))
            .bind(state.last_failure_at)
            .bind(state.locked_until)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    pub async fn clear_throttle(&self, key: &str) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query("DELETE FROM login_throttle WHERE key = $1")
                .bind(key)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Counts one more attempt under `key`, atomically and only while it is
    /// not locked (`None`: locked). Failures older than `forget_before` are
    /// forgotten first; an attempt beyond `free` attempts locks the key until
    /// `provisional_until` at once, before its secret is even checked, so
    /// parallel attempts cannot slip past the allowance.
    pub async fn claim_throttle_attempt(
        &self,
        key: &str,
        now: time::OffsetDateTime,
        forget_before: time::OffsetDateTime,
        free: u32,
        provisional_until: time::OffsetDateTime,
    ) -> StoreResult<Option<u32>> {
        let free = i32::try_from(free).unwrap_or(i32::MAX);
        let n = on_pool!(self.writer, |p| {
            sqlx::query_scalar::<_, i32>(
                "INSERT INTO login_throttle (key, failures, last_failure_at, locked_until)
                 VALUES ($1, 1, $2, CASE WHEN 1 > $4 THEN $5 ELSE NULL END)
                 ON CONFLICT (key) DO UPDATE SET
                     failures = CASE WHEN login_throttle.last_failure_at < $3 THEN 1
                                     ELSE login_throttle.failures + 1 END,
                     locked_until = CASE WHEN (CASE WHEN login_throttle.last_failure_at < $3 THEN 1
                                                    ELSE login_throttle.failures + 1 END) > $4
                                         THEN $5 ELSE NULL END,
                     last_failure_at = $2
                 WHERE login_throttle.locked_until IS NULL OR login_throttle.locked_until <= $2
                 RETURNING failures",
            )
            .bind(key)
            .bind(now)
            .bind(forget_before)
            .bind(free)
            .bind(provisional_until)
            .fetch_optional(p)
            .await?
        });
        Ok(n.map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    /// Locks `key` until `until` (never shortens a longer lock).
    pub async fn lock_throttle(&self, key: &str, until: time::OffsetDateTime) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE login_throttle SET locked_until = $2
                 WHERE key = $1 AND (locked_until IS NULL OR locked_until < $2)",
            )
            .bind(key)
            .bind(until)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Counts one more failure under `key`, atomically (failures older than
    /// `forget_before` are forgotten first); returns the new count.
    pub async fn bump_throttle(
        &self,
        key: &str,
        now: time::OffsetDateTime,
        forget_before: time::OffsetDateTime,
    ) -> StoreResult<u32> {
        let n = on_pool!(self.writer, |p| {
            sqlx::query_scalar::<_, i32>(
                "INSERT INTO login_throttle (key, failures, last_failure_at) VALUES ($1, 1, $2)
                 ON CONFLICT (key) DO UPDATE SET
                     failures = CASE WHEN login_throttle.last_failure_at < $3 THEN 1
                                     ELSE login_throttle.failures + 1 END,
                     last_failure_at = $2
                 RETURNING failures",
            )
            .bind(key)
            .bind(now)
            .bind(forget_before)
            .fetch_one(p)
            .await?
        });
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }
}
