//! Pure domain rules and types of mPanel.
//!
//! Nothing here does I/O or awaits: every rule is a function of its inputs,
//! time included (see [`clock`]), so it is tested without a database.
#![forbid(unsafe_code)]

pub mod backups;
pub mod billing;
pub mod catalog;
pub mod clock;
pub mod cloudpods;
pub mod contact;
pub mod dns;
pub mod identity;
pub mod ids;
pub mod jobs;
pub mod notify;
pub mod ops;
pub mod orders;
pub mod provisioning;
pub mod security;
pub mod tenant;
pub mod tls;
pub mod webhooks;

pub use clock::{Clock, ManualClock, SystemClock};
pub use ids::{
    ApiTokenId, AuditEventId, BackupRepoId, BackupRunId, BackupTargetId, CertificateId, CloudPodId,
    CreditNoteId, CustomerId, CustomerNoteId, DkimKeyId, EmailId, InvoiceId, JobId, OrderId,
    OrderItemId, PaymentId, PodBackupId, PriceId, ProductId, RefreshTokenId, ResourceId,
    SecurityEventId, ServerId, SessionId, SubscriptionId, TenantId, UserId, WebhookDeliveryId,
    WebhookEndpointId,
};
pub use tenant::{NewTenant, TenantRuleError, TenantSlug, TenantStatus};
