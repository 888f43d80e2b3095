//! `/api/cloudpods`: virtual machines on Proxmox VE. Staff see and act on
//! the tenant's pods, a customer on their own (another's is 404). Actions
//! are queued as the pod's jobs and answered 202 with the job.

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use mpanel_domain::cloudpods::{PodAction, PodStatus};
use mpanel_domain::{CloudPodId, CustomerId, ProductId};
use mpanel_services::Context;
use mpanel_services::billing::plan_change::UpdateView;
use mpanel_services::cloudpods::actions::{self, PodPatch};
use mpanel_services::cloudpods::create::{self, NewPodInput};
use mpanel_services::cloudpods::{self, PodDetail, PodView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::Problem;
use crate::caller::{Ctx, perm};
use crate::idempotency::{self, Idempotent};
use crate::json::ApiJson;
use crate::query::{self, Listing, Page, PageParams};

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PodListFilter {
    #[serde(default, deserialize_with = "query::from_str_opt")]
    #[param(value_type = Option<PodStatus>)]
    pub(crate) status: Option<PodStatus>,
    #[param(value_type = Option<uuid::Uuid>)]
    pub(crate) customer_id: Option<CustomerId>,
}

/// A pod action was accepted: the pod as it stands and the job doing it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PodAccepted {
    pub pod: PodView,
    /// `null` when the action was queued by another change (a delete ends
    /// the subscription, whose cancellation queues it).
    pub job_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResizeBody {
    /// Another CloudPod product of the same period and currency; its disk
    /// is at least this pod's.
    pub product_id: ProductId,
}

fn pod_id(raw: &str) -> Result<CloudPodId, Problem> {
    query::path_id(raw, "CloudPod")
}

/// The pods the caller sees, newest first: staff the tenant's, a
/// customer their own.
#[utoipa::path(get, path = "/api/cloudpods", tag = "cloudpods", params(PageParams, PodListFilter),
    security(("bearer" = ["CLOUDPODS_READ"])),
    responses((status = 200, description = "A page of CloudPods", body = Page<PodView>)))]
pub async fn list(
    cx: Ctx<perm::CloudPodsRead>,
    list: Listing<PodListFilter>,
) -> Result<Json<Page<PodView>>, Problem> {
    let paging = &list.paging;
    let fetched = cloudpods::list(
        &cx,
        list.filter.status,
        list.filter.customer_id,
        paging.after::<CloudPodId>()?,
        paging.fetch(),
    )
    .await?;
    Ok(Json(paging.page(
        fetched,
        |p| p.id.to_string(),
        cloudpods::view,
    )))
}

/// Make a pod for a customer (`Idempotency-Key` honoured): an order of
/// the CloudPod product with its invoice; provisioned once paid, or now
/// with `provision_before_payment`.
#[utoipa::path(post, path = "/api/cloudpods", tag = "cloudpods", request_body = NewPodInput,
    security(("bearer" = ["CLOUDPODS_MANAGE"])),
    responses((status = 201, description = "The pod", body = PodView),
        (status = 409, description = "The same Idempotency-Key is still being processed"),
        (status = 422, description = "Unknown customer, not a CloudPod product, no price, bad options, or the Idempotency-Key was used for another request (`idempotency_key_reused`)")))]
pub async fn create(
    cx: Ctx<perm::CloudPodsManage>,
    request: Idempotent<NewPodInput>,
) -> Result<Response, Problem> {
    let (cx, body) = (&*cx, &request.body);
    idempotency::run(cx, &request, |hold| async move {
        create::create(cx, body.clone(), hold.as_ref()).await
    })
    .await
}

/// One pod: status, plan and quota with the last usage reading, node,
/// VMID, address, the last task and its error, and its backups.
#[utoipa::path(get, path = "/api/cloudpods/{id}", tag = "cloudpods",
    params(("id" = String, Path)), security(("bearer" = ["CLOUDPODS_READ"])),
    responses((status = 200, description = "The pod", body = PodDetail),
        (status = 404, description = "No such pod (of yours)")))]
pub async fn get(
    cx: Ctx<perm::CloudPodsRead>,
    Path(id): Path<String>,
) -> Result<Json<PodDetail>, Problem> {
    Ok(Json(cloudpods::get(&cx, pod_id(&id)?).await?))
}

/// Change the name, host name, SSH keys or notes; the VM's cloud-init
/// gets them (at its next boot).
#[utoipa::path(put, path = "/api/cloudpods/{id}", tag = "cloudpods", request_body = PodPatch,
    params(("id" = String, Path)), security(("bearer" = ["CLOUDPODS_OPERATE"])),
    responses((status = 200, description = "The pod", body = PodView),
        (status = 404, description = "No such pod (of yours)"),
        (status = 409, description = "The pod is deleted")))]
pub async fn update(
    cx: Ctx<perm::CloudPodsOperate>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PodPatch>,
) -> Result<Json<PodView>, Problem> {
    Ok(Json(actions::update(&cx, pod_id(&id)?, body).await?))
}

async fn act(
    cx: &Context,
    id: &str,
    action: PodAction,
) -> Result<(StatusCode, Json<PodAccepted>), Problem> {
    let (pod, job) = actions::request(cx, pod_id(id)?, action).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(PodAccepted {
            pod,
            job_id: job.map(|j| j.to_string()),
        }),
    ))
}

/// Stop the pod's VM (staff, or a customer their own); a customer cannot
/// start one the provider or billing suspended.
#[utoipa::path(post, path = "/api/cloudpods/{id}/suspend", tag = "cloudpods",
    params(("id" = String, Path)), security(("bearer" = ["CLOUDPODS_OPERATE"])),
    responses((status = 202, description = "Queued", body = PodAccepted),
        (status = 404, description = "No such pod (of yours)"),
        (status = 409, description = "Not allowed from the pod's status (the allowed actions are listed)")))]
pub async fn suspend(
    cx: Ctx<perm::CloudPodsOperate>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<PodAccepted>), Problem> {
    act(&cx, &id, PodAction::Suspend).await
}

/// Start a suspended pod's VM again.
#[utoipa::path(post, path = "/api/cloudpods/{id}/resume", tag = "cloudpods",
    params(("id" = String, Path)), security(("bearer" = ["CLOUDPODS_OPERATE"])),
    responses((status = 202, description = "Queued", body = PodAccepted),
        (status = 404, description = "No such pod (of yours)"),
        (status = 409, description = "Not suspended, or suspended by billing or the provider (a customer cannot resume it)")))]
pub async fn resume(
    cx: Ctx<perm::CloudPodsOperate>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<PodAccepted>), Problem> {
    act(&cx, &id, PodAction::Resume).await
}

/// Reboot the pod's VM.
#[utoipa::path(post, path = "/api/cloudpods/{id}/reboot", tag = "cloudpods",
    params(("id" = String, Path)), security(("bearer" = ["CLOUDPODS_OPERATE"])),
    responses((status = 202, description = "Queued", body = PodAccepted),
        (status = 404, description = "No such pod (of yours)"),
        (status = 409, description = "Not running")))]
pub async fn reboot(
    cx: Ctx<perm::CloudPodsOperate>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<PodAccepted>), Problem> {
    act(&cx, &id, PodAction::Reboot).await
}

/// Delete the pod: its subscription ends now, the VM is stopped and
/// destroyed with its disks, the VMID and address are free again.
#[utoipa::path(delete, path = "/api/cloudpods/{id}", tag = "cloudpods",
    params(("id" = String, Path)), security(("bearer" = ["CLOUDPODS_MANAGE"])),
    responses((status = 202, description = "Queued", body = PodAccepted),
        (status = 404, description = "No such pod"),
        (status = 409, description = "Deleted already")))]
pub async fn delete(
    cx: Ctx<perm::CloudPodsManage>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<PodAccepted>), Problem> {
    act(&cx, &id, PodAction::Delete).await
}

/// Move the pod to another CloudPod plan: prorated as a plan change (an
/// upgrade is invoiced now); the VM gets the new cores, memory and disk.
/// A plan with a smaller disk is refused (a disk only grows).
#[utoipa::path(post, path = "/api/cloudpods/{id}/resize", tag = "cloudpods", request_body = ResizeBody,
    params(("id" = String, Path)), security(("bearer" = ["SUBSCRIPTIONS_WRITE"])),
    responses((status = 200, description = "The subscription, with `proration`", body = UpdateView),
        (status = 404, description = "No such pod"),
        (status = 409, description = "Not allowed from the pod's status"),
        (status = 422, description = "Not a CloudPod plan, a smaller disk, or no price for the period")))]
pub async fn resize(
    cx: Ctx<perm::SubscriptionsWrite>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ResizeBody>,
) -> Result<Json<UpdateView>, Problem> {
    Ok(Json(
        actions::resize(&cx, pod_id(&id)?, body.product_id).await?,
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SeededPlans {
    pub items: Vec<mpanel_services::cloudpods::plans::SeededPlan>,
}

/// Make the four seed CloudPod plans (MINI, PRO, BUSINESS, ENTERPRISE) as
/// products priced monthly in the tenant's default currency; plans the
/// tenant has already are left as they are. Change them like any product.
#[utoipa::path(post, path = "/api/billing/cloudpod-plans", tag = "catalog",
    security(("bearer" = ["CATALOG_WRITE"])),
    responses((status = 200, description = "The plans' products", body = SeededPlans),
        (status = 409, description = "A plan's product or price exists but was not found by slug (seeded at the same moment, or beyond the first 1,000 products)"),
        (status = 422, description = "A product holding a plan's slug cannot take its prices")))]
pub async fn seed_plans(cx: Ctx<perm::CatalogWrite>) -> Result<Json<SeededPlans>, Problem> {
    let items = mpanel_services::cloudpods::plans::seed(&cx).await?;
    Ok(Json(SeededPlans { items }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Backups {
    pub items: Vec<mpanel_services::cloudpods::backups::BackupView>,
}

/// A backup (or restore) was accepted: the backup and the job doing it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackupAccepted {
    pub backup: mpanel_services::cloudpods::backups::BackupView,
    pub job_id: String,
}

/// The pod's backups, newest first (the policy keeps a daily one, the
/// newest 7).
#[utoipa::path(get, path = "/api/cloudpods/{id}/backups", tag = "cloudpods",
    params(("id" = String, Path)), security(("bearer" = ["CLOUDPODS_READ"])),
    responses((status = 200, description = "The pod's backups", body = Backups),
        (status = 404, description = "No such pod (of yours)")))]
pub async fn backups(
    cx: Ctx<perm::CloudPodsRead>,
    Path(id): Path<String>,
) -> Result<Json<Backups>, Problem> {
    let items = mpanel_services::cloudpods::backups::list(&cx, pod_id(&id)?).await?;
    Ok(Json(Backups { items }))
}

/// A backup now (vzdump to the cluster's backup storage); the oldest
/// beyond the policy's 7 is pruned once it is made.
#[utoipa::path(post, path = "/api/cloudpods/{id}/backups", tag = "cloudpods",
    params(("id" = String, Path)), security(("bearer" = ["CLOUDPODS_OPERATE"])),
    responses((status = 202, description = "Queued", body = BackupAccepted),
        (status = 404, description = "No such pod (of yours)"),
        (status = 409, description = "Not allowed from the pod's status")))]
pub async fn backup(
    cx: Ctx<perm::CloudPodsOperate>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<BackupAccepted>), Problem> {
    let (backup, job) = mpanel_services::cloudpods::backups::request(&cx, pod_id(&id)?).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(BackupAccepted {
            backup,
            job_id: job.to_string(),
        }),
    ))
}

/// Restore a finished backup of the pod over its VM (stopped, restored,
/// its plan and cloud-init applied again, started if it ran).
#[utoipa::path(post, path = "/api/cloudpods/{id}/backups/{backup}/restore", tag = "cloudpods",
    params(("id" = String, Path), ("backup" = String, Path)),
    security(("bearer" = ["CLOUDPODS_OPERATE"])),
    responses((status = 202, description = "Queued", body = BackupAccepted),
        (status = 404, description = "No such pod (of yours), or no such backup of it"),
        (status = 409, description = "The backup is not finished, or the pod's status allows no restore")))]
pub async fn restore(
    cx: Ctx<perm::CloudPodsOperate>,
    Path((id, backup)): Path<(String, String)>,
) -> Result<(StatusCode, Json<BackupAccepted>), Problem> {
    let backup_id = query::path_id(&backup, "backup")?;
    let (backup, job) =
        mpanel_services::cloudpods::backups::restore(&cx, pod_id(&id)?, backup_id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(BackupAccepted {
            backup,
            job_id: job.to_string(),
        }),
    ))
}
