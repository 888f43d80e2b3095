//! Products: what a tenant sells, how it is billed, and what an order of
//! it provisions.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::backups::BackupPolicy;

use super::upper_enum;

upper_enum!(
    /// What kind of thing a product is.
    Category {
        CloudPod => "CLOUDPOD", Hosting => "HOSTING", Addon => "ADDON", Email => "EMAIL",
        Domain => "DOMAIN", Security => "SECURITY", Backup => "BACKUP", Support => "SUPPORT",
        Other => "OTHER",
    }
);

upper_enum!(
    /// How a product is charged.
    BillingModel {
        OneTime => "ONE_TIME", Recurring => "RECURRING", UsageBased => "USAGE_BASED",
        UsageTiered => "USAGE_TIERED",
    }
);

upper_enum!(
    /// Whether a product is sold.
    ProductStatus { Active => "ACTIVE", Inactive => "INACTIVE", Deprecated => "DEPRECATED" }
);

upper_enum!(
    /// Who sees a product.
    Visibility { Public => "PUBLIC", Private => "PRIVATE", Beta => "BETA" }
);

upper_enum!(
    /// How often a price is charged.
    Period { OneTime => "ONE_TIME", Hourly => "HOURLY", Monthly => "MONTHLY", Yearly => "YEARLY" }
);

/// What an order of a product provisions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE", deny_unknown_fields)]
pub enum ProvisioningTemplate {
    /// Nothing to provision (support plans, licences).
    None,
    /// A hosting account on a web server, optionally with its DNS zone and
    /// mailboxes.
    Hosting {
        #[serde(default)]
        dns_zone: bool,
        #[serde(default)]
        #[schema(maximum = 1000)]
        mailboxes: u32,
        #[serde(default)]
        disk_quota_mb: Option<u32>,
        #[serde(default)]
        php_version: Option<String>,
        /// The site's and mailboxes' backup policy (default: 03:00 local,
        /// 7 daily and 4 weekly snapshots kept).
        #[serde(default)]
        backup: Option<BackupPolicy>,
    },
    /// Mailboxes only.
    Email {
        #[schema(maximum = 1000)]
        mailboxes: u32,
        #[serde(default)]
        quota_mb: Option<u32>,
        /// The mailboxes' backup policy (default as for hosting).
        #[serde(default)]
        backup: Option<BackupPolicy>,
    },
    /// A virtual server of a plan.
    CloudPod {
        #[schema(pattern = "\\S")]
        plan: String,
        #[schema(minimum = 1)]
        vcpus: u32,
        #[schema(minimum = 128)]
        memory_mb: u32,
        #[schema(minimum = 1)]
        disk_gb: u32,
    },
}

impl ProvisioningTemplate {
    /// The backup policy of what this template makes (hosting and e-mail).
    pub fn backup_policy(&self) -> Option<BackupPolicy> {
        match self {
            Self::Hosting { backup, .. } | Self::Email { backup, .. } => {
                Some(backup.unwrap_or_default())
            }
            Self::None | Self::CloudPod { .. } => None,
        }
    }

    pub fn check(&self) -> Result<(), String> {
        if let Some(policy) = self.backup_policy() {
            policy.check().map_err(|e| format!("backup: {e}"))?;
        }
        match self {
            Self::Hosting { mailboxes, .. } | Self::Email { mailboxes, .. }
                if *mailboxes > 1000 =>
            {
                Err("at most 1000 mailboxes".into())
            }
            Self::CloudPod {
                plan,
                vcpus,
                memory_mb,
                disk_gb,
            } => {
                if plan.trim().is_empty() || *vcpus == 0 || *memory_mb < 128 || *disk_gb == 0 {
                    Err(
                        "a CloudPod plan needs a name, vCPUs, at least 128 MB of memory and a disk"
                            .into(),
                    )
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }
}

upper_enum!(
    /// How tiers add up: each unit at its tier's price (graduated), or all
    /// units at the price of the tier the total falls in (volume).
    TierMode { Graduated => "GRADUATED", Volume => "VOLUME" }
);

/// One tier: units up to `up_to` (the last tier has none) at `unit_price`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub up_to: Option<u64>,
    /// In major units of the price's currency; decimals allowed.
    #[schema(value_type = String, pattern = "^[0-9]{1,9}(\\.[0-9]{1,6})?$")]
    pub unit_price: Decimal,
}

/// The metered side of a usage-billed product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsagePricing {
    /// What is counted, e.g. `bandwidth_gb`.
    #[schema(pattern = "^[a-z0-9_]{1,64}$")]
    pub metric: String,
    /// For `USAGE_BASED`: the price of one unit (major units, decimals allowed).
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^[0-9]{1,9}(\\.[0-9]{1,6})?$")]
    pub unit_price: Option<Decimal>,
    /// For `USAGE_TIERED`.
    #[serde(default)]
    pub tiers: Vec<Tier>,
    #[serde(default)]
    pub tier_mode: Option<TierMode>,
}

impl UsagePricing {
    /// Checks the usage block against the billing model it serves.
    pub fn check(usage: Option<&Self>, model: BillingModel) -> Result<(), String> {
        match (model, usage) {
            (BillingModel::OneTime | BillingModel::Recurring, None) => Ok(()),
            (BillingModel::OneTime | BillingModel::Recurring, Some(_)) => {
                Err("only usage-billed products have a usage block".into())
            }
            (_, None) => Err("a usage-billed product needs a usage block with its metric".into()),
            (model, Some(u)) => {
                let metric_ok = !u.metric.is_empty()
                    && u.metric.len() <= 64
                    && u.metric
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if !metric_ok {
                    return Err("metric: 1 to 64 characters of a-z, 0-9 and _".into());
                }
                if model == BillingModel::UsageBased {
                    return match u.unit_price {
                        Some(p) if p >= Decimal::ZERO && u.tiers.is_empty() => Ok(()),
                        _ => Err("USAGE_BASED needs a non-negative unit_price and no tiers".into()),
                    };
                }
                if u.tiers.is_empty() || u.tier_mode.is_none() || u.unit_price.is_some() {
                    return Err(
                        "USAGE_TIERED needs tiers and a tier_mode, and no unit_price".into(),
                    );
                }
                let mut last = 0u64;
                for (i, tier) in u.tiers.iter().enumerate() {
                    if tier.unit_price < Decimal::ZERO {
                        return Err("tier prices must not be negative".into());
                    }
                    match tier.up_to {
                        Some(up) if up > last && i + 1 < u.tiers.len() => last = up,
                        None if i + 1 == u.tiers.len() => {}
                        _ => {
                            return Err(
                                "tiers must rise, and only the last is open-ended (up_to absent)"
                                    .into(),
                            );
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

/// A slug for a product: 1 to 63 of a-z, 0-9 and '-'.
pub fn check_slug(slug: &str) -> Result<(), String> {
    let ok = (1..=63).contains(&slug.len())
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{slug:?} must be 1 to 63 characters of a-z, 0-9 and '-'"
        ))
    }
}

/// A region code: 1 to 32 of a-z, 0-9 and '-' (e.g. `eu`, `us-east`).
pub fn check_region(region: &str) -> Result<(), String> {
    let ok = (1..=32).contains(&region.len())
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{region:?} is not a region code like eu or us-east"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn enums_are_upper_snake_both_ways() {
        assert_eq!(Category::from_str("CLOUDPOD").unwrap(), Category::CloudPod);
        assert_eq!(
            serde_json::to_string(&BillingModel::UsageTiered).unwrap(),
            "\"USAGE_TIERED\""
        );
        assert!(Period::from_str("WEEKLY").unwrap_err().contains("MONTHLY"));
    }

    #[test]
    fn usage_blocks_fit_their_model() {
        let tiered: UsagePricing = serde_json::from_value(serde_json::json!({
            "metric": "bandwidth_gb", "tier_mode": "GRADUATED",
            "tiers": [{"up_to": 100, "unit_price": "0.02"}, {"unit_price": "0.015"}]
        }))
        .unwrap();
        assert!(UsagePricing::check(Some(&tiered), BillingModel::UsageTiered).is_ok());
        assert!(UsagePricing::check(Some(&tiered), BillingModel::UsageBased).is_err());
        assert!(UsagePricing::check(None, BillingModel::UsageBased).is_err());
        assert!(UsagePricing::check(Some(&tiered), BillingModel::Recurring).is_err());
        let mut bad = tiered.clone();
        bad.tiers[1].up_to = Some(50);
        assert!(UsagePricing::check(Some(&bad), BillingModel::UsageTiered).is_err());
    }

    #[test]
    fn templates_are_tagged() {
        let t: ProvisioningTemplate = serde_json::from_value(serde_json::json!({
            "type": "HOSTING", "dns_zone": true, "mailboxes": 5
        }))
        .unwrap();
        assert_eq!(
            t,
            ProvisioningTemplate::Hosting {
                dns_zone: true,
                mailboxes: 5,
                disk_quota_mb: None,
                php_version: None,
                backup: None,
            }
        );
        assert!(
            serde_json::from_value::<ProvisioningTemplate>(serde_json::json!({"type": "VM"}))
                .is_err()
        );
    }
}
