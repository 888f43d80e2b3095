//! Which price applies. A product's price rules are keyed by period and
//! currency, and may be narrowed to one tenant (a reseller's own price) or
//! one region. For a request, the most specific applicable rule wins:
//! tenant-specific, then region-specific, then a plain rule in the
//! requested currency, then the plain rule in the product's base currency.
//! No applicable rule is an answer in itself (never a guess, never a
//! conversion).

use serde::{Deserialize, Serialize};

use super::{Currency, Period};
use crate::{PriceId, TenantId};

/// One price rule of a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceRule {
    pub id: PriceId,
    pub period: Period,
    pub currency: Currency,
    pub amount_minor: i64,
    pub setup_fee_minor: i64,
    /// Only for this tenant.
    pub tenant: Option<TenantId>,
    /// Only for this region.
    pub region: Option<String>,
}

/// What is being priced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceRequest {
    pub period: Period,
    pub currency: Currency,
    pub region: Option<String>,
    pub tenant: Option<TenantId>,
}

/// Which kind of rule answered.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MatchedRule {
    /// The product's own price in its base currency.
    Base,
    /// A price set for the requested currency.
    Currency,
    /// A price set for the requested region.
    Region,
    /// A price set for the requesting tenant.
    Tenant,
}

/// The resolved price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved<'a> {
    pub rule: &'a PriceRule,
    pub matched: MatchedRule,
}

impl PriceRule {
    /// Whether this rule may answer `req` (every qualifier it has matches).
    pub fn applies_to(&self, req: &PriceRequest) -> bool {
        self.period == req.period
            && self.currency == req.currency
            && self.tenant.is_none_or(|t| Some(t) == req.tenant)
            && self
                .region
                .as_ref()
                .is_none_or(|r| Some(r) == req.region.as_ref())
    }

    /// How specific the rule is: a tenant beats a region beats nothing.
    fn specificity(&self) -> (bool, bool) {
        (self.tenant.is_some(), self.region.is_some())
    }

    fn matched(&self, base_currency: Currency) -> MatchedRule {
        match (self.tenant.is_some(), self.region.is_some()) {
            (true, _) => MatchedRule::Tenant,
            (false, true) => MatchedRule::Region,
            (false, false) if self.currency == base_currency => MatchedRule::Base,
            (false, false) => MatchedRule::Currency,
        }
    }
}

/// The most specific rule of `rules` that applies to `req`, if any.
pub fn resolve<'a>(
    rules: &'a [PriceRule],
    base_currency: Currency,
    req: &PriceRequest,
) -> Option<Resolved<'a>> {
    rules
        .iter()
        .filter(|r| r.applies_to(req))
        .max_by_key(|r| r.specificity())
        .map(|rule| Resolved {
            rule,
            matched: rule.matched(base_currency),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }
    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    fn rule(
        currency: Currency,
        amount: i64,
        tenant: Option<TenantId>,
        region: Option<&str>,
    ) -> PriceRule {
        PriceRule {
            id: PriceId::new(),
            period: Period::Monthly,
            currency,
            amount_minor: amount,
            setup_fee_minor: 0,
            tenant,
            region: region.map(str::to_owned),
        }
    }

    #[test]
    fn the_most_specific_rule_wins() {
        let reseller = TenantId::new();
        let other = TenantId::new();
        let rules = vec![
            rule(eur(), 1000, None, None),
            rule(usd(), 1100, None, None),
            rule(eur(), 900, None, Some("eu")),
            rule(eur(), 800, Some(reseller), None),
            rule(eur(), 700, Some(reseller), Some("eu")),
        ];
        let req = |currency, region: Option<&str>, tenant| PriceRequest {
            period: Period::Monthly,
            currency,
            region: region.map(str::to_owned),
            tenant,
        };
        let cases = [
            (req(eur(), None, None), Some((1000, MatchedRule::Base))),
            (req(usd(), None, None), Some((1100, MatchedRule::Currency))),
            (
                req(usd(), Some("eu"), None),
                Some((1100, MatchedRule::Currency)),
            ),
            (
                req(eur(), Some("eu"), None),
                Some((900, MatchedRule::Region)),
            ),
            (
                req(eur(), Some("us"), None),
                Some((1000, MatchedRule::Base)),
            ),
            (
                req(eur(), None, Some(reseller)),
                Some((800, MatchedRule::Tenant)),
            ),
            (
                req(eur(), Some("eu"), Some(reseller)),
                Some((700, MatchedRule::Tenant)),
            ),
            (
                req(eur(), Some("eu"), Some(other)),
                Some((900, MatchedRule::Region)),
            ),
            (req(Currency::parse("JPY").unwrap(), None, None), None),
        ];
        for (request, expected) in cases {
            let got = resolve(&rules, eur(), &request).map(|r| (r.rule.amount_minor, r.matched));
            assert_eq!(got, expected, "{request:?}");
        }
        let yearly = PriceRequest {
            period: Period::Yearly,
            ..req(eur(), None, None)
        };
        assert_eq!(
            resolve(&rules, eur(), &yearly),
            None,
            "no price for the period is no price"
        );
    }

    fn arb_rule(tenants: Vec<TenantId>) -> impl Strategy<Value = PriceRule> {
        (
            prop::sample::select(vec![Period::Monthly, Period::Yearly]),
            prop::sample::select(vec!["EUR", "USD", "JPY"]),
            0i64..100_000,
            prop::option::of(prop::sample::select(tenants)),
            prop::option::of(prop::sample::select(vec!["eu", "us", "apac"])),
        )
            .prop_map(|(period, currency, amount, tenant, region)| PriceRule {
                id: PriceId::new(),
                period,
                currency: Currency::parse(currency).unwrap(),
                amount_minor: amount,
                setup_fee_minor: 0,
                tenant,
                region: region.map(str::to_owned),
            })
    }

    proptest! {
        /// Random catalogs and requests: the answer is always applicable,
        /// and no applicable rule is more specific than it.
        #[test]
        fn resolution_always_picks_the_most_specific_applicable_rule(
            (rules, req) in {
                let tenants = vec![TenantId::new(), TenantId::new()];
                (
                    prop::collection::vec(arb_rule(tenants.clone()), 0..12),
                    (
                        prop::sample::select(vec![Period::Monthly, Period::Yearly]),
                        prop::sample::select(vec!["EUR", "USD", "JPY"]),
                        prop::option::of(prop::sample::select(vec!["eu", "us", "apac"])),
                        prop::option::of(prop::sample::select(tenants)),
                    ),
                )
            }
        ) {
            let (period, currency, region, tenant) = req;
            let req = PriceRequest {
                period,
                currency: Currency::parse(currency).unwrap(),
                region: region.map(str::to_owned),
                tenant,
            };
            let applicable: Vec<&PriceRule> = rules.iter().filter(|r| r.applies_to(&req)).collect();
            match resolve(&rules, Currency::parse("EUR").unwrap(), &req) {
                None => prop_assert!(applicable.is_empty()),
                Some(found) => {
                    prop_assert!(found.rule.applies_to(&req));
                    for other in applicable {
                        prop_assert!(other.specificity() <= found.rule.specificity());
                    }
                    if found.rule.tenant.is_none() {
                        prop_assert!(rules.iter().all(|r| !(r.tenant.is_some() && r.applies_to(&req))));
                    }
                }
            }
        }
    }
}
