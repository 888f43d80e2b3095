//! A tenant's security policy, and the checks that enforce it.

use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::identity::Role;
use crate::orders::domain_control::DomainControl;
use crate::provisioning::disk_quota::{OverQuotaAction, QuotaPolicy};

/// Who must use a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MfaRequirement {
    Optional,
    /// Every role but `CUSTOMER`.
    Staff,
    All,
}

/// An IP network, `203.0.113.0/24` or `2001:db8::/32` (or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix))
                };
                (u32::from(net) & mask) == (u32::from(ip) & mask)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                (u128::from(net) & mask) == (u128::from(ip) & mask)
            }
            (IpAddr::V6(_), IpAddr::V4(v4)) => self.contains(IpAddr::V6(v4.to_ipv6_mapped())),
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6
                .to_ipv4_mapped()
                .is_some_and(|v4| self.contains(IpAddr::V4(v4))),
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not an address or network like 203.0.113.0/24");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let network: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { network, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// What a tenant requires of its users' sign-ins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityPolicy {
    /// At least 12 (the platform's floor), at most 128.
    #[schema(minimum = 12, maximum = 128)]
    pub password_min_length: u32,
    pub mfa_required: MfaRequirement,
    /// A session unused this long ends (minutes; 0: never).
    pub session_idle_timeout_minutes: u32,
    /// A session ends this long after login, however used (hours).
    #[schema(minimum = 1, maximum = 2160)]
    pub session_max_lifetime_hours: u32,
    /// API tokens may not live longer (days, 1 to 90; a token made
    /// without an expiry gets this one).
    #[schema(minimum = 1, maximum = 90)]
    pub api_token_max_lifetime_days: u32,
    /// Staff logins and API tokens only from these networks (empty: any).
    #[schema(max_items = 100)]
    pub ip_allow_list: Vec<Cidr>,
    /// Security events older than this are deleted (days, 30 to 3650).
    #[schema(minimum = 30, maximum = 3650)]
    pub security_event_retention_days: u32,
    /// What a customer must prove before a domain they ordered goes live
    /// (`DELEGATION_OR_TXT` or `NONE`). A policy saved before this field
    /// existed reads with the default, like every missing field.
    pub domain_control: DomainControl,
    /// What happens to a hosting account measured over its plan's disk
    /// quota: `NOTIFY` (shown and recorded) or `SUSPEND` (its site is
    /// suspended until it is back under).
    pub over_quota_action: OverQuotaAction,
    /// How long an account may stay over quota before `SUSPEND` applies
    /// (hours, 0 to 720).
    #[schema(maximum = 720)]
    pub over_quota_grace_hours: u32,
    /// How long the last backup of a terminated site or mailbox is kept
    /// (days, 0 to 3650).
    #[schema(maximum = 3650)]
    pub backup_retention_days: u32,
}

// On the wire a network is its text, `203.0.113.0/24` or `2001:db8::/32`.
impl utoipa::PartialSchema for Cidr {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .examples([serde_json::json!("203.0.113.0/24")])
            .into()
    }
}

impl utoipa::ToSchema for Cidr {}

/// The longest grace before an account over quota is suspended (30 days).
pub const MAX_OVER_QUOTA_GRACE_HOURS: u32 = 720;

/// The platform's ceiling on an API token's life, in days.
pub const API_TOKEN_MAX_LIFETIME_DAYS: u32 = 90;

impl Default for SecurityPolicy {
    fn default() -> Self {
        Self {
            password_min_length: 12,
            mfa_required: MfaRequirement::Optional,
            session_idle_timeout_minutes: 0,
            session_max_lifetime_hours: 24 * 30,
            api_token_max_lifetime_days: API_TOKEN_MAX_LIFETIME_DAYS,
            ip_allow_list: Vec::new(),
            security_event_retention_days: 365,
            // The safe choice for every tenant that has not chosen: a name
            // nobody proved is never served. Also for policies saved before
            // the field existed: an upgrade must not leave a platform open
            // to hijacked names because a tenant once saved its policy.
            // Orders already waiting get their token shown when their job
            // next runs. Tests that provision made-up `*.test` names set
            // NONE explicitly.
            domain_control: DomainControl::DelegationOrTxt,
            over_quota_action: OverQuotaAction::Notify,
            over_quota_grace_hours: 24,
            backup_retention_days: 30,
        }
    }
}

impl SecurityPolicy {
    /// The rule for hosting accounts over their disk quota.
    pub fn quota_policy(&self) -> QuotaPolicy {
        QuotaPolicy {
            action: self.over_quota_action,
            grace: time::Duration::hours(i64::from(self.over_quota_grace_hours)),
        }
    }

    /// Which field is out of range, and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !(12..=128).contains(&self.password_min_length) {
            return Err(("password_min_length", "must be 12 to 128".into()));
        }
        if self.session_max_lifetime_hours == 0 || self.session_max_lifetime_hours > 24 * 90 {
            return Err((
                "session_max_lifetime_hours",
                "must be 1 to 2160 (90 days)".into(),
            ));
        }
        if !(1..=API_TOKEN_MAX_LIFETIME_DAYS).contains(&self.api_token_max_lifetime_days) {
            return Err((
                "api_token_max_lifetime_days",
                format!("must be 1 to {API_TOKEN_MAX_LIFETIME_DAYS}"),
            ));
        }
        if !(30..=3650).contains(&self.security_event_retention_days) {
            return Err(("security_event_retention_days", "must be 30 to 3650".into()));
        }
        if self.over_quota_grace_hours > MAX_OVER_QUOTA_GRACE_HOURS {
            return Err((
                "over_quota_grace_hours",
                format!("must be 0 to {MAX_OVER_QUOTA_GRACE_HOURS} (30 days)"),
            ));
        }
        if self.backup_retention_days > 3650 {
            return Err(("backup_retention_days", "must be 0 to 3650".into()));
        }
        if self.ip_allow_list.len() > 100 {
            return Err(("ip_allow_list", "at most 100 networks".into()));
        }
        Ok(())
    }

    /// The longest an API token may live, in days: the policy's value
    /// within the platform's 90 (a policy saved when 0 meant "no limit"
    /// gets the platform's).
    pub fn api_token_max_days(&self) -> u32 {
        match self.api_token_max_lifetime_days {
            0 => API_TOKEN_MAX_LIFETIME_DAYS,
            n => n.min(API_TOKEN_MAX_LIFETIME_DAYS),
        }
    }

    pub fn mfa_required_for(&self, role: Role) -> bool {
        match self.mfa_required {
            MfaRequirement::Optional => false,
            MfaRequirement::Staff => role.is_staff(),
            MfaRequirement::All => true,
        }
    }

    /// Whether `ip` may sign in as staff or use an API token.
    pub fn ip_allowed(&self, ip: Option<IpAddr>) -> bool {
        if self.ip_allow_list.is_empty() {
            return true;
        }
        ip.is_some_and(|ip| self.ip_allow_list.iter().any(|n| n.contains(ip)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_contain_their_addresses() {
        let net: Cidr = "203.0.113.0/24".parse().unwrap();
        assert!(net.contains("203.0.113.77".parse().unwrap()));
        assert!(!net.contains("203.0.114.1".parse().unwrap()));
        assert!(net.contains("::ffff:203.0.113.9".parse().unwrap()));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nope".parse::<Cidr>().is_err());
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn policy_rules() {
        let mut p = SecurityPolicy::default();
        assert!(p.check().is_ok());
        assert!(p.ip_allowed(None));
        p.ip_allow_list = vec!["10.0.0.0/8".parse().unwrap()];
        assert!(!p.ip_allowed(Some("192.0.2.1".parse().unwrap())));
        assert!(!p.ip_allowed(None));
        p.mfa_required = MfaRequirement::Staff;
        assert!(p.mfa_required_for(Role::Billing));
        assert!(!p.mfa_required_for(Role::Customer));
        p.password_min_length = 8;
        assert_eq!(p.check().unwrap_err().0, "password_min_length");
    }

    #[test]
    fn a_policy_saved_before_domain_control_existed_requires_proof() {
        let old = serde_json::json!({"password_min_length": 14, "mfa_required": "STAFF"});
        let p: SecurityPolicy = serde_json::from_value(old).unwrap();
        assert_eq!(p.password_min_length, 14);
        assert_eq!(p.domain_control, DomainControl::DelegationOrTxt);
        assert!(SecurityPolicy::default().domain_control.requires_proof());
        let none: SecurityPolicy =
            serde_json::from_value(serde_json::json!({"domain_control": "NONE"})).unwrap();
        assert!(!none.domain_control.requires_proof());
        assert!(
            serde_json::from_value::<SecurityPolicy>(
                serde_json::json!({"domain_control": "MAYBE"})
            )
            .is_err()
        );
    }

    #[test]
    fn the_quota_rule_defaults_to_notify_and_a_stored_policy_without_it_still_loads() {
        let old: SecurityPolicy =
            serde_json::from_str(r#"{"password_min_length": 14, "mfa_required": "STAFF"}"#)
                .unwrap();
        assert_eq!(old.password_min_length, 14);
        assert_eq!(old.over_quota_action, OverQuotaAction::Notify);
        assert_eq!(old.quota_policy().grace, time::Duration::hours(24));
        let mut p: SecurityPolicy = serde_json::from_str(
            r#"{"over_quota_action": "SUSPEND", "over_quota_grace_hours": 0}"#,
        )
        .unwrap();
        assert!(p.check().is_ok());
        assert_eq!(p.quota_policy().action, OverQuotaAction::Suspend);
        p.over_quota_grace_hours = 721;
        assert_eq!(p.check().unwrap_err().0, "over_quota_grace_hours");
        assert!(
            serde_json::from_str::<SecurityPolicy>(r#"{"over_quota_action": "DELETE"}"#).is_err()
        );
    }
}
