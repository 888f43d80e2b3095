//! `/api/security/tokens`: one's own API tokens.

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use mpanel_domain::ApiTokenId;
use mpanel_domain::identity::Scope;
use mpanel_services::identity::api_tokens::{self, NewApiToken};
use mpanel_store::identity::api_tokens::ApiTokenRecord;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::caller::{Ctx, perm};
use crate::query::{self, Page};
use crate::{ApiJson, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    /// The first characters of the token, to tell tokens apart.
    pub token_start: String,
    /// READ, WRITE, ADMIN, BILLING, PROVISIONING, SECURITY.
    pub scopes: Vec<Scope>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl From<ApiTokenRecord> for TokenView {
    fn from(t: ApiTokenRecord) -> Self {
        Self {
            id: t.id.to_string(),
            name: t.name,
            token_start: t.token_start,
            scopes: t.scopes.iter().collect(),
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The token itself: shown this once, never again.
    pub token: String,
    #[serde(flatten)]
    pub details: TokenView,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenRequest {
    pub name: String,
    /// READ, WRITE, ADMIN, BILLING, PROVISIONING, SECURITY.
    pub scopes: Vec<Scope>,
    /// RFC 3339; absent: no expiry.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// Your API tokens, newest first (revoked ones included).
#[utoipa::path(get, path = "/api/security/tokens", tag = "security",
    security(("bearer" = ["SELF_TOKENS"])),
    responses((status = 200, description = "Your tokens", body = Page<TokenView>)))]
pub async fn list_tokens(cx: Ctx<perm::SelfTokens>) -> Result<Json<Page<TokenView>>, Problem> {
    let items = api_tokens::list(&cx)
        .await?
        .into_iter()
        .map(TokenView::from)
        .collect();
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

/// Create an API token; the response shows it once.
#[utoipa::path(post, path = "/api/security/tokens", tag = "security", request_body = NewTokenRequest,
    security(("bearer" = ["SELF_TOKENS"])),
    responses(
        (status = 201, description = "Created; `token` is shown only now", body = CreatedToken),
        (status = 403, description = "A scope beyond your role or token"),
    ))]
pub async fn create_token(
    cx: Ctx<perm::SelfTokens>,
    ApiJson(body): ApiJson<NewTokenRequest>,
) -> Result<(StatusCode, Json<CreatedToken>), Problem> {
    let created = api_tokens::create(
        &cx,
        &NewApiToken {
            name: body.name,
            scopes: body.scopes,
            expires_at: body.expires_at,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: created.token,
            details: created.record.into(),
        }),
    ))
}

/// Revoke one of your API tokens.
#[utoipa::path(post, path = "/api/security/tokens/{id}/revoke", tag = "security",
    params(("id" = String, Path, description = "Token id")),
    security(("bearer" = ["SELF_TOKENS"])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "Not one of your tokens"),
    ))]
pub async fn revoke_token(
    cx: Ctx<perm::SelfTokens>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let id = query::path_id::<ApiTokenId>(&id, "API token")?;
    api_tokens::revoke(&cx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
