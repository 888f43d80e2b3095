//! Tenants: one hosting brand each, the root of multi-tenancy.
//!
//! A new tenant is checked here, before any store sees it: a slug safe in
//! URLs and host names, a display name, an IANA time zone (billing periods
//! are anchored in it) and a default ISO 4217 currency.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What is wrong with a proposed tenant; each variant names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantRuleError {
    Slug(String),
    Name(String),
    Timezone(String),
    Currency(String),
}

impl TenantRuleError {
    /// The input field the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Slug(_) => "slug",
            Self::Name(_) => "name",
            Self::Timezone(_) => "timezone",
            Self::Currency(_) => "default_currency",
        }
    }
}

impl fmt::Display for TenantRuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Slug(m) | Self::Name(m) | Self::Timezone(m) | Self::Currency(m) => {
                write!(f, "{}: {m}", self.field())
            }
        }
    }
}

impl std::error::Error for TenantRuleError {}

/// A tenant slug: 2 to 63 characters of `a-z`, `0-9` and `-`, starting with
/// a letter and not ending with `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantSlug(String);

impl TenantSlug {
    pub fn parse(raw: &str) -> Result<Self, TenantRuleError> {
        let bad = |why: &str| Err(TenantRuleError::Slug(format!("{why} (got {raw:?})")));
        if !(2..=63).contains(&raw.len()) {
            return bad("must be 2 to 63 characters long");
        }
        if !raw.starts_with(|c: char| c.is_ascii_lowercase()) {
            return bad("must start with a lowercase letter");
        }
        if raw.ends_with('-') {
            return bad("must not end with '-'");
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return bad("may only hold a-z, 0-9 and '-'");
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantSlug {
    type Error = TenantRuleError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<TenantSlug> for String {
    fn from(slug: TenantSlug) -> Self {
        slug.0
    }
}

impl fmt::Display for TenantSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A checked request for a new tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTenant {
    pub slug: TenantSlug,
    pub name: String,
    pub timezone: String,
    pub default_currency: String,
}

impl NewTenant {
    pub fn parse(
        slug: &str,
        name: &str,
        timezone: &str,
        default_currency: &str,
    ) -> Result<Self, TenantRuleError> {
        let slug = TenantSlug::parse(slug)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(TenantRuleError::Name(
                "must be 1 to 200 characters long".into(),
            ));
        }
        if jiff::tz::TimeZone::get(timezone).is_err() {
            return Err(TenantRuleError::Timezone(format!(
                "{timezone:?} is not an IANA time zone name (e.g. Europe/Berlin, UTC)"
            )));
        }
        if crate::catalog::Currency::parse(default_currency).is_err() {
            return Err(TenantRuleError::Currency(format!(
                "{default_currency:?} is not an ISO 4217 currency code (e.g. EUR)"
            )));
        }
        Ok(Self {
            slug,
            name: name.to_owned(),
            timezone: timezone.to_owned(),
            default_currency: default_currency.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_url_and_hostname_safe() {
        for good in ["default", "acme-hosting", "h2", "a1-b2"] {
            assert!(TenantSlug::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a",
            "Acme",
            "1acme",
            "acme-",
            "ac me",
            "acmé",
            &"a".repeat(64),
        ] {
            assert!(TenantSlug::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_new_tenant_names_the_field_it_fails_on() {
        let ok = NewTenant::parse("acme", " Acme Hosting ", "Europe/Berlin", "EUR").unwrap();
        assert_eq!(ok.name, "Acme Hosting");
        let field = |r: Result<NewTenant, TenantRuleError>| r.unwrap_err().field();
        assert_eq!(field(NewTenant::parse("A", "x", "UTC", "EUR")), "slug");
        assert_eq!(field(NewTenant::parse("acme", "  ", "UTC", "EUR")), "name");
        assert_eq!(
            field(NewTenant::parse("acme", "x", "Mars/Olympus", "EUR")),
            "timezone"
        );
        assert_eq!(
            field(NewTenant::parse("acme", "x", "UTC", "eur")),
            "default_currency"
        );
    }
}

/// Whether a tenant trades: a SUSPENDED tenant's users cannot sign in, and
/// its public catalog and order webhook refuse (its data stays).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TenantStatus {
    Active,
    Suspended,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Suspended => "SUSPENDED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ACTIVE" => Some(Self::Active),
            "SUSPENDED" => Some(Self::Suspended),
            _ => None,
        }
    }
}
