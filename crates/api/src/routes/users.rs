//! `/api/users`: the tenant's users.

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use mpanel_domain::UserId;
use mpanel_domain::identity::Role;
use mpanel_services::identity::users::{self, CreateUser, UpdateUser};
use mpanel_store::UserRecord;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::caller::{Ctx, perm};
use crate::query::{self, Listing, NoFilter, Page, PageParams};
use crate::{ApiJson, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub display_name: String,
    /// SUPER_ADMIN, TENANT_ADMIN, BILLING, SUPPORT or CUSTOMER.
    pub role: Role,
    /// `ACTIVE`, `INVITED` (no password yet: an invitation was sent) or
    /// `DISABLED`.
    pub status: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<UserRecord> for UserView {
    fn from(u: UserRecord) -> Self {
        Self {
            id: u.id.to_string(),
            email: u.email,
            display_name: u.display_name,
            role: u.role,
            status: u.status.as_str(),
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    #[schema(
        pattern = "^[^@\\s]+@[^\\s.][^\\s]*\\.[^\\s]*[^\\s.]$",
        max_length = 254
    )]
    pub email: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub display_name: String,
    /// SUPER_ADMIN, TENANT_ADMIN, BILLING, SUPPORT or CUSTOMER.
    pub role: Role,
    /// 12 to 128 characters. Without one, the user is `INVITED`: they get
    /// an e-mail with a link (valid 7 days) to choose their password.
    #[serde(default)]
    pub password: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub display_name: Option<String>,
    pub role: Option<Role>,
}

/// The tenant's users, oldest first.
#[utoipa::path(get, path = "/api/users", tag = "users", params(PageParams),
    security(("bearer" = ["USERS_READ"])),
    responses((status = 200, description = "A page of users", body = Page<UserView>)))]
pub async fn list(
    cx: Ctx<perm::UsersRead>,
    list: Listing<NoFilter>,
) -> Result<Json<Page<UserView>>, Problem> {
    let paging = &list.paging;
    let fetched = users::list(&cx, paging.after()?, paging.fetch()).await?;
    Ok(Json(paging.page(
        fetched,
        |u| u.id.to_string(),
        UserView::from,
    )))
}

/// Create a user of the tenant.
#[utoipa::path(post, path = "/api/users", tag = "users", request_body = NewUserRequest,
    security(("bearer" = ["USERS_WRITE"])),
    responses(
        (status = 201, description = "Created", body = UserView),
        (status = 409, description = "The e-mail address is taken"),
        (status = 422, description = "Invalid input"),
    ))]
pub async fn create(
    cx: Ctx<perm::UsersWrite>,
    ApiJson(body): ApiJson<NewUserRequest>,
) -> Result<(StatusCode, Json<UserView>), Problem> {
    let user = users::create(
        &cx,
        &CreateUser {
            email: body.email,
            display_name: body.display_name,
            role: body.role,
            password: body.password,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// One user of the tenant.
#[utoipa::path(get, path = "/api/users/{id}", tag = "users",
    params(("id" = String, Path, description = "User id")),
    security(("bearer" = ["USERS_READ"])),
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 404, description = "No such user in this tenant"),
    ))]
pub async fn get(
    cx: Ctx<perm::UsersRead>,
    Path(id): Path<String>,
) -> Result<Json<UserView>, Problem> {
    let id = query::path_id::<UserId>(&id, "user")?;
    Ok(Json(users::get(&cx, id).await?.into()))
}

/// Change a user's name or role (role changes are audited with before and after).
#[utoipa::path(patch, path = "/api/users/{id}", tag = "users", request_body = UserPatch,
    params(("id" = String, Path, description = "User id")),
    security(("bearer" = ["USERS_WRITE"])),
    responses(
        (status = 200, description = "Changed", body = UserView),
        (status = 404, description = "No such user in this tenant"),
        (status = 409, description = "Would leave the tenant without an active admin"),
    ))]
pub async fn update(
    cx: Ctx<perm::UsersWrite>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UserPatch>,
) -> Result<Json<UserView>, Problem> {
    let id = query::path_id::<UserId>(&id, "user")?;
    let patch = UpdateUser {
        display_name: body.display_name,
        role: body.role,
    };
    let user = users::update(&cx, id, &patch).await?;
    Ok(Json(user.into()))
}

/// Disable a user: their sessions and API tokens stop working at once.
#[utoipa::path(post, path = "/api/users/{id}/disable", tag = "users",
    params(("id" = String, Path, description = "User id")),
    security(("bearer" = ["USERS_WRITE"])),
    responses(
        (status = 200, description = "Disabled", body = UserView),
        (status = 404, description = "No such user in this tenant"),
        (status = 409, description = "Yourself, or the tenant's last active admin"),
    ))]
pub async fn disable(
    cx: Ctx<perm::UsersWrite>,
    Path(id): Path<String>,
) -> Result<Json<UserView>, Problem> {
    let id = query::path_id::<UserId>(&id, "user")?;
    let user = users::disable(&cx, id).await?;
    Ok(Json(user.into()))
}

/// Send an invited user a new invitation (their earlier link stops
/// working).
#[utoipa::path(post, path = "/api/users/{id}/invite", tag = "users",
    params(("id" = String, Path, description = "User id")),
    security(("bearer" = ["USERS_WRITE"])),
    responses(
        (status = 202, description = "The invitation is queued", body = UserView),
        (status = 403, description = "The user's role is above yours"),
        (status = 404, description = "No such user in this tenant"),
        (status = 409, description = "The user is not INVITED"),
    ))]
pub async fn invite(
    cx: Ctx<perm::UsersWrite>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<UserView>), Problem> {
    let id = query::path_id::<UserId>(&id, "user")?;
    let user = mpanel_services::identity::account_links::invite_again(&cx, id).await?;
    Ok((StatusCode::ACCEPTED, Json(user.into())))
}
