//! A pod's plan (vCPUs, memory, disk) and the four seed plans a provider
//! starts from.

use rust_decimal::Decimal;

use crate::catalog::ProvisioningTemplate;

/// What a pod is sized by.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct PodPlan {
    pub name: String,
    pub vcpus: u32,
    pub memory_mb: u32,
    pub disk_gb: u32,
}

impl PodPlan {
    /// The plan a CloudPod product's template describes.
    pub fn of(template: &ProvisioningTemplate) -> Option<Self> {
        match template {
            ProvisioningTemplate::CloudPod {
                plan,
                vcpus,
                memory_mb,
                disk_gb,
            } => Some(Self {
                name: plan.clone(),
                vcpus: *vcpus,
                memory_mb: *memory_mb,
                disk_gb: *disk_gb,
            }),
            _ => None,
        }
    }

    /// Whether the pod may move to `to`: a disk only grows (Proxmox
    /// refuses to shrink one, and the data on it would not fit).
    pub fn can_move_to(&self, to: &Self) -> Result<(), String> {
        if to.disk_gb < self.disk_gb {
            return Err(format!(
                "the {} plan's disk ({} GB) is smaller than this pod's ({} GB): a disk only grows",
                to.name, to.disk_gb, self.disk_gb
            ));
        }
        Ok(())
    }
}

/// One of the plans every tenant can start its CloudPod catalog from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedPlan {
    pub code: &'static str,
    pub vcpus: u32,
    pub memory_mb: u32,
    pub disk_gb: u32,
    /// Websites and mailboxes placed on the pod; `None` is unlimited.
    pub websites: Option<u32>,
    pub mailboxes: Option<u32>,
    /// The monthly price, in major units.
    pub monthly: Decimal,
}

impl SeedPlan {
    pub fn template(&self) -> ProvisioningTemplate {
        ProvisioningTemplate::CloudPod {
            plan: self.code.to_owned(),
            vcpus: self.vcpus,
            memory_mb: self.memory_mb,
            disk_gb: self.disk_gb,
        }
    }
}

/// MINI, PRO, BUSINESS and ENTERPRISE.
pub const SEED_PLANS: [SeedPlan; 4] = [
    SeedPlan {
        code: "MINI",
        vcpus: 1,
        memory_mb: 1024,
        disk_gb: 20,
        websites: Some(5),
        mailboxes: Some(10),
        monthly: Decimal::from_parts(999, 0, 0, false, 2),
    },
    SeedPlan {
        code: "PRO",
        vcpus: 2,
        memory_mb: 2048,
        disk_gb: 50,
        websites: Some(20),
        mailboxes: Some(50),
        monthly: Decimal::from_parts(1999, 0, 0, false, 2),
    },
    SeedPlan {
        code: "BUSINESS",
        vcpus: 4,
        memory_mb: 4096,
        disk_gb: 100,
        websites: Some(50),
        mailboxes: Some(100),
        monthly: Decimal::from_parts(3999, 0, 0, false, 2),
    },
    SeedPlan {
        code: "ENTERPRISE",
        vcpus: 8,
        memory_mb: 8192,
        disk_gb: 200,
        websites: None,
        mailboxes: None,
        monthly: Decimal::from_parts(7999, 0, 0, false, 2),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_plans_are_the_issue_s() {
        let pro = SEED_PLANS[1];
        assert_eq!(
            (pro.code, pro.vcpus, pro.memory_mb, pro.disk_gb),
            ("PRO", 2, 2048, 50)
        );
        assert_eq!(pro.monthly.to_string(), "19.99");
        assert_eq!(SEED_PLANS[3].websites, None);
    }

    #[test]
    fn a_disk_only_grows() {
        let of = |s: &SeedPlan| PodPlan::of(&s.template()).unwrap_or_else(|| unreachable!());
        let (mini, pro, business) = (of(&SEED_PLANS[0]), of(&SEED_PLANS[1]), of(&SEED_PLANS[2]));
        assert!(pro.can_move_to(&business).is_ok());
        let refused = pro.can_move_to(&mini).unwrap_err();
        assert!(refused.contains("only grows"), "{refused}");
    }
}
