//! The five roles, least privilege first to last.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// Operates the platform (tenants, servers, queues); no implicit access
    /// to a tenant's customers' data.
    SuperAdmin,
    /// Runs one tenant: its users, settings and everything below.
    TenantAdmin,
    /// Catalog, invoices, payments, subscriptions.
    Billing,
    /// Reads most things; acts on provisioning and customers; moves no money.
    Support,
    /// Only its own account, services and invoices.
    Customer,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::SuperAdmin,
        Role::TenantAdmin,
        Role::Billing,
        Role::Support,
        Role::Customer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SuperAdmin => "SUPER_ADMIN",
            Self::TenantAdmin => "TENANT_ADMIN",
            Self::Billing => "BILLING",
            Self::Support => "SUPPORT",
            Self::Customer => "CUSTOMER",
        }
    }

    /// Whether a user of this role may give `other` to someone. Nobody hands
    /// out `SUPER_ADMIN` over the API (the command line does); a tenant admin
    /// hands out every tenant role.
    pub fn can_assign(self, other: Role) -> bool {
        match self {
            Self::SuperAdmin | Self::TenantAdmin => other != Role::SuperAdmin,
            _ => false,
        }
    }

    pub fn is_staff(self) -> bool {
        self != Role::Customer
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}; expected one of SUPER_ADMIN, TENANT_ADMIN, BILLING, SUPPORT, CUSTOMER"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_super_admin_is_never_handed_out() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
            assert!(!role.can_assign(Role::SuperAdmin));
        }
        assert!(Role::TenantAdmin.can_assign(Role::Billing));
        assert!(!Role::Support.can_assign(Role::Customer));
        assert!("ROOT".parse::<Role>().is_err());
    }
}
