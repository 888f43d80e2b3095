//! `ApiJson<T>`: the JSON body extractor of every route. Wrong content type
//! is a 415, malformed JSON a 400 naming line and column, JSON of the wrong
//! shape a 422, a body over the limit a 413, all as problem+json.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::Problem;
use crate::problem::codes;

#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                codes::UNSUPPORTED_MEDIA_TYPE,
                "Send the body as JSON with Content-Type: application/json.",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::for_status(StatusCode::PAYLOAD_TOO_LARGE)
            } else {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    codes::UNREADABLE_BODY,
                    "The request body could not be read.",
                )
            }
        })?;
        parse(&bytes).map(ApiJson)
    }
}

fn is_json(content_type: Option<&header::HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a JSON body into `T`, or says precisely what is wrong with it.
///
/// A whole number written with a fraction (`60.0`) is that integer, as JSON
/// Schema 2020-12 (our OpenAPI 3.1 description) says; it is only tried when
/// the body as written does not fit, so an error still names the place.
/// The retry rewrites every such number in the body, free-form objects
/// included (`{"ratio": 1.0}` is kept as `1`: the same JSON number).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    refuse_nul(bytes)?;
    serde_json::from_slice(bytes).or_else(|err| {
        if err.classify() != Category::Data {
            return Err(explain(err));
        }
        let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(explain)?;
        if !integral_floats_to_integers(&mut value) {
            return Err(explain(err));
        }
        serde_json::from_value(value).map_err(|_| explain(err))
    })
}

/// No string (or key) may hold U+0000: PostgreSQL cannot store it (see
/// `middleware::nul`). Only a body spelling `\u0000` is parsed to look.
fn refuse_nul(bytes: &[u8]) -> Result<(), Problem> {
    if !bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
        return Ok(());
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        // Not JSON: the parse that follows says where.
        return Ok(());
    };
    if holds_nul(&value) {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::INVALID_BODY,
            "The JSON body does not have the expected shape: text may not contain U+0000.",
        ));
    }
    Ok(())
}

fn holds_nul(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(fields) => fields.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

/// Largest magnitude a float holds every integer up to (2^53).
const EXACT_FLOAT_INTEGERS: f64 = 9_007_199_254_740_992.0;

/// Rewrites every `n.0` number as the integer `n`; whether any was found.
fn integral_floats_to_integers(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            let Some(f) = n.as_f64() else { return false };
            if f.fract() != 0.0 || f.abs() > EXACT_FLOAT_INTEGERS {
                return false;
            }
            // Exact: a whole float within 2^53 converts without loss.
            #[allow(clippy::cast_possible_truncation)]
            let whole = f as i64;
            *value = Value::from(whole);
            true
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |any, v| integral_floats_to_integers(v) | any),
        Value::Object(fields) => fields
            .values_mut()
            .fold(false, |any, v| integral_floats_to_integers(v) | any),
        _ => false,
    }
}

fn explain(err: serde_json::Error) -> Problem {
    {
        let (status, code, what) = match err.classify() {
            Category::Data => (
                StatusCode::UNPROCESSABLE_ENTITY,
                codes::INVALID_BODY,
                "The JSON body does not have the expected shape",
            ),
            Category::Syntax | Category::Eof | Category::Io => (
                StatusCode::BAD_REQUEST,
                codes::MALFORMED_JSON,
                "The request body is not valid JSON",
            ),
        };
        Problem::new(status, code, format!("{what}: {err}."))
            .with("line", err.line())
            .with("column", err.column())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Order {
        quantity: u32,
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let problem = parse::<Order>(b"{\n  \"quantity\": 1,,\n}").unwrap_err();
        assert_eq!(problem.status, StatusCode::BAD_REQUEST);
        assert_eq!(problem.code, "malformed_json");
        assert_eq!(problem.extensions["line"], 2);
        assert_eq!(problem.extensions["column"], 17);
    }

    #[test]
    fn wrong_shape_is_unprocessable() {
        let problem = parse::<Order>(br#"{"quantity": "three"}"#).unwrap_err();
        assert_eq!(problem.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(problem.detail.contains("quantity") || problem.detail.contains("string"));
    }

    #[test]
    fn a_whole_number_with_a_fraction_is_that_integer() {
        let order = parse::<Order>(br#"{"quantity": 3.0}"#).unwrap();
        assert_eq!(order.quantity, 3);
        let problem = parse::<Order>(br#"{"quantity": 3.5}"#).unwrap_err();
        assert_eq!(problem.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem.extensions["column"], 16);
    }

    #[test]
    fn a_nul_character_in_any_string_is_refused() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Named {
            name: String,
        }
        let problem = parse::<Named>(br#"{"name": "a\u0000b"}"#).unwrap_err();
        assert_eq!(problem.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem.code, "invalid_body");
        // A backslash followed by the text u0000 is no NUL.
        assert_eq!(
            parse::<Named>(br#"{"name": "a\\u0000b"}"#).unwrap().name,
            "a\\u0000b"
        );
    }

    #[test]
    fn json_content_types() {
        let ok = |v: &'static str| is_json(Some(&header::HeaderValue::from_static(v)));
        assert!(ok("application/json"));
        assert!(ok("application/json; charset=utf-8"));
        assert!(ok("application/merge-patch+json"));
        assert!(!ok("text/plain"));
        assert!(!is_json(None));
    }
}
