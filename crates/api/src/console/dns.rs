//! The DNS records editor: staff for every zone of the tenant, a customer
//! for their own; the records are read from and written to the zone's
//! PowerDNS server through the same editor as `/api/dns`.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use mpanel_domain::dns::{RecordSet, RecordType};
use mpanel_provision::records::{self, Editor, ZoneView};
use mpanel_services::ServiceError;
use serde::{Deserialize, Serialize};

use super::listing::{Listed, ResourceFilter};
use super::session::{Viewer, url_encode};
use super::view::{PageError, page};
use super::{Done, Notice};
use crate::AppState;

#[derive(Serialize)]
struct ZonesPage {
    zones: Vec<ZoneView>,
    next_href: Option<String>,
    q: String,
}

/// `GET /dns`, searched by name.
pub async fn zones(viewer: Viewer, listed: Listed<ResourceFilter>) -> Result<Response, PageError> {
    let Listed { listing, links } = listed;
    let paging = &listing.paging;
    let query = listing
        .filter
        .query(None, paging.after()?, paging.fetch())?;
    let fetched = records::zones_page(&viewer, query).await?;
    let found = paging.page(fetched, |z| z.id.to_string(), |z| z);
    let data = ZonesPage {
        next_href: links.next_href(found.next_cursor.as_deref()),
        zones: found.items,
        q: links.value("q"),
    };
    page(&viewer, "/dns", "DNS", "dns_zones.html", data)
}

#[derive(Serialize)]
struct RecordRow {
    name: String,
    rtype: String,
    ttl: u32,
    records: Vec<String>,
    editable: bool,
}

#[derive(Serialize)]
struct ZonePage {
    zone: String,
    rows: Vec<RecordRow>,
    types: Vec<&'static str>,
    notice: Option<Notice>,
    may_edit: bool,
}

/// `GET /dns/{zone}`.
pub async fn zone(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(zone): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    records::check_zone_access(&viewer, &zone, false).await?;
    let sets = records::list(&viewer, state.secrets.as_ref(), &zone).await?;
    let zone_name = zone.trim_end_matches('.').to_owned();
    let rows = sets
        .into_iter()
        .map(|s: RecordSet| RecordRow {
            editable: s.rtype.customer_editable(),
            name: s.name,
            rtype: s.rtype.as_str().to_owned(),
            ttl: s.ttl,
            records: s.records,
        })
        .collect();
    let data = ZonePage {
        may_edit: viewer.may(mpanel_domain::identity::Permission::DnsWrite),
        zone: zone_name.clone(),
        rows,
        types: vec!["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA"],
        notice: done.notice(),
    };
    page(&viewer, "/dns", &zone_name, "dns_zone.html", data)
}

#[derive(Deserialize)]
pub struct RecordForm {
    name: String,
    rtype: String,
    #[serde(default)]
    ttl: String,
    /// One record per line.
    content: String,
}

/// `POST /dns/{zone}`: add (or replace) a record set.
pub async fn add(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(zone): Path<String>,
    Form(f): Form<RecordForm>,
) -> Result<Response, PageError> {
    records::check_zone_access(&viewer, &zone, true).await?;
    let rtype: RecordType =
        f.rtype.trim().to_ascii_uppercase().parse().map_err(
            |e: mpanel_domain::dns::DnsRuleError| ServiceError::invalid(e.field, e.message),
        )?;
    let ttl = if f.ttl.trim().is_empty() {
        0
    } else {
        f.ttl
            .trim()
            .parse()
            .map_err(|_| ServiceError::invalid("ttl", "the TTL is a number of seconds"))?
    };
    let input = RecordSet {
        name: if f.name.trim().is_empty() {
            "@".into()
        } else {
            f.name.trim().to_owned()
        },
        rtype,
        ttl,
        records: f
            .content
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    let editor = Editor {
        cx: &viewer,
        secrets: state.secrets.as_ref(),
    };
    editor.put(&zone, &input).await?;
    Ok(Redirect::to(&format!("/dns/{}?done=record_added", url_encode(&zone))).into_response())
}

#[derive(Deserialize)]
pub struct DeleteForm {
    name: String,
    rtype: String,
}

/// `POST /dns/{zone}/delete`: the form's button says what it deletes.
pub async fn delete(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(zone): Path<String>,
    Form(f): Form<DeleteForm>,
) -> Result<Response, PageError> {
    records::check_zone_access(&viewer, &zone, true).await?;
    let editor = Editor {
        cx: &viewer,
        secrets: state.secrets.as_ref(),
    };
    editor.delete(&zone, &f.name, &f.rtype).await?;
    Ok(Redirect::to(&format!("/dns/{}?done=record_deleted", url_encode(&zone))).into_response())
}

#[derive(Deserialize)]
pub struct DeleteQuery {
    name: String,
    rtype: String,
}

/// `GET /dns/{zone}/delete?name=…&rtype=…`: asks first.
pub async fn delete_confirm(
    viewer: Viewer,
    Path(zone): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> Result<Response, PageError> {
    records::check_zone_access(&viewer, &zone, true).await?;
    super::confirm_form(
        &viewer,
        "/dns",
        super::confirm::Question {
            title: format!("Delete the {} records of {}?", q.rtype, q.name),
            detail: "The name servers stop answering them at once.".into(),
            action: format!("/dns/{}/delete", url_encode(&zone)),
            button: "Delete".into(),
            back: format!("/dns/{}", url_encode(&zone)),
        },
        &[("name", &q.name), ("rtype", &q.rtype)],
    )
}
