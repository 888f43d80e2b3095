//! Signing keys kept in the database, so every node signs and verifies
//! with the same key without configuration.

use time::OffsetDateTime;

use crate::{Store, StoreResult};

impl Store {
    /// The key called `name`, created from `candidate` if there is none yet
    /// (the first node to ask wins; everyone gets the stored key).
    pub async fn signing_key_or_insert(
        &self,
        name: &str,
        candidate: &[u8],
        now: OffsetDateTime,
    ) -> StoreResult<Vec<u8>> {
        let key = on_pool!(self.writer, |p| {
            sqlx::query(
                "INSERT INTO signing_keys (name, secret, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(candidate)
            .bind(now)
            .execute(p)
            .await?;
            sqlx::query_scalar::<_, Vec<u8>>("SELECT secret FROM signing_keys WHERE name = $1")
                .bind(name)
                .fetch_one(p)
                .await?
        });
        Ok(key)
    }
}
