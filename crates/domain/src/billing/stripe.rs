//! Stripe's rules, pure: how an amount in our minor units becomes the
//! `amount` Stripe expects, the currency code it expects, the shape of a
//! webhook event, and the check of a webhook's `Stripe-Signature`.
//!
//! Amounts (<https://docs.stripe.com/currencies>, "Minor units in API
//! amounts" and "Special cases"):
//! - zero-decimal currencies take whole units: JPY 500 is `500`;
//! - three-decimal currencies (BHD, JOD, KWD, OMR, TND) take thousandths,
//!   but the last digit must be 0: KWD 1.230 is `1230`, KWD 1.234 is refused;
//! - every other currency takes hundredths, even where ISO 4217 says
//!   otherwise: ISK has no minor unit in ISO but is two-decimal in Stripe's
//!   API (ISK 5 is `500`, and fractions of a króna are refused); HUF and TWD
//!   are two-decimal for charges (only their payouts are whole units).
//!
//! Our amounts are in ISO minor units ([`Currency::exponent`]); where the
//! two differ the amount is rescaled, and one that would lose precision on
//! the way is an error rather than a silent rounding.

use serde::Deserialize;

use crate::catalog::currency::Currency;
use crate::orders::signature::{self, SignatureError};

/// Stripe's zero-decimal currencies.
const ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];

/// Stripe's three-decimal currencies; the last digit must be 0.
const THREE_DECIMAL: &[&str] = &["BHD", "JOD", "KWD", "OMR", "TND"];

/// Digits after the decimal point in Stripe's `amount` for `c`.
pub fn stripe_exponent(c: Currency) -> u8 {
    if ZERO_DECIMAL.contains(&c.code()) {
        0
    } else if THREE_DECIMAL.contains(&c.code()) {
        3
    } else {
        2
    }
}

/// Stripe's `amount` for `minor` ISO minor units of `currency`.
pub fn stripe_amount(minor: i64, currency: Currency) -> Result<i64, String> {
    let ours = u32::from(currency.exponent());
    let theirs = u32::from(stripe_exponent(currency));
    let amount = if theirs >= ours {
        10i64
            .checked_pow(theirs - ours)
            .and_then(|f| minor.checked_mul(f))
            .ok_or_else(|| format!("{minor} {currency} is too large for Stripe"))?
    } else {
        let f = 10i64
            .checked_pow(ours - theirs)
            .ok_or_else(|| format!("{currency} has too many minor units for Stripe"))?;
        if minor % f != 0 {
            return Err(format!(
                "{minor} minor units of {currency} cannot be expressed in Stripe's {theirs}-decimal amounts"
            ));
        }
        minor / f
    };
    if theirs == 3 && amount % 10 != 0 {
        return Err(format!(
            "Stripe requires {currency} amounts to end in 0 (a multiple of 0.010), got {amount}"
        ));
    }
    Ok(amount)
}

/// The currency as Stripe spells it: the ISO code in lower case.
pub fn stripe_currency(c: Currency) -> String {
    c.code().to_ascii_lowercase()
}

/// A webhook event, as Stripe posts it. Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StripeEvent {
    /// `evt_…`: events arrive more than once, so store this with a unique index.
    pub id: String,
    /// `payment_intent.succeeded`, `charge.refunded`, …
    #[serde(rename = "type")]
    pub type_: String,
    /// Unix seconds; events arrive out of order, so compare this, not arrival.
    pub created: i64,
    pub data: EventData,
    pub livemode: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EventData {
    /// The object the event is about (a PaymentIntent, a Charge, …).
    pub object: serde_json::Value,
}

/// Checks a `Stripe-Signature` header (`t=…,v1=…[,v1=…]`) against the raw
/// body with the endpoint's secret (`whsec_…`, its bytes used as the key) at
/// `now_unix`: any `v1` may match, compared in constant time, and `t` must
/// be within 300 s of now either way.
pub fn verify_signature(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SignatureError> {
    signature::verify(&[secret.to_owned()], header, body, now_unix)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cur(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    #[test]
    fn amounts_follow_stripes_decimal_rules() {
        assert_eq!(stripe_amount(500, cur("JPY")), Ok(500));
        assert_eq!(stripe_amount(1234, cur("EUR")), Ok(1234));
        assert_eq!(stripe_amount(1230, cur("KWD")), Ok(1230));
        assert!(stripe_amount(1234, cur("KWD")).is_err());
        assert_eq!(stripe_amount(5000, cur("BHD")), Ok(5000));
        assert!(stripe_amount(5001, cur("OMR")).is_err());
        assert_eq!(stripe_amount(0, cur("TND")), Ok(0));
        // HUF and TWD: two-decimal for charges in Stripe, as in ISO.
        assert_eq!(stripe_amount(1234, cur("HUF")), Ok(1234));
        assert_eq!(stripe_amount(99_900, cur("TWD")), Ok(99_900));
        // ISK: no minor unit in ISO, two-decimal (whole krónur) in Stripe.
        assert_eq!(stripe_amount(5, cur("ISK")), Ok(500));
        // UGX, KRW, CLP: zero-decimal in both.
        assert_eq!(stripe_amount(3_700, cur("UGX")), Ok(3_700));
        assert_eq!(stripe_amount(10_000, cur("KRW")), Ok(10_000));
    }

    #[test]
    fn rescaling_never_loses_precision_silently() {
        // MGA: two decimals in ISO, zero-decimal in Stripe.
        assert_eq!(stripe_amount(123_400, cur("MGA")), Ok(1_234));
        assert!(stripe_amount(123_450, cur("MGA")).is_err());
        // IQD: three decimals in ISO, not in Stripe's three-decimal list.
        assert_eq!(stripe_amount(12_340, cur("IQD")), Ok(1_234));
        assert!(stripe_amount(12_345, cur("IQD")).is_err());
        // Overflow is an error, not a wrap.
        assert!(stripe_amount(i64::MAX, cur("ISK")).is_err());
        assert_eq!(stripe_amount(-500, cur("ISK")), Ok(-50_000));
    }

    #[test]
    fn currencies_are_lower_case_iso_codes() {
        assert_eq!(stripe_currency(cur("EUR")), "eur");
        assert_eq!(stripe_currency(cur("JPY")), "jpy");
        assert_eq!(stripe_exponent(cur("JPY")), 0);
        assert_eq!(stripe_exponent(cur("KWD")), 3);
        assert_eq!(stripe_exponent(cur("ISK")), 2);
    }

    #[test]
    fn events_parse_and_ignore_unknown_fields() {
        let body = r#"{
            "id": "evt_1", "object": "event", "api_version": "2024-06-20",
            "type": "payment_intent.succeeded", "created": 1700000000,
            "data": {"object": {"id": "pi_1", "object": "payment_intent", "amount": 1234}},
            "livemode": false, "pending_webhooks": 1,
            "request": {"id": null, "idempotency_key": null}
        }"#;
        let e: StripeEvent = serde_json::from_str(body).unwrap();
        assert_eq!(e.id, "evt_1");
        assert_eq!(e.type_, "payment_intent.succeeded");
        assert_eq!(e.created, 1_700_000_000);
        assert_eq!(e.data.object["id"], "pi_1");
        assert!(!e.livemode);
    }

    // A vector computed independently of our code:
    //   python3 -c 'import hmac,hashlib;
    //     print(hmac.new(b"whsec_test_secret", b"1700000000.{\"id\":\"evt_1\"}",
    //                    hashlib.sha256).hexdigest())'
    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1"}"#;
    const T: i64 = 1_700_000_000;
    const V1: &str = "248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a";

    fn header(v1s: &[&str]) -> String {
        let mut h = format!("t={T}");
        for v in v1s {
            h.push_str(",v1=");
            h.push_str(v);
        }
        h
    }

    #[test]
    fn a_known_signature_verifies() {
        assert_eq!(
            verify_signature(SECRET, Some(&header(&[V1])), BODY, T),
            Ok(())
        );
        assert_eq!(
            verify_signature("whsec_other", Some(&header(&[V1])), BODY, T),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(SECRET, Some(&header(&[V1])), br#"{"id":"evt_2"}"#, T),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn the_timestamp_must_be_within_300_seconds_either_way() {
        let h = header(&[V1]);
        assert_eq!(verify_signature(SECRET, Some(&h), BODY, T + 300), Ok(()));
        assert_eq!(verify_signature(SECRET, Some(&h), BODY, T - 300), Ok(()));
        assert_eq!(
            verify_signature(SECRET, Some(&h), BODY, T + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_signature(SECRET, Some(&h), BODY, T - 301),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn any_of_several_v1_signatures_may_match() {
        let other = "0".repeat(64);
        for h in [header(&[&other, V1]), header(&[V1, &other])] {
            assert_eq!(verify_signature(SECRET, Some(&h), BODY, T), Ok(()));
        }
        // Stripe also sends a v0 (test-mode) signature; it is ignored.
        let with_v0 = format!("{},v0={other}", header(&[V1]));
        assert_eq!(verify_signature(SECRET, Some(&with_v0), BODY, T), Ok(()));
        assert_eq!(
            verify_signature(SECRET, Some(&header(&[&other])), BODY, T),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(SECRET, None, BODY, T),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(SECRET, Some(&format!("t={T}")), BODY, T),
            Err(SignatureError::Malformed)
        );
    }
}
