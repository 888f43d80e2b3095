//! The permission matrix: the one place that says which role may do what,
//! and which API token scope each permission needs. Every route checks a
//! [`Permission`] through [`Access::permits`]; the matrix test walks every
//! route against this table.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Role;

/// Something a route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Permission {
    /// Read one's own identity (`/api/auth/me`).
    SelfRead,
    /// Manage one's own sessions and password (list, revoke, log out).
    SelfSecurity,
    /// Manage one's own API tokens.
    SelfTokens,
    /// Enrol and remove one's own second factors.
    SelfMfa,
    /// List and read the tenant's users.
    UsersRead,
    /// Create, change and disable the tenant's users.
    UsersWrite,
    /// Read the tenant's audit log.
    AuditRead,
    /// See the job queue (platform operations).
    JobsRead,
    /// Retry and cancel jobs (platform operations).
    JobsManage,
    /// See the tenant's catalog: products, prices, resolved prices.
    CatalogRead,
    /// Create and change products and prices.
    CatalogWrite,
    /// See the tenant's orders and their provisioning.
    OrdersRead,
    /// See the tenant's customers.
    CustomersRead,
    /// Create and change customers' details.
    CustomersWrite,
    /// Change the tenant's settings (webhook secret).
    SettingsWrite,
    /// Read and change the tenant's security policy.
    SecurityPolicyWrite,
    /// Read every security event of the tenant (others read their own).
    SecurityEventsRead,
    InvoicesRead,
    InvoicesWrite,
    PaymentsWrite,
    BillingSettingsWrite,
    ServersRead,
    ServersWrite,
    HostingRead,
    HostingWrite,
    SubscriptionsRead,
    SubscriptionsWrite,
    /// Record metered usage (a metering system's token).
    UsageWrite,
    /// See the tenant's e-mail: the outbox (delivery status, never bodies)
    /// and the DKIM record to publish.
    NotificationsRead,
    /// See the tenant's webhook endpoints and their deliveries.
    WebhooksRead,
    /// Subscribe URLs to events, change them, redeliver.
    WebhooksWrite,
    /// See CloudPods: staff the tenant's, a customer their own.
    CloudPodsRead,
    /// Act on a CloudPod day to day (details, reboot, backups, restore):
    /// staff who act on provisioning, and a customer on their own pods.
    CloudPodsOperate,
    /// Create and delete CloudPods (an order and its invoice; the end of
    /// a subscription).
    CloudPodsManage,
    /// See a site's or mailbox's backups: staff the tenant's, a customer
    /// their own.
    BackupsRead,
    /// Ask for a backup now and restore one: staff who act on
    /// provisioning, and a customer on their own accounts.
    BackupsWrite,
    /// See the platform's tenants (platform operations).
    TenantsRead,
    /// Create tenants, change, suspend and restore them.
    TenantsWrite,
    /// The operations overview: the platform's (operator) or one tenant's
    /// share (its admin) of nodes, queues, provisioning, security, billing
    /// and backups.
    OpsOverviewRead,
    /// Add mailboxes within a plan and change their passwords: staff who
    /// act on provisioning, and a customer on their own subscriptions.
    MailboxesWrite,
    /// Change a zone's DNS records in the console's editor: staff who act
    /// on provisioning, and a customer in their own zones.
    DnsWrite,
    /// Pay an invoice by card through Stripe in the console: a customer
    /// their own invoices, billing staff any (a card taken by phone).
    InvoicesPay,
    /// See a site's certificates and where its issuance stands: staff, and
    /// a customer their own sites'.
    CertificatesRead,
    /// Upload a site's certificate or ask for one now: staff who act on
    /// provisioning, and a customer for their own sites.
    CertificatesWrite,
}

impl Permission {
    pub const ALL: [Permission; 44] = [
        Permission::SelfRead,
        Permission::SelfSecurity,
        Permission::SelfTokens,
        Permission::SelfMfa,
        Permission::UsersRead,
        Permission::UsersWrite,
        Permission::AuditRead,
        Permission::JobsRead,
        Permission::JobsManage,
        Permission::CatalogRead,
        Permission::CatalogWrite,
        Permission::OrdersRead,
        Permission::CustomersRead,
        Permission::CustomersWrite,
        Permission::SettingsWrite,
        Permission::SecurityPolicyWrite,
        Permission::SecurityEventsRead,
        Permission::InvoicesRead,
        Permission::InvoicesWrite,
        Permission::PaymentsWrite,
        Permission::BillingSettingsWrite,
        Permission::ServersRead,
        Permission::ServersWrite,
        Permission::HostingRead,
        Permission::HostingWrite,
        Permission::SubscriptionsRead,
        Permission::SubscriptionsWrite,
        Permission::UsageWrite,
        Permission::NotificationsRead,
        Permission::WebhooksRead,
        Permission::WebhooksWrite,
        Permission::CloudPodsRead,
        Permission::CloudPodsOperate,
        Permission::CloudPodsManage,
        Permission::BackupsRead,
        Permission::BackupsWrite,
        Permission::TenantsRead,
        Permission::TenantsWrite,
        Permission::OpsOverviewRead,
        Permission::MailboxesWrite,
        Permission::DnsWrite,
        Permission::InvoicesPay,
        Permission::CertificatesRead,
        Permission::CertificatesWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SelfRead => "SELF_READ",
            Self::SelfSecurity => "SELF_SECURITY",
            Self::SelfTokens => "SELF_TOKENS",
            Self::SelfMfa => "SELF_MFA",
            Self::UsersRead => "USERS_READ",
            Self::UsersWrite => "USERS_WRITE",
            Self::AuditRead => "AUDIT_READ",
            Self::JobsRead => "JOBS_READ",
            Self::JobsManage => "JOBS_MANAGE",
            Self::CatalogRead => "CATALOG_READ",
            Self::CatalogWrite => "CATALOG_WRITE",
            Self::OrdersRead => "ORDERS_READ",
            Self::CustomersRead => "CUSTOMERS_READ",
            Self::CustomersWrite => "CUSTOMERS_WRITE",
            Self::SettingsWrite => "SETTINGS_WRITE",
            Self::SecurityPolicyWrite => "SECURITY_POLICY_WRITE",
            Self::SecurityEventsRead => "SECURITY_EVENTS_READ",
            Self::InvoicesRead => "INVOICES_READ",
            Self::InvoicesWrite => "INVOICES_WRITE",
            Self::PaymentsWrite => "PAYMENTS_WRITE",
            Self::BillingSettingsWrite => "BILLING_SETTINGS_WRITE",
            Self::ServersRead => "SERVERS_READ",
            Self::ServersWrite => "SERVERS_WRITE",
            Self::HostingRead => "HOSTING_READ",
            Self::HostingWrite => "HOSTING_WRITE",
            Self::SubscriptionsRead => "SUBSCRIPTIONS_READ",
            Self::SubscriptionsWrite => "SUBSCRIPTIONS_WRITE",
            Self::UsageWrite => "USAGE_WRITE",
            Self::NotificationsRead => "NOTIFICATIONS_READ",
            Self::WebhooksRead => "WEBHOOKS_READ",
            Self::WebhooksWrite => "WEBHOOKS_WRITE",
            Self::CloudPodsRead => "CLOUDPODS_READ",
            Self::CloudPodsOperate => "CLOUDPODS_OPERATE",
            Self::CloudPodsManage => "CLOUDPODS_MANAGE",
            Self::BackupsRead => "BACKUPS_READ",
            Self::BackupsWrite => "BACKUPS_WRITE",
            Self::TenantsRead => "TENANTS_READ",
            Self::TenantsWrite => "TENANTS_WRITE",
            Self::OpsOverviewRead => "OPS_OVERVIEW_READ",
            Self::MailboxesWrite => "MAILBOXES_WRITE",
            Self::DnsWrite => "DNS_WRITE",
            Self::InvoicesPay => "INVOICES_PAY",
            Self::CertificatesRead => "CERTIFICATES_READ",
            Self::CertificatesWrite => "CERTIFICATES_WRITE",
        }
    }

    /// The matrix: may `role` do this?
    pub fn allowed_for(self, role: Role) -> bool {
        use Role::*;
        match self {
            Self::SelfRead | Self::SelfSecurity | Self::SelfTokens | Self::SelfMfa => true,
            Self::UsersRead => matches!(role, TenantAdmin | Support),
            Self::UsersWrite => matches!(role, TenantAdmin),
            Self::AuditRead => matches!(role, SuperAdmin | TenantAdmin),
            // The operator sees the platform, a tenant's admin its share.
            Self::OpsOverviewRead => matches!(role, SuperAdmin | TenantAdmin),
            Self::JobsRead | Self::JobsManage => matches!(role, SuperAdmin),
            // The platform's tenants: its operator only.
            Self::TenantsRead | Self::TenantsWrite => matches!(role, SuperAdmin),
            Self::CatalogRead => matches!(role, TenantAdmin | Billing | Support),
            Self::CatalogWrite => matches!(role, TenantAdmin | Billing),
            Self::OrdersRead | Self::CustomersRead | Self::CustomersWrite => {
                matches!(role, TenantAdmin | Billing | Support)
            }
            // Webhook secrets and where the tenant's data goes: its admin.
            Self::SettingsWrite
            | Self::SecurityPolicyWrite
            | Self::WebhooksRead
            | Self::WebhooksWrite => matches!(role, TenantAdmin),
            Self::SecurityEventsRead => matches!(role, SuperAdmin | TenantAdmin),
            Self::InvoicesRead | Self::SubscriptionsRead => {
                matches!(role, TenantAdmin | Billing | Support)
            }
            // The platform's servers: its operator only.
            Self::ServersRead | Self::ServersWrite => matches!(role, SuperAdmin),
            Self::HostingRead => matches!(role, TenantAdmin | Billing | Support),
            // Staff who answer customers' "did you send it?".
            Self::NotificationsRead => matches!(role, TenantAdmin | Billing | Support),
            // Support acts on provisioning; billing staff do not.
            Self::HostingWrite => matches!(role, TenantAdmin | Support),
            // A customer's own pods are filtered by the service.
            Self::CloudPodsRead => !matches!(role, SuperAdmin),
            Self::CloudPodsOperate => matches!(role, TenantAdmin | Support | Customer),
            // A customer's own accounts are filtered by the service.
            Self::BackupsRead | Self::BackupsWrite => {
                matches!(role, TenantAdmin | Support | Customer)
            }
            // A customer's own subscriptions and zones, by the service.
            Self::MailboxesWrite | Self::DnsWrite => {
                matches!(role, TenantAdmin | Support | Customer)
            }
            // A customer's own sites', by the service.
            Self::CertificatesRead => matches!(role, TenantAdmin | Billing | Support | Customer),
            Self::CertificatesWrite => matches!(role, TenantAdmin | Support | Customer),
            // A customer's own invoices, by the service; never SUPPORT.
            Self::InvoicesPay => matches!(role, TenantAdmin | Billing | Customer),
            // Making a pod issues an invoice, deleting one ends its
            // subscription: money moves, never SUPPORT.
            Self::CloudPodsManage => matches!(role, TenantAdmin | Billing),
            // Money moves: never SUPPORT.
            Self::InvoicesWrite
            | Self::PaymentsWrite
            | Self::BillingSettingsWrite
            | Self::SubscriptionsWrite
            | Self::UsageWrite => matches!(role, TenantAdmin | Billing),
        }
    }

    /// The scope an API token needs for this.
    pub fn required_scope(self) -> Scope {
        match self {
            Self::SelfRead
            | Self::UsersRead
            | Self::JobsRead
            | Self::CatalogRead
            | Self::OrdersRead
            | Self::CustomersRead
            | Self::InvoicesRead
            | Self::SubscriptionsRead
            | Self::ServersRead
            | Self::HostingRead
            | Self::NotificationsRead
            | Self::WebhooksRead
            | Self::CloudPodsRead
            | Self::BackupsRead
            | Self::TenantsRead
            | Self::CertificatesRead
            | Self::OpsOverviewRead => Scope::Read,
            Self::CustomersWrite
            | Self::CloudPodsOperate
            | Self::BackupsWrite
            | Self::MailboxesWrite
            | Self::DnsWrite
            | Self::CertificatesWrite
            | Self::InvoicesPay => Scope::Write,
            Self::SettingsWrite
            | Self::SecurityPolicyWrite
            | Self::WebhooksWrite
            | Self::TenantsWrite => Scope::Admin,
            Self::SelfMfa | Self::SecurityEventsRead => Scope::Security,
            Self::CatalogWrite
            | Self::InvoicesWrite
            | Self::PaymentsWrite
            | Self::BillingSettingsWrite
            | Self::SubscriptionsWrite
            | Self::CloudPodsManage
            | Self::UsageWrite => Scope::Billing,
            Self::JobsManage | Self::ServersWrite | Self::HostingWrite => Scope::Provisioning,
            Self::UsersWrite => Scope::Admin,
            Self::SelfSecurity | Self::SelfTokens | Self::AuditRead => Scope::Security,
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Permission {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown permission {s:?}"))
    }
}

/// What an API token may be used for; a session may do all its role allows.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Scope {
    Read,
    Write,
    Admin,
    Billing,
    Provisioning,
    Security,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::Read,
        Scope::Write,
        Scope::Admin,
        Scope::Billing,
        Scope::Provisioning,
        Scope::Security,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "READ",
            Self::Write => "WRITE",
            Self::Admin => "ADMIN",
            Self::Billing => "BILLING",
            Self::Provisioning => "PROVISIONING",
            Self::Security => "SECURITY",
        }
    }

    /// Whether a user of `role` may put this scope on a token: a token
    /// never exceeds its creator's role.
    pub fn grantable_by(self, role: Role) -> bool {
        use Role::*;
        match self {
            Self::Read | Self::Write | Self::Security => true,
            Self::Admin => matches!(role, SuperAdmin | TenantAdmin),
            Self::Billing => matches!(role, TenantAdmin | Billing),
            Self::Provisioning => matches!(role, SuperAdmin | TenantAdmin | Support),
        }
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown scope {s:?}; expected one of READ, WRITE, ADMIN, BILLING, PROVISIONING, SECURITY"))
    }
}

/// A set of scopes, stored as a space-separated list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeSet(Vec<Scope>);

impl ScopeSet {
    pub fn new(scopes: impl IntoIterator<Item = Scope>) -> Self {
        let mut v: Vec<Scope> = scopes.into_iter().collect();
        v.sort();
        v.dedup();
        Self(v)
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `READ SECURITY`.
    pub fn to_stored(&self) -> String {
        self.0
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn from_stored(stored: &str) -> Result<Self, String> {
        stored
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(Self::new)
    }
}

/// Who is asking, as far as permissions go: a role, and for an API token
/// the scopes it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub role: Role,
    /// `None` for a signed-in session (all the role allows).
    pub scopes: Option<ScopeSet>,
}

impl Access {
    pub fn permits(&self, permission: Permission) -> bool {
        permission.allowed_for(self.role)
            && self
                .scopes
                .as_ref()
                .is_none_or(|s| s.contains(permission.required_scope()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_limited_by_both_role_and_scope() {
        let session = Access {
            role: Role::TenantAdmin,
            scopes: None,
        };
        assert!(session.permits(Permission::UsersWrite));
        let read_token = Access {
            role: Role::TenantAdmin,
            scopes: Some(ScopeSet::new([Scope::Read])),
        };
        assert!(read_token.permits(Permission::UsersRead));
        assert!(!read_token.permits(Permission::UsersWrite));
        let demoted = Access {
            role: Role::Customer,
            scopes: Some(ScopeSet::new([Scope::Admin, Scope::Read])),
        };
        assert!(!demoted.permits(Permission::UsersWrite));
    }

    #[test]
    fn customers_reach_only_their_own_things() {
        for p in Permission::ALL {
            let own = matches!(
                p,
                Permission::SelfRead
                    | Permission::SelfSecurity
                    | Permission::SelfTokens
                    | Permission::SelfMfa
                    // Filtered to the customer's own pods by the service.
                    | Permission::CloudPodsRead
                    | Permission::CloudPodsOperate
                    // Filtered to the customer's own accounts by the service.
                    | Permission::BackupsRead
                    | Permission::BackupsWrite
                    // Their own subscriptions' mailboxes and zones.
                    | Permission::MailboxesWrite
                    | Permission::DnsWrite
                    // Their own invoices.
                    | Permission::InvoicesPay
                    // Their own sites' certificates.
                    | Permission::CertificatesRead
                    | Permission::CertificatesWrite
            );
            assert_eq!(p.allowed_for(Role::Customer), own, "{p}");
        }
    }

    #[test]
    fn scopes_round_trip_through_storage() {
        let set = ScopeSet::new([Scope::Security, Scope::Read, Scope::Read]);
        assert_eq!(set.to_stored(), "READ SECURITY");
        assert_eq!(ScopeSet::from_stored("READ SECURITY").unwrap(), set);
        assert!(ScopeSet::from_stored("READ GOD").is_err());
        assert!(!Scope::Admin.grantable_by(Role::Customer));
        assert!(!Scope::Billing.grantable_by(Role::Support));
    }
}

#[cfg(test)]
mod documented {
    use super::*;

    /// docs/identity.md states the same matrix as the code.
    #[test]
    fn the_documented_matrix_is_the_enforced_one() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/identity.md"
        ))
        .unwrap();
        for permission in Permission::ALL {
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", permission.as_str())))
                .unwrap_or_else(|| panic!("{permission} is not documented"));
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            assert_eq!(
                cells[2],
                format!("`{}`", permission.required_scope().as_str()),
                "{permission}"
            );
            for (i, role) in Role::ALL.into_iter().enumerate() {
                let expected = if permission.allowed_for(role) {
                    "yes"
                } else {
                    "no"
                };
                assert_eq!(cells[3 + i], expected, "{permission} for {role}");
            }
        }
    }
}
