//! Sites' certificates: `GET/POST /api/hosting/accounts/{id}/certificates`
//! (the list with where issuance stands; an upload), `POST
//! …/certificates/issue` (now), `GET /api/certificates` (every site's, for
//! staff) and `GET/PUT /api/tls/settings` (the tenant's ACME directory and
//! HSTS). A customer reaches only their own sites.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mpanel_services::site_certificates::{
    self, CertificateView, SiteCertificates, TlsSettings, Upload,
};
use serde::Deserialize;
use utoipa::ToSchema;

use super::hosting::Queued;
use crate::caller::{Ctx, perm};
use crate::json::ApiJson;
use crate::query::{Listing, NoFilter, Page, PageParams};
use crate::state::AppState;
use crate::{Problem, query};

/// A certificate of the customer's own, in PEM.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadBody {
    /// The certificate first, then its intermediate certificates.
    certificate_chain: String,
    /// Its private key, unencrypted (PKCS#8, PKCS#1 or SEC1). Sealed until
    /// it is on the web node, then kept only there.
    private_key: String,
}

/// A site's certificates, newest first, and where its issuance stands
/// (why the last attempt failed, when the next is).
#[utoipa::path(get, path = "/api/hosting/accounts/{id}/certificates", tag = "hosting",
    params(("id" = String, Path)), security(("bearer" = ["CERTIFICATES_READ"])),
    responses((status = 200, description = "The site's certificates", body = SiteCertificates),
        (status = 404, description = "No such hosting account")))]
pub async fn of_site(
    cx: Ctx<perm::CertificatesRead>,
    Path(id): Path<String>,
) -> Result<Json<SiteCertificates>, Problem> {
    let id = query::path_id(&id, "hosting account")?;
    Ok(Json(site_certificates::of_site(&cx, id).await?))
}

/// Serve a certificate of the customer's own: checked (the key belongs to
/// it, the chain is complete, it names the site, it is valid now), then
/// installed on the node by a job (status `PENDING` until then).
#[utoipa::path(post, path = "/api/hosting/accounts/{id}/certificates", tag = "hosting",
    params(("id" = String, Path)), request_body = UploadBody,
    security(("bearer" = ["CERTIFICATES_WRITE"])),
    responses((status = 201, description = "Accepted; going onto the node", body = CertificateView),
        (status = 404, description = "No such hosting account"),
        (status = 409, description = "The account is not live"),
        (status = 422, description = "The certificate or key is refused (`reason` says why)")))]
pub async fn upload(
    State(state): State<AppState>,
    cx: Ctx<perm::CertificatesWrite>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UploadBody>,
) -> Result<(StatusCode, Json<CertificateView>), Problem> {
    let id = query::path_id(&id, "hosting account")?;
    let upload = Upload {
        certificate_chain: body.certificate_chain,
        private_key: body.private_key,
    };
    let view = site_certificates::upload(&cx, id, upload, &state.upload_roots).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Obtain a certificate from the ACME directory now (a failing issuance
/// starts again without waiting).
#[utoipa::path(post, path = "/api/hosting/accounts/{id}/certificates/issue", tag = "hosting",
    params(("id" = String, Path)), security(("bearer" = ["CERTIFICATES_WRITE"])),
    responses((status = 202, description = "Queued", body = Queued),
        (status = 404, description = "No such hosting account"),
        (status = 409, description = "Not live, asked for within the last 5 minutes, or an issuance is under way")))]
pub async fn issue(
    cx: Ctx<perm::CertificatesWrite>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Queued>), Problem> {
    let id = query::path_id(&id, "hosting account")?;
    let job = site_certificates::issue_now(&cx, id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Queued {
            job_id: job.to_string(),
        }),
    ))
}

/// Every site's certificates, newest first (staff).
#[utoipa::path(get, path = "/api/certificates", tag = "hosting", params(PageParams),
    security(("bearer" = ["HOSTING_READ"])),
    responses((status = 200, description = "A page of certificates", body = Page<CertificateView>)))]
pub async fn list(
    cx: Ctx<perm::HostingRead>,
    list: Listing<NoFilter>,
) -> Result<Json<Page<CertificateView>>, Problem> {
    let paging = &list.paging;
    let fetched = site_certificates::page(&cx, paging.after()?, paging.fetch()).await?;
    Ok(Json(paging.page(fetched, |c| c.id.to_string(), |c| c)))
}

/// The tenant's TLS choices.
#[utoipa::path(get, path = "/api/tls/settings", tag = "settings",
    security(("bearer" = ["SETTINGS_WRITE"])),
    responses((status = 200, description = "The settings", body = TlsSettings)))]
pub async fn settings(cx: Ctx<perm::SettingsWrite>) -> Result<Json<TlsSettings>, Problem> {
    Ok(Json(site_certificates::settings(&cx).await?))
}

/// Change the tenant's ACME directory, contact or HSTS.
#[utoipa::path(put, path = "/api/tls/settings", tag = "settings", request_body = TlsSettings,
    security(("bearer" = ["SETTINGS_WRITE"])),
    responses((status = 200, description = "Changed", body = TlsSettings),
        (status = 422, description = "A value is not accepted")))]
pub async fn set_settings(
    State(state): State<AppState>,
    cx: Ctx<perm::SettingsWrite>,
    ApiJson(body): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> Result<Json<TlsSettings>, Problem> {
    // Every field has a default, and serde reads a struct from an array
    // too: only an object is these settings (`[null, null]` is not).
    let bytes =
        serde_json::to_vec(&body).map_err(|_| Problem::for_status(StatusCode::BAD_REQUEST))?;
    let body: TlsSettings = crate::json::parse(&bytes)?;
    Ok(Json(
        site_certificates::set_settings(&cx, body, &state.webhooks).await?,
    ))
}
