//! E-mail: messages are rendered from templates and written to the outbox
//! in the transaction of the event that causes them, then delivered over
//! SMTP by the `notify.email` job, DKIM-signed with the tenant's key.
//!
//! - [`settings`]: `smtp_url` and the platform's sender;
//! - [`sender`]: who a tenant's messages come from;
//! - [`templates`]: rendering a kind: built-in or the tenant's own;
//! - [`tenant_templates`]: the tenant's own templates, as admins manage them;
//! - [`outbox`]: writing a message with its job, and what staff see;
//! - [`message`]: an outbox row as a MIME message;
//! - [`dkim`]: the tenants' keys and their DNS records;
//! - [`deliver`]: the job;
//! - [`fields`], [`security_notice`]: what several kinds show alike;
//! - one module per message kind (the three subscription-state kinds
//!   share [`service_status`]).

pub mod account_link;
pub mod api_token_created;
pub mod deliver;
pub mod dkim;
pub mod fields;
pub mod invoice_issued;
pub mod invoice_reminder;
pub mod message;
pub mod mfa_changed;
pub mod new_sign_in;
pub mod outbox;
pub mod payment_received;
pub mod security_notice;
pub mod sender;
pub mod service_ready;
pub mod service_status;
pub mod settings;
pub mod templates;
pub mod tenant_markup;
pub mod tenant_templates;
pub mod webhook_endpoint_disabled;

pub use deliver::{Mailer, deliver};
pub use settings::MailSettings;
