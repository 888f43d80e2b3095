//! A tenant's own templates per message kind, as its admins manage them:
//! each kind shows the templates in use (the tenant's or the built-in
//! ones) and the names they may use; a new template is checked against a
//! sample of its kind before it is stored, and answers the sample as it
//! renders. Audited.

use mpanel_domain::notify::EmailKind;
use mpanel_store::email_templates::EmailTemplateRecord;
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use super::templates::{self, Rendered, Sources};
use crate::ServiceError;
use crate::context::{Audited, Context};

/// A kind's templates as staff see them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TemplateView {
    pub kind: EmailKind,
    /// The tenant's own (else the built-in ones are in use).
    pub custom: bool,
    /// Whether the tenant may use its own (security notices always come
    /// in the built-in templates).
    pub customizable: bool,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The names the templates may use (`{{ name }}`); any other is an
    /// error.
    pub variables: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
}

/// A sample message as the templates render it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Preview {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl From<Rendered> for Preview {
    fn from(r: Rendered) -> Self {
        Self {
            subject: r.subject,
            text: r.text,
            html: r.html,
        }
    }
}

fn view(kind: EmailKind, own: Option<&EmailTemplateRecord>) -> Result<TemplateView, ServiceError> {
    let sources = match own {
        Some(t) => Sources {
            subject: t.subject.clone(),
            text: t.text_body.clone(),
            html: t.html_body.clone(),
        },
        None => templates::builtin(kind),
    };
    Ok(TemplateView {
        kind,
        custom: own.is_some(),
        customizable: !kind.security_notice(),
        subject: sources.subject,
        text: sources.text,
        html: sources.html,
        variables: templates::variables(kind)?,
        updated_at: own.map(|t| t.updated_at),
    })
}

/// Every kind, with the templates in use.
pub async fn list(cx: &Context) -> Result<Vec<TemplateView>, ServiceError> {
    let own = cx.store.email_templates(cx.tenant_id()).await?;
    EmailKind::ALL
        .into_iter()
        .map(|kind| view(kind, own.iter().find(|t| t.kind == kind)))
        .collect()
}

pub async fn get(cx: &Context, kind: EmailKind) -> Result<TemplateView, ServiceError> {
    let own = cx.store.email_templates(cx.tenant_id()).await?;
    view(kind, own.iter().find(|t| t.kind == kind))
}

/// Stores the tenant's templates of `kind` once they render its sample.
pub async fn put(
    cx: &Context,
    kind: EmailKind,
    sources: Sources,
) -> Result<(TemplateView, Preview), ServiceError> {
    let preview = templates::check(kind, &sources)?;
    let now = cx.now();
    let record = EmailTemplateRecord {
        tenant_id: cx.tenant_id(),
        kind,
        subject: sources.subject,
        text_body: sources.text,
        html_body: sources.html,
        updated_at: now,
    };
    let mut tx = cx.store.begin().await?;
    let before = tx.email_template(cx.tenant_id(), kind).await?;
    tx.put_email_template(&record).await?;
    tx.record_audit(&cx.audit(Audited {
        action: "email_template.put",
        target_type: "email_template",
        target_id: kind.as_str().to_owned(),
        before: before.map(|_| json!({"custom": true})),
        after: Some(json!({"custom": true, "subject": record.subject})),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok((view(kind, Some(&record))?, preview.into()))
}

/// Goes back to the built-in templates of `kind`.
pub async fn reset(cx: &Context, kind: EmailKind) -> Result<TemplateView, ServiceError> {
    let now = cx.now();
    let mut tx = cx.store.begin().await?;
    if tx.delete_email_template(cx.tenant_id(), kind).await? {
        tx.record_audit(&cx.audit(Audited {
            action: "email_template.delete",
            target_type: "email_template",
            target_id: kind.as_str().to_owned(),
            before: Some(json!({"custom": true})),
            after: Some(json!({"custom": false})),
            at: now,
        }))
        .await?;
    }
    tx.commit().await?;
    view(kind, None)
}
