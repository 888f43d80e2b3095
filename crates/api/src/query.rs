//! Query strings and paginated lists.
//!
//! `ApiQuery<T>` answers a bad query string with a 422 problem naming the
//! parameter. Every list takes its paging and its own filters through one
//! extractor, `Listing<F>`: `?limit=&cursor=` become a checked `Paging`, the
//! rest go to `F`, and the answer is `{items, next_cursor}`.

use axum::extract::{FromRequestParts, Query};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::Problem;
use crate::problem::codes;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Self(v))
            .map_err(|rejection| invalid_query(rejection.body_text()))
    }
}

fn invalid_query(why: impl std::fmt::Display) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        codes::INVALID_QUERY,
        format!("The query string is not valid: {why}"),
    )
}

/// The paging parameters every list takes; `Listing` reads them, this type
/// documents them (`params(PageParams, Filter)`).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// 1 to 200; default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<uuid::Uuid>)]
    pub cursor: Option<String>,
}

/// A list without filters of its own. Other parameters are ignored, as
/// they always were on these lists (clients add cache-busters such as
/// `_=1712345678`); lists with filters of their own say per type whether
/// an unknown one is refused.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NoFilter {}

/// A checked page request.
#[derive(Debug, Clone)]
pub struct Paging {
    limit: u32,
    cursor: Option<String>,
}

impl Paging {
    fn checked(params: PageParams) -> Result<Self, Problem> {
        // Every cursor is an id: one that is not a UUID is refused here,
        // even by a list that turns out empty for this caller.
        cursor::<uuid::Uuid>(params.cursor.as_deref())?;
        Ok(Self {
            limit: limit(params.limit)?,
            cursor: params.cursor,
        })
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// How many rows to fetch: one more than the page, to tell whether a
    /// next page exists.
    pub fn fetch(&self) -> u32 {
        self.limit + 1
    }

    /// The cursor as the id it names (the list continues after it), or a 422.
    pub fn after<I: std::str::FromStr>(&self) -> Result<Option<I>, Problem> {
        cursor(self.cursor.as_deref())
    }

    /// The page from the `fetch()` rows read.
    pub fn page<R, T>(
        &self,
        fetched: Vec<R>,
        cursor_of: impl Fn(&R) -> String,
        view: impl Fn(R) -> T,
    ) -> Page<T> {
        Page::from_fetched(fetched, self.limit, cursor_of, view)
    }
}

/// A list request: its paging, and its filters `F` (invoices and
/// subscriptions deny unknown fields, so a misspelt filter is a 422, not a
/// silent full list; the others ignore them, as before).
pub struct Listing<F> {
    pub paging: Paging,
    pub filter: F,
}

impl<F, S> FromRequestParts<S> for Listing<F>
where
    F: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or_default();
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(raw).map_err(invalid_query)?;
        Self::from_pairs(pairs)
    }
}

impl<F: DeserializeOwned> Listing<F> {
    /// The paging and filters of a query string's pairs.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Result<Self, Problem> {
        let (page, rest): (Vec<_>, Vec<_>) = pairs
            .into_iter()
            .partition(|(name, _)| name == "limit" || name == "cursor");
        let params: PageParams = reparse(&page)?;
        Ok(Self {
            paging: Paging::checked(params)?,
            filter: reparse(&rest)?,
        })
    }
}

fn reparse<T: DeserializeOwned>(pairs: &[(String, String)]) -> Result<T, Problem> {
    let encoded = serde_urlencoded::to_string(pairs).map_err(invalid_query)?;
    serde_urlencoded::from_str(&encoded)
        .map_err(|e| invalid_query(format_args!("Failed to deserialize query string: {e}")))
}

/// A query parameter read through the type's `FromStr` (state enums), so
/// an unknown value is refused by the extractor, before any lookup.
pub fn from_str_opt<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    Option::<String>::deserialize(d)?
        .map(|s| s.parse().map_err(serde::de::Error::custom))
        .transpose()
}

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// The page of a list that has nothing for this caller.
    pub fn empty() -> Self {
        Self {
            items: Vec::new(),
            next_cursor: None,
        }
    }

    /// A page from up to `limit + 1` fetched items: the extra one only
    /// tells that there is a next page.
    pub fn from_fetched<R>(
        mut fetched: Vec<R>,
        limit: u32,
        cursor_of: impl Fn(&R) -> String,
        view: impl Fn(R) -> T,
    ) -> Self {
        let more = fetched.len() > limit as usize;
        fetched.truncate(limit as usize);
        let next_cursor = if more {
            fetched.last().map(&cursor_of)
        } else {
            None
        };
        Self {
            items: fetched.into_iter().map(view).collect(),
            next_cursor,
        }
    }
}

/// The page size asked for, checked.
pub fn limit(asked: Option<u32>) -> Result<u32, Problem> {
    match asked {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::INVALID_QUERY,
            format!("limit must be 1 to {MAX_LIMIT}"),
        )),
    }
}

/// A cursor (an id) back to its id, or a 422.
pub fn cursor<I: std::str::FromStr>(cursor: Option<&str>) -> Result<Option<I>, Problem> {
    cursor
        .map(|c| {
            c.parse().map_err(|_| {
                Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    codes::INVALID_QUERY,
                    "cursor is not valid",
                )
            })
        })
        .transpose()
}

/// A path id, or 404: an id that cannot exist names nothing.
pub fn path_id<I: std::str::FromStr>(raw: &str, what: &str) -> Result<I, Problem> {
    raw.parse()
        .map_err(|_| Problem::not_found(format!("no such {what}")))
}
