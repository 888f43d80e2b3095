//! Typed identifiers: UUIDv7 underneath, shown as strings, and never mixed
//! up with one another (a `TenantId` is not a `UserId`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered identifier.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        // A UUID on the wire, so the API description says so.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

typed_id!(
    /// A CloudPod: a customer's virtual machine on a Proxmox VE cluster.
    CloudPodId
);
typed_id!(
    /// One backup of a CloudPod (a vzdump archive on the cluster).
    PodBackupId
);
typed_id!(
    /// A tenant's restic repository on a backup server.
    BackupRepoId
);
typed_id!(
    /// What is backed up: one hosting account's site or one mailbox.
    BackupTargetId
);
typed_id!(
    /// One backup or restore run of a target.
    BackupRunId
);
typed_id!(
    /// A tenant: one hosting brand, the root of multi-tenancy.
    TenantId
);
typed_id!(
    /// A user of one tenant (staff or customer).
    UserId
);
typed_id!(
    /// One row of the audit log.
    AuditEventId
);
typed_id!(
    /// A signed-in session (one login, its refresh-token family).
    SessionId
);
typed_id!(
    /// One refresh token of a session.
    RefreshTokenId
);
typed_id!(
    /// A long-lived API token.
    ApiTokenId
);
typed_id!(
    /// One security event (login, lockout, token use …).
    SecurityEventId
);
typed_id!(
    /// A job in the queue.
    JobId
);
typed_id!(
    /// A product of a tenant's catalog.
    ProductId
);
typed_id!(
    /// One price rule of a product.
    PriceId
);
typed_id!(
    /// An invoice (a draft until issued).
    InvoiceId
);
typed_id!(
    /// Money received against an invoice.
    PaymentId
);
typed_id!(
    /// A credit note against an issued invoice.
    CreditNoteId
);
typed_id!(
    /// A server of the platform's inventory.
    ServerId
);
typed_id!(
    /// A customer of a tenant (the billed party, with or without a portal user).
    CustomerId
);
typed_id!(
    /// A subscription: one ordered product, billed each period.
    SubscriptionId
);
typed_id!(
    /// An order placed through the signed webhook.
    OrderId
);
typed_id!(
    /// One item of an order (it creates one subscription).
    OrderItemId
);
typed_id!(
    /// A resource provisioning made: a DNS zone, a hosting account or a
    /// mailbox.
    ResourceId
);
typed_id!(
    /// A message of the e-mail outbox.
    EmailId
);
typed_id!(
    /// A tenant's DKIM signing key.
    DkimKeyId
);

typed_id!(
    /// A URL a tenant subscribed to events.
    WebhookEndpointId
);
typed_id!(
    /// One event sent (and retried) to one endpoint; its `webhook-id`.
    WebhookDeliveryId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_as_strings_and_are_time_ordered() {
        let first = TenantId::new();
        let second = TenantId::new();
        assert!(first < second);
        let parsed: TenantId = first.to_string().parse().unwrap();
        assert_eq!(parsed, first);
        assert_eq!(
            serde_json::to_string(&first).unwrap(),
            format!("\"{first}\"")
        );
    }
}
typed_id!(
    /// A note staff keep on a customer.
    CustomerNoteId
);

typed_id!(
    /// A certificate a hosted site had (issued by ACME or uploaded).
    CertificateId
);
