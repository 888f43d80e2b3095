//! An amount typed into a form (`12.50`) in a currency's minor units,
//! with the page's error when it is not one.

use std::str::FromStr;

use axum::http::StatusCode;
use mpanel_domain::billing::money::to_minor;
use mpanel_domain::catalog::Currency;

use super::view::PageError;

/// `raw` in `currency`'s minor units: at least 1, or 0 too when
/// `zero_ok` (an empty field is then 0). `what` names the field.
pub fn minor(raw: &str, currency: Currency, what: &str, zero_ok: bool) -> Result<i64, PageError> {
    let raw = raw.trim();
    if zero_ok && raw.is_empty() {
        return Ok(0);
    }
    let least = i64::from(!zero_ok);
    rust_decimal::Decimal::from_str(raw)
        .ok()
        .and_then(|d| to_minor(d, currency))
        .filter(|m| *m >= least)
        .ok_or_else(|| {
            unprocessable(format!(
                "{what}: a {}number of {} such as 12.50.",
                if zero_ok { "" } else { "positive " },
                currency.code()
            ))
        })
}

/// The currency an invoice or price is in.
pub fn currency(code: &str) -> Result<Currency, PageError> {
    Currency::parse(code).map_err(unprocessable)
}

pub fn unprocessable(message: impl Into<String>) -> PageError {
    PageError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
}
