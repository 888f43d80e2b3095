//! Who holds a name on the platform: the pending or active domains of
//! every tenant's orders, the zones served and the sites' domains (each
//! site also answers its `www.` alias, which sits under its domain). The
//! rules of what overlaps are in `mpanel_domain::orders::name_claims`.

use mpanel_domain::orders::name_claims::ancestors;
use mpanel_domain::{SubscriptionId, TenantId};
use sqlx::Row;
use uuid::Uuid;

use crate::{Store, StoreResult};

/// A live name that overlaps the one asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameHolder {
    pub tenant_id: TenantId,
    pub subscription_id: SubscriptionId,
    /// Without a trailing dot.
    pub name: String,
}

/// `$from, …` for `count` bound values.
pub(crate) fn placeholders(from: usize, count: usize) -> String {
    (from..from + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Every live name, in any tenant, that equals `name`, sits above it
    /// (down to its registrable domain) or under it, leaving out those of
    /// subscription `except` (a provisioning job re-checking its own).
    /// Names under it are found by a suffix match: a scan, measured fine
    /// at the sizes a platform holds (see docs/security.md).
    pub async fn name_holders(
        &self,
        name: &str,
        except: Option<SubscriptionId>,
    ) -> StoreResult<Vec<NameHolder>> {
        let mut names = vec![name.to_owned()];
        names.extend(ancestors(name));
        let n = names.len();
        let (plain, plain_under) = (placeholders(1, n), n + 1);
        let (dotted, dotted_under) = (placeholders(n + 2, n), 2 * n + 2);
        let except_at = 2 * n + 3;
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT tenant_id, subscription_id, name FROM domains
              WHERE status IN ('PENDING', 'ACTIVE') AND subscription_id <> ${except_at}
                AND (name IN ({plain}) OR name LIKE ${plain_under})
             UNION ALL
             SELECT tenant_id, subscription_id, name FROM dns_zones
              WHERE status <> 'DELETED' AND subscription_id <> ${except_at}
                AND (name IN ({dotted}) OR name LIKE ${dotted_under})
             UNION ALL
             SELECT tenant_id, subscription_id, domain AS name FROM hosting_accounts
              WHERE status <> 'TERMINATED' AND subscription_id <> ${except_at}
                AND (domain IN ({plain}) OR domain LIKE ${plain_under})"
        ));
        let except = except.map_or(Uuid::nil(), |s| s.as_uuid());
        let holders = on_pool!(self.pool, |p| {
            let mut query = sqlx::query(sql);
            for name in &names {
                query = query.bind(name.clone());
            }
            query = query.bind(format!("%.{name}"));
            for name in &names {
                query = query.bind(format!("{name}."));
            }
            query = query.bind(format!("%.{name}.")).bind(except);
            let mut out = Vec::new();
            for row in query.fetch_all(p).await? {
                let name: String = row.try_get("name")?;
                out.push(NameHolder {
                    tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
                    subscription_id: SubscriptionId::from_uuid(row.try_get("subscription_id")?),
                    name: name.trim_end_matches('.').to_owned(),
                });
            }
            out
        });
        Ok(holders)
    }
}
