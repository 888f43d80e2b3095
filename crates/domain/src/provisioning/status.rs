//! Where a provisioned resource stands, and where a step of a
//! subscription's provisioning stands.

use crate::catalog::upper_enum;

upper_enum!(
    /// A DNS zone, hosting account or mailbox. Made `PENDING`, `CREATING`
    /// while the node works on it, then `ACTIVE`; a hosting account (with
    /// its mailboxes) may be `SUSPENDED`. A hosting account ends
    /// `TERMINATED` (its files archived), a zone or mailbox `DELETED`.
    ResourceStatus {
        Pending => "PENDING", Creating => "CREATING", Active => "ACTIVE",
        Suspended => "SUSPENDED", Terminated => "TERMINATED", Deleted => "DELETED",
    }
);

impl ResourceStatus {
    /// Removed from its node: it holds no name and counts for no limit.
    pub fn is_gone(self) -> bool {
        matches!(self, Self::Terminated | Self::Deleted)
    }

    /// Not made on a node yet: removing it needs nothing from the node.
    pub fn is_unmade(self) -> bool {
        self == Self::Pending
    }
}

upper_enum!(
    /// One step of a subscription's provisioning: `DONE` once it made what
    /// it makes, `UNDONE` once a failure's compensation removed it again.
    StepState { Done => "DONE", Undone => "UNDONE" }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_and_write_their_stored_text() {
        for s in ResourceStatus::ALL {
            assert_eq!(s.as_str().parse::<ResourceStatus>(), Ok(*s));
        }
        assert_eq!(
            serde_json::to_string(&ResourceStatus::Terminated).unwrap(),
            "\"TERMINATED\""
        );
        assert!("GONE".parse::<ResourceStatus>().is_err());
        let gone: Vec<_> = ResourceStatus::ALL.iter().filter(|s| s.is_gone()).collect();
        assert_eq!(
            gone,
            [&ResourceStatus::Terminated, &ResourceStatus::Deleted]
        );
        assert_eq!("DONE".parse::<StepState>(), Ok(StepState::Done));
    }
}
