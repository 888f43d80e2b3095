//! A list page's query string: the API's own paging and filters (the same
//! `Listing` rules), except that a filter left empty in the form means
//! "any", and the link to the next page keeps the filters.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use mpanel_domain::provisioning::ResourceStatus;
use mpanel_domain::{CustomerId, ResourceId};
use mpanel_store::provisioning::ResourceQuery;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::view::PageError;
use crate::query::Listing;

pub struct Listed<F> {
    pub listing: Listing<F>,
    pub links: Links,
}

/// The filters as sent, for the form and the next page's link.
pub struct Links {
    pairs: Vec<(String, String)>,
    path: String,
}

impl Links {
    /// A filter's value as sent (empty when not).
    pub fn value(&self, name: &str) -> String {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// The address of the page after this one, when there is one.
    pub fn next_href(&self, next_cursor: Option<&str>) -> Option<String> {
        let cursor = next_cursor?;
        let mut pairs: Vec<(&str, &str)> = self
            .pairs
            .iter()
            .filter(|(k, _)| k != "cursor")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        pairs.push(("cursor", cursor));
        let query = serde_urlencoded::to_string(pairs).ok()?;
        Some(format!("{}?{query}", self.path))
    }
}

impl<F: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Listed<F> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let raw = parts.uri.query().unwrap_or_default();
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw).map_err(|_| {
            PageError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "The address's query string is not valid.",
            )
            .into_response()
        })?;
        let pairs: Vec<(String, String)> = pairs
            .into_iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .collect();
        let listing =
            Listing::from_pairs(pairs.clone()).map_err(|p| PageError::from(p).into_response())?;
        Ok(Self {
            listing,
            links: Links {
                pairs,
                path: parts.uri.path().to_owned(),
            },
        })
    }
}

/// `?status=…&q=…` on a list of hosting accounts or DNS zones.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ResourceFilter {
    #[serde(default, deserialize_with = "crate::query::from_str_opt")]
    status: Option<ResourceStatus>,
    /// Part of the domain or zone name.
    #[serde(default)]
    q: Option<String>,
}

impl ResourceFilter {
    /// The store's query for one page of these (a search over 200
    /// characters is refused).
    pub fn query(
        &self,
        customer: Option<CustomerId>,
        before: Option<ResourceId>,
        limit: u32,
    ) -> Result<ResourceQuery<'_>, PageError> {
        if self.q.as_ref().is_some_and(|q| q.chars().count() > 200) {
            return Err(PageError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "A search is at most 200 characters.",
            ));
        }
        Ok(ResourceQuery {
            customer,
            status: self.status,
            without: None,
            name_contains: self.q.as_deref().map(str::trim).filter(|q| !q.is_empty()),
            before,
            limit,
        })
    }
}
