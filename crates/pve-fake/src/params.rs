//! Parameter checking as PVE's JSONSchema does it: every endpoint has
//! `additionalProperties => 0`, form booleans are `0`/`1` only (JSON
//! bodies may use `true`/`false`), integers have bounds, and all errors
//! of one request come back together in a 400 `errors` map.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::envelope::ApiError;

/// The type of one parameter.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Int {
        min: i64,
        max: i64,
    },
    Bool,
    Str,
    Enum(&'static [&'static str]),
    /// A string checked by a function returning the error text.
    Check(fn(&str) -> Result<(), String>),
}

pub const VMID: Kind = Kind::Int {
    min: 100,
    max: 999_999_999,
};

pub const ANY_INT: Kind = Kind::Int {
    min: i64::MIN,
    max: i64::MAX,
};

/// One endpoint's parameters. `extra` decides about names not in `fixed`
/// (the numbered config keys such as `net0`, `ipconfig3`).
pub struct Schema {
    pub fixed: &'static [(&'static str, Kind, bool)],
    pub extra: Option<fn(&str) -> Option<Kind>>,
}

impl Schema {
    pub const fn new(fixed: &'static [(&'static str, Kind, bool)]) -> Self {
        Self { fixed, extra: None }
    }

    fn kind(&self, name: &str) -> Option<Kind> {
        self.fixed
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, k, _)| *k)
            .or_else(|| self.extra.and_then(|f| f(name)))
    }
}

/// Checked parameters, every value in its string form (as the config
/// file holds it): booleans `0`/`1`, numbers in decimal.
#[derive(Debug, Clone, Default)]
pub struct Params(pub BTreeMap<String, String>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn flag(&self, name: &str) -> Option<bool> {
        self.get(name).map(|v| v == "1")
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(|v| v.parse().ok())
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

/// Raw values as they arrived: strings from a query or form body, JSON
/// values from a JSON body.
pub type Raw = BTreeMap<String, Value>;

pub fn check(schema: &Schema, raw: &Raw) -> Result<Params, ApiError> {
    let mut errors = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (name, value) in raw {
        let Some(kind) = schema.kind(name) else {
            errors.insert(
                name.clone(),
                "property is not defined in schema and the schema does not allow additional properties"
                    .to_owned(),
            );
            continue;
        };
        match check_value(kind, value) {
            Ok(v) => {
                out.insert(name.clone(), v);
            }
            Err(e) => {
                errors.insert(name.clone(), e);
            }
        }
    }
    for (name, _, required) in schema.fixed {
        if *required && !raw.contains_key(*name) {
            errors.insert(
                (*name).to_owned(),
                "property is missing and it is not optional".to_owned(),
            );
        }
    }
    if errors.is_empty() {
        Ok(Params(out))
    } else {
        Err(ApiError::Params(errors))
    }
}

fn check_value(kind: Kind, value: &Value) -> Result<String, String> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => {
            return match kind {
                Kind::Bool => Ok(if *b { "1" } else { "0" }.to_owned()),
                _ => Err(format!(
                    "type check ('{}') failed - got '{}'",
                    type_name(kind),
                    u8::from(*b)
                )),
            };
        }
        Value::Null => String::new(),
        Value::Array(_) | Value::Object(_) => {
            return Err(format!(
                "type check ('{}') failed - got {}",
                type_name(kind),
                if value.is_array() { "ARRAY" } else { "HASH" }
            ));
        }
    };
    match kind {
        Kind::Int { min, max } => {
            let n: i64 = text
                .parse()
                .map_err(|_| format!("type check ('integer') failed - got '{text}'"))?;
            if n < min {
                return Err(format!("value must have a minimum value of {min}"));
            }
            if n > max {
                return Err(format!("value must have a maximum value of {max}"));
            }
            Ok(n.to_string())
        }
        Kind::Bool => match text.as_str() {
            "0" | "1" => Ok(text),
            _ => Err(format!("type check ('boolean') failed - got '{text}'")),
        },
        Kind::Str => Ok(text),
        Kind::Enum(values) => {
            if values.contains(&text.as_str()) {
                Ok(text)
            } else {
                Err(format!(
                    "value '{text}' does not have a value in the enumeration '{}'",
                    values.join(", ")
                ))
            }
        }
        Kind::Check(f) => f(&text).map(|()| text),
    }
}

fn type_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Int { .. } => "integer",
        Kind::Bool => "boolean",
        _ => "string",
    }
}

/// PVE's `dns-name` format.
pub fn dns_name(v: &str) -> Result<(), String> {
    let ok = !v.is_empty()
        && v.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err("invalid format - value does not look like a valid DNS name\n".to_owned())
    }
}

/// PVE's `pve-node` format (used for `{node}` and `target`).
pub fn node_name(v: &str) -> Result<(), String> {
    let ok = v.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err("invalid format - value does not look like a valid node name\n".to_string())
    }
}

/// `urlencoded` (pve_verify_urlencoded), the format of `sshkeys`.
pub fn urlencoded(v: &str) -> Result<(), String> {
    let ok = v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-%_.!~*'()".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid format - invalid urlencoded string: {v}\n"))
    }
}

/// `pve-storage-id`.
pub fn storage_id(v: &str) -> Result<(), String> {
    let ok = v.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid format - storage ID '{v}' contains illegal characters\n"
        ))
    }
}
