//! Each tenant's DKIM key per sending domain: RSA-2048, made on first use
//! (a message to sign, or staff asking for the DNS record), its private
//! key sealed with the secrets box and bound to its row; every message is
//! signed with it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;
use mpanel_domain::notify::{dkim_record_name, dkim_record_value, dkim_selector};
use mpanel_domain::{DkimKeyId, TenantId};
use mpanel_store::Store;
use mpanel_store::notify::DkimKeyRecord;
use mpanel_store::secret_box::kind;
use serde::Serialize;
use time::OffsetDateTime;

use crate::ServiceError;

/// The DNS record that publishes a key.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct DkimRecordView {
    /// The signing domain (`d=`): the sender address's domain.
    pub domain: String,
    /// `s=`.
    pub selector: String,
    /// `<selector>._domainkey.<domain>`.
    pub record_name: String,
    /// Always `TXT`.
    pub record_type: &'static str,
    /// `v=DKIM1; k=rsa; p=…`, whole.
    pub value: String,
    /// `value` as DNS holds it: quoted strings of at most 255 characters
    /// each, separated by spaces (what a zone file or most DNS panels
    /// take for a TXT record longer than one string).
    pub value_quoted: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

pub fn record_view(key: &DkimKeyRecord) -> DkimRecordView {
    DkimRecordView {
        domain: key.domain.clone(),
        selector: key.selector.clone(),
        record_name: dkim_record_name(&key.selector, &key.domain),
        record_type: "TXT",
        value: dkim_record_value(&key.public_key),
        value_quoted: txt_strings(&dkim_record_value(&key.public_key)),
        created_at: key.created_at,
    }
}

/// `value` as TXT character-strings: quoted, at most 255 characters each
/// (a DKIM value is ASCII without quotes or backslashes).
pub fn txt_strings(value: &str) -> String {
    value
        .as_bytes()
        .chunks(255)
        .map(|chunk| format!("\"{}\"", String::from_utf8_lossy(chunk)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn binding_row(tenant: TenantId, id: DkimKeyId) -> String {
    kind::tenant_row(tenant.as_uuid(), id.as_uuid())
}

/// The tenant's key for `domain`, made (and stored sealed) if it has none.
pub async fn key_for(
    store: &Store,
    tenant: TenantId,
    domain: &str,
    now: OffsetDateTime,
) -> Result<DkimKeyRecord, ServiceError> {
    if let Some(key) = store.dkim_key(tenant, domain).await? {
        return Ok(key);
    }
    let sb = crate::sealed::secret_box(store)?;
    let (pem, public_key) = tokio::task::spawn_blocking(generate)
        .await
        .map_err(|e| ServiceError::internal("generating a DKIM key", e))??;
    let id = DkimKeyId::new();
    let key = DkimKeyRecord {
        id,
        tenant_id: tenant,
        domain: domain.to_owned(),
        selector: dkim_selector(id),
        private_key_sealed: sb.seal_str(&pem, kind::DKIM_KEY, &binding_row(tenant, id))?,
        public_key,
        created_at: now,
    };
    let mut tx = store.begin().await?;
    if tx.insert_dkim_key(&key).await? {
        tx.record_audit(&crate::Actor::system("notify").audit(crate::actor::Change {
            tenant,
            action: "dkim.key_create",
            target_type: "dkim_key",
            target_id: id.to_string(),
            before: None,
            after: Some(serde_json::json!({"domain": key.domain, "selector": key.selector})),
            at: now,
        }))
        .await?;
        tracing::info!(%tenant, domain, selector = %key.selector, "made a DKIM key");
    }
    tx.commit().await?;
    store
        .dkim_key(tenant, domain)
        .await?
        .ok_or_else(|| ServiceError::internal_msg("a DKIM key just stored is not there"))
}

/// A new RSA-2048 key: its PKCS#1 PEM (what lettre signs with) and the
/// base64 DER of its public key (what DNS publishes).
fn generate() -> Result<(String, String), ServiceError> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::EncodePublicKey;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
        .map_err(|e| ServiceError::internal("generating a DKIM key", e))?;
    let pem = key
        .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
        .map_err(|e| ServiceError::internal("encoding a DKIM key", e))?;
    let public = key
        .to_public_key()
        .to_public_key_der()
        .map_err(|e| ServiceError::internal("encoding a DKIM public key", e))?;
    Ok((pem.to_string(), STANDARD.encode(public.as_bytes())))
}

/// How a message is signed with `key`: relaxed canonicalization (headers
/// and body survive the folding relays do), over the headers a reader
/// trusts.
pub fn signing_config(store: &Store, key: &DkimKeyRecord) -> Result<DkimConfig, ServiceError> {
    let sb = crate::sealed::secret_box(store)?;
    let pem = sb.open_str(
        &key.private_key_sealed,
        kind::DKIM_KEY,
        &binding_row(key.tenant_id, key.id),
    )?;
    let signing = DkimSigningKey::new(&pem, DkimSigningAlgorithm::Rsa)
        .map_err(|e| ServiceError::internal_msg(format!("a stored DKIM key is unusable: {e}")))?;
    // RFC 6376 §5.4: what a reader trusts, and the MIME structure (an
    // unsigned Content-Type could be swapped to show another part).
    let headers = [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
        "Content-Type",
    ]
    .into_iter()
    .map(HeaderName::new_from_ascii_str)
    .collect();
    Ok(DkimConfig::new(
        key.selector.clone(),
        key.domain.clone(),
        signing,
        headers,
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    ))
}

/// The caller's tenant's signing domain: its sender's.
async fn signing_domain(
    cx: &crate::Context,
    mail: &super::MailSettings,
) -> Result<String, ServiceError> {
    let own = cx
        .store
        .tenant_sender(cx.tenant_id())
        .await?
        .ok_or_else(ServiceError::missing("tenant"))?;
    let from = super::sender::effective(&cx.tenant, &own, mail);
    Ok(from.email.domain().to_ascii_lowercase())
}

/// `GET /api/notifications/dkim`: the record of the key the caller's
/// tenant signs with (its sender's domain); not found until a key is made
/// (by [`ensure`] or the first message).
pub async fn record(
    cx: &crate::Context,
    mail: &super::MailSettings,
) -> Result<DkimRecordView, ServiceError> {
    let domain = signing_domain(cx, mail).await?;
    let key = cx
        .store
        .dkim_key(cx.tenant_id(), &domain)
        .await?
        .ok_or_else(|| {
            ServiceError::NotFound(format!(
                "no DKIM key for {domain} yet: POST /api/notifications/dkim makes one"
            ))
        })?;
    Ok(record_view(&key))
}

/// `POST /api/notifications/dkim`: the key the caller's tenant signs
/// with, made if need be, so staff can publish it before the first
/// message goes out.
pub async fn ensure(
    cx: &crate::Context,
    mail: &super::MailSettings,
) -> Result<DkimKeyRecord, ServiceError> {
    let domain = signing_domain(cx, mail).await?;
    key_for(&cx.store, cx.tenant_id(), &domain, cx.now()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_value_is_split_into_strings_of_at_most_255() {
        let value = format!("v=DKIM1; k=rsa; p={}", "A".repeat(392));
        let quoted = txt_strings(&value);
        let inner = quoted
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .unwrap();
        let strings: Vec<&str> = inner.split("\" \"").collect();
        assert_eq!(strings.len(), 2, "{quoted}");
        assert!(strings.iter().all(|s| s.len() <= 255 && !s.contains('"')));
        assert_eq!(strings[0].len(), 255);
        let joined: String = strings.concat();
        assert_eq!(joined, value);
        assert_eq!(txt_strings("v=DKIM1"), "\"v=DKIM1\"");
    }
}
