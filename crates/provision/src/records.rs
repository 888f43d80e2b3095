//! A customer's DNS record sets, edited live on the zone's PowerDNS server:
//! the use cases behind `/api/dns/zones`. A zone is one of the tenant's
//! live `dns_zones` rows (anything else is "not found"); each record set is
//! checked with [`validate_rrset`] against the zone's current sets before
//! PowerDNS sees it, and every change is audited once PowerDNS took it.

use mpanel_domain::dns::{RecordSet, RecordType, canonical_name, canonical_zone, validate_rrset};
use mpanel_domain::{CustomerId, ResourceId, TenantId};
use mpanel_services::ServiceError;
use mpanel_services::context::{Audited, Context};
use mpanel_services::secret_box::SecretBox;
use mpanel_store::Store;
use mpanel_store::provisioning::{ResourceKind, ResourceQuery, ResourceRecord};
use serde::Serialize;
use serde_json::json;

use crate::DriverError;
use crate::dns::PowerDns;

/// How many zones of a tenant are looked through.
const MAX_ZONES: u32 = 1000;

/// One of the tenant's zones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZoneView {
    pub id: ResourceId,
    /// Canonical, with a trailing dot (`example.test.`).
    pub name: String,
    pub status: String,
    pub customer_id: CustomerId,
}

impl From<ResourceRecord> for ZoneView {
    fn from(z: ResourceRecord) -> Self {
        Self {
            id: z.id,
            name: z.name,
            status: z.status.as_str().to_owned(),
            customer_id: z.customer_id,
        }
    }
}

/// The tenant's live zones (not deleted), newest first.
pub async fn zones(cx: &Context) -> Result<Vec<ZoneView>, ServiceError> {
    Ok(live_zones(&cx.store, cx.tenant_id())
        .await?
        .into_iter()
        .map(ZoneView::from)
        .collect())
}

/// The zones the caller may see and edit: every zone of the tenant for
/// staff who may (`HOSTING_READ`), a customer's own zones for a customer.
pub async fn visible_zones(cx: &Context) -> Result<Vec<ZoneView>, ServiceError> {
    if cx.principal.role().is_staff() {
        cx.principal
            .require(mpanel_domain::identity::Permission::HostingRead)?;
        return zones(cx).await;
    }
    let Some(own) = mpanel_services::customers::own(cx).await? else {
        return Ok(Vec::new());
    };
    let mut all = zones(cx).await?;
    all.retain(|z| z.customer_id == own);
    Ok(all)
}

/// A page of the zones the caller may see (as [`visible_zones`]), newest
/// first, the gone ones left out.
pub async fn zones_page(
    cx: &Context,
    query: ResourceQuery<'_>,
) -> Result<Vec<ZoneView>, ServiceError> {
    let customer = if cx.principal.role().is_staff() {
        cx.principal
            .require(mpanel_domain::identity::Permission::HostingRead)?;
        None
    } else {
        match mpanel_services::customers::own(cx).await? {
            Some(own) => Some(own),
            None => return Ok(Vec::new()),
        }
    };
    let query = ResourceQuery {
        customer,
        without: Some(ResourceKind::DnsZone.gone()),
        ..query
    };
    Ok(cx
        .store
        .resources_page(ResourceKind::DnsZone, cx.tenant_id(), &query)
        .await?
        .into_iter()
        .map(ZoneView::from)
        .collect())
}

/// Whether the caller may see (and, `write`, change) the zone `name`:
/// not found otherwise, so a customer learns nothing of others' zones.
pub async fn check_zone_access(cx: &Context, name: &str, write: bool) -> Result<(), ServiceError> {
    if write {
        cx.principal
            .require(mpanel_domain::identity::Permission::DnsWrite)?;
    }
    let wanted = canonical_zone(name).map_err(|_| ServiceError::missing("zone")())?;
    if visible_zones(cx).await?.iter().any(|z| z.name == wanted) {
        Ok(())
    } else {
        Err(ServiceError::missing("zone")())
    }
}

/// The zone's record sets on its DNS server, SOA left out.
pub async fn list(
    cx: &Context,
    secrets: Option<&SecretBox>,
    zone: &str,
) -> Result<Vec<RecordSet>, ServiceError> {
    let zone = find_zone(&cx.store, cx.tenant_id(), zone).await?;
    let pdns = driver(&cx.store, secrets, &zone).await?;
    let mut sets = current(&pdns, &zone.name).await?;
    sets.retain(|s| s.rtype != RecordType::SOA);
    Ok(sets)
}

/// Who changes a tenant's records, and with what: the record-set writes.
#[derive(Clone, Copy)]
pub struct Editor<'a> {
    /// Who writes, in which tenant.
    pub cx: &'a Context,
    /// Opens the DNS server's credentials; `None` makes writes unavailable.
    pub secrets: Option<&'a SecretBox>,
}

impl Editor<'_> {
    /// Creates or replaces the record set `input` (its name relative to
    /// the zone or absolute); returns it as stored.
    pub async fn put(&self, zone: &str, input: &RecordSet) -> Result<RecordSet, ServiceError> {
        let zone = find_zone(&self.cx.store, self.cx.tenant_id(), zone).await?;
        let pdns = driver(&self.cx.store, self.secrets, &zone).await?;
        let existing = current(&pdns, &zone.name).await?;
        self.write(&pdns, &zone, input, &existing).await
    }

    /// Replaces the existing record set `name`/`rtype` with this TTL (0 for
    /// the default) and these records; not found when there is none.
    pub async fn replace(
        &self,
        zone: &str,
        name: &str,
        rtype: &str,
        ttl: u32,
        records: Vec<String>,
    ) -> Result<RecordSet, ServiceError> {
        let zone = find_zone(&self.cx.store, self.cx.tenant_id(), zone).await?;
        let (name, rtype) = rrset_key(&zone.name, name, rtype)?;
        let pdns = driver(&self.cx.store, self.secrets, &zone).await?;
        let existing = current(&pdns, &zone.name).await?;
        if !existing.iter().any(|s| s.name == name && s.rtype == rtype) {
            return Err(no_rrset());
        }
        let input = RecordSet {
            name,
            rtype,
            ttl,
            records,
        };
        self.write(&pdns, &zone, &input, &existing).await
    }

    /// Deletes the record set `name`/`rtype`; NS and SOA are refused, and
    /// a set that is not there is not found.
    pub async fn delete(&self, zone: &str, name: &str, rtype: &str) -> Result<(), ServiceError> {
        let zone = find_zone(&self.cx.store, self.cx.tenant_id(), zone).await?;
        let (name, rtype) = rrset_key(&zone.name, name, rtype)?;
        if !rtype.customer_editable() {
            return Err(ServiceError::invalid(
                "type",
                format!("{rtype} records are managed by the platform"),
            ));
        }
        let pdns = driver(&self.cx.store, self.secrets, &zone).await?;
        let existing = current(&pdns, &zone.name).await?;
        let Some(before) = existing
            .into_iter()
            .find(|s| s.name == name && s.rtype == rtype)
        else {
            return Err(no_rrset());
        };
        pdns.delete_rrset(&zone.name, &name, rtype)
            .await
            .map_err(driver_error)?;
        let before = json!({"name": before.name, "type": rtype, "ttl": before.ttl, "records": before.records});
        self.audit(&zone, "dns.rrset.delete", Some(before), None)
            .await
    }

    /// Validates `input` against `existing`, sends it, audits it.
    async fn write(
        &self,
        pdns: &PowerDns,
        zone: &ResourceRecord,
        input: &RecordSet,
        existing: &[RecordSet],
    ) -> Result<RecordSet, ServiceError> {
        let set = validate_rrset(&zone.name, input, existing)
            .map_err(|e| ServiceError::invalid(e.field, e.message))?;
        let before = existing
            .iter()
            .find(|s| s.name == set.name && s.rtype == set.rtype)
            .map(|s| json!({"ttl": s.ttl, "records": s.records}));
        pdns.replace_rrset(&zone.name, &set)
            .await
            .map_err(driver_error)?;
        let after =
            json!({"name": set.name, "type": set.rtype, "ttl": set.ttl, "records": set.records});
        self.audit(zone, "dns.rrset.replace", before, Some(after))
            .await?;
        Ok(set)
    }

    /// The audit row of a change PowerDNS took, in its own transaction.
    async fn audit(
        &self,
        zone: &ResourceRecord,
        action: &str,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> Result<(), ServiceError> {
        let before = before.map(|mut b| {
            if let Some(map) = b.as_object_mut() {
                map.insert("zone".into(), json!(zone.name));
            }
            b
        });
        let mut tx = self.cx.store.begin().await?;
        tx.record_audit(&self.cx.audit(Audited {
            action,
            target_type: "dns_zone",
            target_id: zone.id.to_string(),
            before,
            after,
            at: self.cx.now(),
        }))
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

pub(crate) async fn live_zones(
    store: &Store,
    tenant: TenantId,
) -> Result<Vec<ResourceRecord>, ServiceError> {
    let gone = ResourceKind::DnsZone.gone();
    Ok(store
        .list_resources(ResourceKind::DnsZone, tenant, None, MAX_ZONES)
        .await?
        .into_iter()
        .filter(|z| z.status != gone)
        .collect())
}

/// The tenant's live zone of this name (with or without trailing dot).
async fn find_zone(
    store: &Store,
    tenant: TenantId,
    zone: &str,
) -> Result<ResourceRecord, ServiceError> {
    let not_found = || ServiceError::NotFound("no such DNS zone".into());
    let name = canonical_zone(zone).map_err(|_| not_found())?;
    live_zones(store, tenant)
        .await?
        .into_iter()
        .find(|z| z.name.eq_ignore_ascii_case(&name))
        .ok_or_else(not_found)
}

/// The PowerDNS server holding the zone.
async fn driver(
    store: &Store,
    secrets: Option<&SecretBox>,
    zone: &ResourceRecord,
) -> Result<PowerDns, ServiceError> {
    let secrets = secrets.ok_or_else(|| {
        tracing::error!("no secret key configured: DNS servers cannot be reached");
        ServiceError::Unavailable("the DNS service is not available".into())
    })?;
    let server = store.server(zone.server_id).await?.ok_or_else(|| {
        ServiceError::Conflict("the zone's DNS server is not in the inventory".into())
    })?;
    crate::nodes::dns(secrets, &server).map_err(driver_error)
}

/// The zone's current record sets; a zone PowerDNS lacks is a conflict.
async fn current(pdns: &PowerDns, zone: &str) -> Result<Vec<RecordSet>, ServiceError> {
    pdns.zone(zone).await.map_err(driver_error)?.ok_or_else(|| {
        tracing::warn!(zone, "zone recorded but absent from its DNS server");
        ServiceError::Conflict("the zone is not on its DNS server (yet)".into())
    })
}

/// The absolute name and type named in a path; an unknown type or a name
/// outside the zone is not found.
fn rrset_key(zone: &str, name: &str, rtype: &str) -> Result<(String, RecordType), ServiceError> {
    let rtype: RecordType = rtype
        .trim()
        .to_ascii_uppercase()
        .parse()
        .map_err(|_| no_rrset())?;
    let name = canonical_name(zone, name).map_err(|_| no_rrset())?;
    Ok((name, rtype))
}

fn no_rrset() -> ServiceError {
    ServiceError::NotFound("no such record set".into())
}

/// The driver's failure for the caller: transient ones are 503, others a
/// conflict; the cause goes to the log only.
fn driver_error(e: DriverError) -> ServiceError {
    match e {
        // A record change never waits for a proof; were one to, it is
        // "not now" to the caller as an unreachable server is.
        DriverError::Transient(cause) | DriverError::Waiting { reason: cause, .. } => {
            tracing::warn!(%cause, "DNS server unavailable");
            ServiceError::Unavailable("the DNS server is not reachable; try again".into())
        }
        DriverError::Permanent(cause) => {
            tracing::error!(%cause, "DNS server refused a change");
            ServiceError::Conflict("the DNS server refused the change".into())
        }
    }
}
