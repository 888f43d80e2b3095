//! Publishing a tenant's DKIM record where mPanel serves the sender's
//! domain: when one of the tenant's live DNS zones holds that domain, the
//! TXT record is written there (checked and audited like any record
//! change); otherwise staff publish it wherever the domain's DNS is.

use mpanel_domain::dns::{RecordSet, RecordType, canonical_zone};
use mpanel_domain::notify::{dkim_record_name, dkim_record_value};
use mpanel_services::ServiceError;
use mpanel_services::context::Context;
use mpanel_services::notify::dkim::txt_strings;
use mpanel_services::secret_box::SecretBox;
use mpanel_store::notify::DkimKeyRecord;

use crate::records::{Editor, live_zones};

/// Writes `key`'s record into the tenant's zone that holds its domain
/// (the closest one); answers the zone, or `None` when mPanel does not
/// serve the domain.
pub async fn publish(
    cx: &Context,
    secrets: Option<&SecretBox>,
    key: &DkimKeyRecord,
) -> Result<Option<String>, ServiceError> {
    let Ok(domain) = canonical_zone(&key.domain) else {
        return Ok(None);
    };
    let zones = live_zones(&cx.store, cx.tenant_id()).await?;
    let Some(zone) = zones
        .iter()
        .filter(|z| holds(&z.name, &domain))
        .max_by_key(|z| z.name.len())
    else {
        return Ok(None);
    };
    let set = RecordSet {
        name: format!("{}.", dkim_record_name(&key.selector, &key.domain)),
        rtype: RecordType::TXT,
        ttl: 0,
        records: vec![txt_strings(&dkim_record_value(&key.public_key))],
    };
    Editor { cx, secrets }.put(&zone.name, &set).await?;
    Ok(Some(zone.name.clone()))
}

/// Whether zone `zone` holds `name` (both canonical, trailing dot).
fn holds(zone: &str, name: &str) -> bool {
    let (zone, name) = (zone.to_ascii_lowercase(), name.to_ascii_lowercase());
    name == zone || name.ends_with(&format!(".{zone}"))
}

#[cfg(test)]
mod tests {
    use super::holds;

    #[test]
    fn a_zone_holds_its_name_and_names_below_it_only() {
        assert!(holds("example.test.", "example.test."));
        assert!(holds("example.test.", "mail.example.test."));
        assert!(!holds("example.test.", "badexample.test."));
        assert!(!holds("mail.example.test.", "example.test."));
    }
}
