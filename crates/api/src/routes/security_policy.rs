//! `/api/security/policy`: what the tenant requires of its users' sign-ins.

use axum::Json;
use mpanel_domain::security::SecurityPolicy;
use mpanel_services::security::policy;

use crate::caller::{Ctx, perm};
use crate::{ApiJson, Problem};

/// The tenant's security policy.
#[utoipa::path(get, path = "/api/security/policy", tag = "security",
    security(("bearer" = ["SECURITY_POLICY_WRITE"])),
    responses((status = 200, description = "The policy", body = SecurityPolicy)))]
pub async fn get_policy(
    cx: Ctx<perm::SecurityPolicyWrite>,
) -> Result<Json<SecurityPolicy>, Problem> {
    Ok(Json(policy::get(&cx).await?))
}

/// Replace the tenant's security policy; enforced from the next request.
#[utoipa::path(put, path = "/api/security/policy", tag = "security", request_body = SecurityPolicy,
    security(("bearer" = ["SECURITY_POLICY_WRITE"])),
    responses((status = 200, description = "The policy", body = SecurityPolicy),
        (status = 422, description = "Out of range")))]
pub async fn put_policy(
    cx: Ctx<perm::SecurityPolicyWrite>,
    ApiJson(body): ApiJson<SecurityPolicy>,
) -> Result<Json<SecurityPolicy>, Problem> {
    let from = cx.ip.as_deref().and_then(|ip| ip.parse().ok());
    Ok(Json(policy::update(&cx, &body, from).await?))
}
