//! Query strings and paginated lists.
//!
//! `ApiQuery<T>` answers a bad query string with a 422 problem naming the
//! parameter; lists take `?limit=&cursor=` and answer `{items, next_cursor}`.

use axum::extract::{FromRequestParts, Query};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

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
            .map_err(|rejection| {
                Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    codes::INVALID_QUERY,
                    format!("The query string is not valid: {}", rejection.body_text()),
                )
            })
    }
}

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
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
