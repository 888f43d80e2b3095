//! `/api/dns/zones`: the tenant's DNS zones and their record sets, edited
//! live on the zone's PowerDNS server. `{zone}` is the zone name (with or
//! without the trailing dot); a zone that is not one of the tenant's live
//! zones is "not found".

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mpanel_domain::dns::{RecordSet, RecordType};
use mpanel_provision::records::{self, Editor, ZoneView};
use mpanel_services::{Context, ServiceError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::caller::{Ctx, perm};
use crate::json::ApiJson;
use crate::{AppState, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct Zones {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<ZoneView>,
}

/// One record set: all records of one name and type.
#[derive(Debug, Serialize, ToSchema)]
pub struct RrsetView {
    /// Absolute, with a trailing dot (`www.example.test.`).
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub ttl: u32,
    /// Contents in presentation format (`"v=spf1 mx ~all"`, `10 mail.example.test.`).
    pub records: Vec<String>,
}

impl From<RecordSet> for RrsetView {
    fn from(s: RecordSet) -> Self {
        Self {
            name: s.name,
            rtype: s.rtype.as_str().to_owned(),
            ttl: s.ttl,
            records: s.records,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Rrsets {
    pub items: Vec<RrsetView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RrsetBody {
    /// Relative to the zone (`www`, `@` for the apex) or absolute.
    name: String,
    /// `A`, `AAAA`, `CNAME`, `MX`, `TXT`, `SRV` or `CAA`.
    #[serde(rename = "type")]
    #[schema(pattern = "^(A|AAAA|CNAME|MX|TXT|SRV|CAA)$")]
    rtype: String,
    /// Seconds, 60 to 86400; 3600 when left out.
    #[schema(minimum = 60, maximum = 86400)]
    ttl: Option<u32>,
    records: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceBody {
    /// Seconds, 60 to 86400; 3600 when left out.
    #[schema(minimum = 60, maximum = 86400)]
    ttl: Option<u32>,
    records: Vec<String>,
}

/// The caller's record-set writes, in its tenant.
fn editor<'a>(state: &'a AppState, cx: &'a Context) -> Editor<'a> {
    Editor {
        cx,
        secrets: state.secrets.as_ref(),
    }
}

/// The tenant's live DNS zones.
#[utoipa::path(get, path = "/api/dns/zones", tag = "dns",
    security(("bearer" = ["HOSTING_READ"])),
    responses((status = 200, description = "Zones (id, name, status, customer_id)", body = Zones)))]
pub async fn zones(cx: Ctx<perm::HostingRead>) -> Result<Json<Zones>, Problem> {
    let items = records::zones(&cx).await?;
    Ok(Json(Zones { items }))
}

/// The zone's record sets, as its DNS server has them (SOA left out).
#[utoipa::path(get, path = "/api/dns/zones/{zone}/records", tag = "dns",
    params(("zone" = String, Path, description = "Zone name")),
    security(("bearer" = ["HOSTING_READ"])),
    responses((status = 200, description = "Record sets", body = Rrsets),
        (status = 404, description = "No such zone"),
        (status = 409, description = "The zone is not on a DNS server of the inventory yet, or the DNS server refused the change"),
        (status = 503, description = "The DNS server is unreachable (`not_ready`)")))]
pub async fn list(
    State(state): State<AppState>,
    cx: Ctx<perm::HostingRead>,
    Path(zone): Path<String>,
) -> Result<Json<Rrsets>, Problem> {
    let sets = records::list(&cx, state.secrets.as_ref(), &zone).await?;
    Ok(Json(Rrsets {
        items: sets.into_iter().map(RrsetView::from).collect(),
    }))
}

/// Create or replace one record set (checked against the zone's current
/// records first; nothing is sent when a rule is broken).
#[utoipa::path(post, path = "/api/dns/zones/{zone}/records", tag = "dns",
    params(("zone" = String, Path, description = "Zone name")), request_body = RrsetBody,
    security(("bearer" = ["HOSTING_WRITE"])),
    responses((status = 200, description = "The record set as stored", body = RrsetView),
        (status = 404, description = "No such zone"),
        (status = 422, description = "A rule broken (`validation_failed`, naming `field`)"),
        (status = 409, description = "The zone is not on a DNS server of the inventory yet, or the DNS server refused the change"),
        (status = 503, description = "The DNS server is unreachable (`not_ready`)")))]
pub async fn put(
    State(state): State<AppState>,
    cx: Ctx<perm::HostingWrite>,
    Path(zone): Path<String>,
    ApiJson(body): ApiJson<RrsetBody>,
) -> Result<Json<RrsetView>, Problem> {
    let rtype: RecordType =
        body.rtype.trim().to_ascii_uppercase().parse().map_err(
            |e: mpanel_domain::dns::DnsRuleError| ServiceError::invalid(e.field, e.message),
        )?;
    let input = RecordSet {
        name: body.name,
        rtype,
        ttl: body.ttl.unwrap_or(0),
        records: body.records,
    };
    let set = editor(&state, &cx).put(&zone, &input).await?;
    Ok(Json(set.into()))
}

/// Replace an existing record set's records (and TTL).
#[utoipa::path(patch, path = "/api/dns/zones/{zone}/records/{name}/{type}", tag = "dns",
    params(("zone" = String, Path, description = "Zone name"),
        ("name" = String, Path, description = "Record name, relative (`www`, `@`) or absolute"),
        ("type" = String, Path, description = "Record type (`A`, `MX` …)")),
    request_body = ReplaceBody, security(("bearer" = ["HOSTING_WRITE"])),
    responses((status = 200, description = "The record set as stored", body = RrsetView),
        (status = 404, description = "No such zone or record set"),
        (status = 422, description = "A rule broken (`validation_failed`, naming `field`)"),
        (status = 409, description = "The zone is not on a DNS server of the inventory yet, or the DNS server refused the change"),
        (status = 503, description = "The DNS server is unreachable (`not_ready`)")))]
pub async fn replace(
    State(state): State<AppState>,
    cx: Ctx<perm::HostingWrite>,
    Path((zone, name, rtype)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<ReplaceBody>,
) -> Result<Json<RrsetView>, Problem> {
    let set = editor(&state, &cx)
        .replace(&zone, &name, &rtype, body.ttl.unwrap_or(0), body.records)
        .await?;
    Ok(Json(set.into()))
}

/// Delete a record set (NS and SOA are the platform's and refused).
#[utoipa::path(delete, path = "/api/dns/zones/{zone}/records/{name}/{type}", tag = "dns",
    params(("zone" = String, Path, description = "Zone name"),
        ("name" = String, Path, description = "Record name, relative (`www`, `@`) or absolute"),
        ("type" = String, Path, description = "Record type (`A`, `MX` …)")),
    security(("bearer" = ["HOSTING_WRITE"])),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No such zone or record set"),
        (status = 422, description = "NS or SOA (`validation_failed`)"),
        (status = 409, description = "The zone is not on a DNS server of the inventory yet, or the DNS server refused the change"),
        (status = 503, description = "The DNS server is unreachable (`not_ready`)")))]
pub async fn delete(
    State(state): State<AppState>,
    cx: Ctx<perm::HostingWrite>,
    Path((zone, name, rtype)): Path<(String, String, String)>,
) -> Result<StatusCode, Problem> {
    editor(&state, &cx).delete(&zone, &name, &rtype).await?;
    Ok(StatusCode::NO_CONTENT)
}
