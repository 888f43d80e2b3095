//! A tenant's own templates of a message kind, used instead of the
//! built-in ones.

use mpanel_domain::TenantId;
use mpanel_domain::notify::EmailKind;
use sqlx::Row;
use time::OffsetDateTime;

use crate::{Store, StoreResult, Tx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailTemplateRecord {
    pub tenant_id: TenantId,
    pub kind: EmailKind,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub updated_at: OffsetDateTime,
}

const COLUMNS: &str = "tenant_id, kind, subject, text_body, html_body, updated_at";

macro_rules! template_from_row {
    ($row:expr) => {{
        let row = $row;
        let kind: String = row.try_get("kind")?;
        EmailTemplateRecord {
            tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
            kind: kind
                .parse()
                .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
            subject: row.try_get("subject")?,
            text_body: row.try_get("text_body")?,
            html_body: row.try_get("html_body")?,
            updated_at: row.try_get("updated_at")?,
        }
    }};
}

impl Tx {
    /// The tenant's template of `kind`, read where the message is written.
    pub async fn email_template(
        &mut self,
        tenant: TenantId,
        kind: EmailKind,
    ) -> StoreResult<Option<EmailTemplateRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM email_templates WHERE tenant_id = $1 AND kind = $2"
        ));
        let found = on_tx!(self, |conn| {
            match sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(kind.as_str())
                .fetch_optional(conn)
                .await?
            {
                Some(row) => Some(template_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// Stores the tenant's template of its kind, replacing any.
    pub async fn put_email_template(&mut self, t: &EmailTemplateRecord) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO email_templates (tenant_id, kind, subject, text_body, html_body, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (tenant_id, kind) DO UPDATE SET subject = excluded.subject,
                    text_body = excluded.text_body, html_body = excluded.html_body,
                    updated_at = excluded.updated_at",
            )
            .bind(t.tenant_id.as_uuid())
            .bind(t.kind.as_str())
            .bind(&t.subject)
            .bind(&t.text_body)
            .bind(&t.html_body)
            .bind(t.updated_at)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    /// Removes the tenant's template of `kind`; whether there was one.
    pub async fn delete_email_template(
        &mut self,
        tenant: TenantId,
        kind: EmailKind,
    ) -> StoreResult<bool> {
        let deleted = on_tx!(self, |conn| {
            sqlx::query("DELETE FROM email_templates WHERE tenant_id = $1 AND kind = $2")
                .bind(tenant.as_uuid())
                .bind(kind.as_str())
                .execute(conn)
                .await?
                .rows_affected()
        });
        Ok(deleted == 1)
    }
}

impl Store {
    /// The tenant's own templates.
    pub async fn email_templates(&self, tenant: TenantId) -> StoreResult<Vec<EmailTemplateRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM email_templates WHERE tenant_id = $1 ORDER BY kind"
        ));
        let rows = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql).bind(tenant.as_uuid()).fetch_all(p).await? {
                out.push(template_from_row!(&row));
            }
            out
        });
        Ok(rows)
    }
}
