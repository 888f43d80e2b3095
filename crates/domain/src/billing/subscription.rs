//! Subscription states, how a subscription ends, and why it is suspended.

use crate::catalog::upper_enum;

upper_enum!(
    /// Where a subscription stands.
    SubscriptionStatus {
        PendingActivation => "PENDING_ACTIVATION", Active => "ACTIVE", Suspended => "SUSPENDED",
        Cancelled => "CANCELLED", Expired => "EXPIRED",
    }
);

upper_enum!(
    /// When a cancellation takes effect: now, or at the end of the paid term.
    CancelMode { Immediate => "IMMEDIATE", EndOfTerm => "END_OF_TERM" }
);

upper_enum!(
    /// Why a subscription is suspended.
    SuspendReason { Dunning => "DUNNING", Manual => "MANUAL" }
);

impl SubscriptionStatus {
    /// The states this one may move to.
    pub fn next(self) -> &'static [SubscriptionStatus] {
        use SubscriptionStatus::*;
        match self {
            PendingActivation => &[Active, Cancelled],
            Active => &[Suspended, Cancelled, Expired],
            Suspended => &[Active, Cancelled, Expired],
            Cancelled | Expired => &[],
        }
    }

    /// `Ok` if `self → to` is allowed, else the allowed targets.
    pub fn check_transition(self, to: SubscriptionStatus) -> Result<(), Vec<&'static str>> {
        if self.next().contains(&to) {
            Ok(())
        } else {
            Err(self.next().iter().map(|s| s.as_str()).collect())
        }
    }

    /// Whether no state follows this one.
    pub fn is_terminal(self) -> bool {
        self.next().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn transitions() {
        use SubscriptionStatus::*;
        assert!(PendingActivation.check_transition(Active).is_ok());
        assert!(Active.check_transition(Suspended).is_ok());
        assert!(Suspended.check_transition(Active).is_ok());
        assert!(Suspended.check_transition(Expired).is_ok());
        assert_eq!(
            PendingActivation.check_transition(Suspended),
            Err(vec!["ACTIVE", "CANCELLED"])
        );
        assert_eq!(Cancelled.check_transition(Active), Err(vec![]));
        assert!(Active.check_transition(Active).is_err());
        let terminal: Vec<_> = SubscriptionStatus::ALL
            .iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(terminal, [&Cancelled, &Expired]);
    }

    #[test]
    fn text_forms() {
        assert_eq!(
            serde_json::to_string(&SubscriptionStatus::PendingActivation).unwrap(),
            "\"PENDING_ACTIVATION\""
        );
        assert_eq!(
            CancelMode::from_str("END_OF_TERM"),
            Ok(CancelMode::EndOfTerm)
        );
        assert_eq!(SuspendReason::Dunning.as_str(), "DUNNING");
    }
}
