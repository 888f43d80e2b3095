//! Invitation and password-reset links: `auth_challenges` rows found by
//! the hash of their token, written and used inside the transaction that
//! sends or honours them.

use mpanel_domain::{TenantId, UserId};
use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use super::second_factors::NewChallenge;
use crate::{Store, StoreResult, Tx};

/// A live link's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkOwner {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub user_id: UserId,
}

macro_rules! owner_from_row {
    ($row:expr) => {{
        let row = $row;
        LinkOwner {
            id: row.try_get("id")?,
            tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
            user_id: UserId::from_uuid(row.try_get("user_id")?),
        }
    }};
}

impl Tx {
    /// Retires the user's unused links of `kind` (a new one replaces
    /// them); how many.
    pub async fn retire_links(
        &mut self,
        tenant: TenantId,
        user: UserId,
        kind: &str,
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        let retired = on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE auth_challenges SET used_at = $4
                 WHERE tenant_id = $1 AND user_id = $2 AND kind = $3 AND used_at IS NULL",
            )
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .bind(kind)
            .bind(now)
            .execute(conn)
            .await?
            .rows_affected()
        });
        Ok(retired)
    }

    /// Stores a link (its token's hash).
    pub async fn insert_link(&mut self, c: &NewChallenge<'_>) -> StoreResult<Uuid> {
        let id = Uuid::now_v7();
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO auth_challenges (id, tenant_id, user_id, kind, token_hash, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(c.tenant.as_uuid())
            .bind(c.user.as_uuid())
            .bind(c.kind)
            .bind(c.token_hash)
            .bind(c.expires_at)
            .execute(conn)
            .await?;
        });
        Ok(id)
    }

    /// Uses a live link of `kind` found by its token's hash: single use,
    /// so of two requests with one link only one finds it.
    pub async fn take_link(
        &mut self,
        kind: &str,
        token_hash: &[u8],
        now: OffsetDateTime,
    ) -> StoreResult<Option<LinkOwner>> {
        let found = on_tx!(self, |conn| {
            match sqlx::query(
                "UPDATE auth_challenges SET used_at = $1
                 WHERE kind = $2 AND token_hash = $3 AND used_at IS NULL AND expires_at > $1
                 RETURNING id, tenant_id, user_id",
            )
            .bind(now)
            .bind(kind)
            .bind(token_hash)
            .fetch_optional(conn)
            .await?
            {
                Some(row) => Some(owner_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }
}

impl Store {
    /// The owner of a live link of `kind`, without using it (to check what
    /// comes with it before it is spent).
    pub async fn live_link(
        &self,
        kind: &str,
        token_hash: &[u8],
        now: OffsetDateTime,
    ) -> StoreResult<Option<LinkOwner>> {
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(
                "SELECT id, tenant_id, user_id FROM auth_challenges
                 WHERE kind = $2 AND token_hash = $3 AND used_at IS NULL AND expires_at > $1",
            )
            .bind(now)
            .bind(kind)
            .bind(token_hash)
            .fetch_optional(p)
            .await?
            {
                Some(row) => Some(owner_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }
}
