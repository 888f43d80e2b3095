//! Reading PVE's JSON leniently (§5 "Numbers as strings": Perl has no
//! types, so `vmid`, `size`, `disk`, `memory` … come as numbers or as
//! strings), disk sizes (`size=50G`), and percent-encoding.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};

use crate::DriverError;

/// RFC 3986 unreserved characters stay; everything else is `%XX`
/// (a space is `%20`, never `+`).
pub const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One path segment (node, storage, volume id, UPID), percent-encoded.
pub fn segment(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// A number, or a string holding one.
pub fn f64_of(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite())
}

/// A non-negative integer, or a string holding one (a fraction is cut).
pub fn u64_of(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f as u64)
        }),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<u64>().ok().or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() && *f >= 0.0)
                    .map(|f| f as u64)
            })
        }
        _ => None,
    }
}

pub fn u32_of(v: Option<&Value>) -> Option<u32> {
    u64_of(v).and_then(|n| u32::try_from(n).ok())
}

/// An integer (possibly negative), or a string holding one.
pub fn i64_of(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
}

/// A string, or a number written as one.
pub fn str_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `data` as an array, else an "unexpected answer" error naming `what`.
pub fn array<'a>(data: &'a Value, what: &str) -> Result<&'a Vec<Value>, DriverError> {
    data.as_array()
        .ok_or_else(|| unexpected(what, "a list", data))
}

/// `data` as an object, else an "unexpected answer" error naming `what`.
pub fn object<'a>(data: &'a Value, what: &str) -> Result<&'a Map<String, Value>, DriverError> {
    data.as_object()
        .ok_or_else(|| unexpected(what, "an object", data))
}

/// PVE answered 200 with data of the wrong shape: a client/server
/// mismatch retrying will not fix.
pub fn unexpected(what: &str, expected: &str, data: &Value) -> DriverError {
    let mut shown = data.to_string();
    if let Some((cut, _)) = shown.char_indices().nth(200) {
        shown.truncate(cut);
        shown.push('…');
    }
    DriverError::Permanent(format!(
        "Proxmox VE {what}: unexpected answer (expected {expected}): {shown}"
    ))
}

/// A PVE disk size in bytes: `50G`, `10240M`, `1.5T`, `512K`, or a bare
/// number of bytes (binary units, §3 resize).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_uppercase()),
        _ => (text, 'B'),
    };
    let factor: u64 = match unit {
        'B' => 1,
        'K' => 1 << 10,
        'M' => 1 << 20,
        'G' => 1 << 30,
        'T' => 1 << 40,
        _ => return None,
    };
    if let Ok(n) = number.parse::<u64>() {
        return n.checked_mul(factor);
    }
    let f = number
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite() && *f >= 0.0)?;
    Some((f * factor as f64).round() as u64)
}

/// The `size=` option of a drive property string
/// (`local-lvm:vm-105-disk-0,iothread=1,size=32G`).
pub fn drive_size(value: &str) -> Option<u64> {
    value
        .split(',')
        .find_map(|o| o.strip_prefix("size="))
        .and_then(parse_size)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{drive_size, f64_of, i64_of, parse_size, segment, u32_of, u64_of};

    #[test]
    fn numbers_may_come_as_strings() {
        assert_eq!(u64_of(Some(&json!(5))), Some(5));
        assert_eq!(u64_of(Some(&json!("5"))), Some(5));
        assert_eq!(u64_of(Some(&json!(" 7 "))), Some(7));
        assert_eq!(u64_of(Some(&json!(2.9))), Some(2));
        assert_eq!(u64_of(Some(&json!("2.9"))), Some(2));
        assert_eq!(u64_of(Some(&json!(-1))), None);
        assert_eq!(u64_of(Some(&json!(null))), None);
        assert_eq!(u64_of(None), None);
        assert_eq!(u32_of(Some(&json!("16"))), Some(16));
        assert_eq!(u32_of(Some(&json!(u64::MAX))), None);
        assert_eq!(f64_of(Some(&json!("0.25"))), Some(0.25));
        assert_eq!(f64_of(Some(&json!(1))), Some(1.0));
        assert_eq!(i64_of(Some(&json!("-3"))), Some(-3));
        assert_eq!(i64_of(Some(&json!(1767225600))), Some(1_767_225_600));
    }

    #[test]
    fn sizes_use_binary_units_and_bare_numbers_are_bytes() {
        assert_eq!(parse_size("50G"), Some(50 << 30));
        assert_eq!(parse_size("10240M"), Some(10 << 30));
        assert_eq!(parse_size("1T"), Some(1 << 40));
        assert_eq!(parse_size("512K"), Some(512 << 10));
        assert_eq!(parse_size("1.5G"), Some(3 << 29));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("5X"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(
            drive_size("local-lvm:vm-105-disk-0,iothread=1,size=32G"),
            Some(32 << 30)
        );
        assert_eq!(drive_size("local-lvm:vm-105-cloudinit,media=cdrom"), None);
    }

    #[test]
    fn path_segments_escape_everything_but_unreserved() {
        assert_eq!(
            segment("UPID:pve1:0001:00AB:65:qmstart:100:a@pve!ci:"),
            "UPID%3Apve1%3A0001%3A00AB%3A65%3Aqmstart%3A100%3Aa%40pve%21ci%3A"
        );
        assert_eq!(
            segment("local:backup/vzdump-qemu-1.vma.zst"),
            "local%3Abackup%2Fvzdump-qemu-1.vma.zst"
        );
    }
}
