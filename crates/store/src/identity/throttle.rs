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
        on_pool!(self.pool, |p| {
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
        on_pool!(self.pool, |p| {
            sqlx::query("DELETE FROM login_throttle WHERE key = $1")
                .bind(key)
                .execute(p)
                .await?;
        });
        Ok(())
    }
}
