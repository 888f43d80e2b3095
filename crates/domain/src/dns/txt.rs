//! Character-strings in presentation format: TXT contents and CAA values.
//!
//! Output is what PowerDNS accepts and serves back unchanged: each string in
//! double quotes, `"` and `\` escaped with a backslash, bytes outside
//! printable ASCII as `\DDD` (decimal), a TXT record's strings at most 255
//! bytes each, separated by one space.

/// The most bytes of one character-string.
const MAX_STRING: usize = 255;
/// The most bytes of text one TXT record may carry (all its strings).
pub(super) const MAX_TXT_BYTES: usize = 4096;

/// Normalises one TXT record: input in quotes (`"a" "b"`, escapes allowed)
/// is parsed; anything else is taken as the literal text. Strings longer
/// than 255 bytes are split into 255-byte chunks.
pub(super) fn normalise_txt(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim();
    let strings = if trimmed.starts_with('"') {
        parse_quoted(trimmed)?
    } else {
        vec![trimmed.as_bytes().to_vec()]
    };
    let total: usize = strings.iter().map(Vec::len).sum();
    if total == 0 {
        return Err("must not be empty".to_owned());
    }
    if total > MAX_TXT_BYTES {
        return Err(format!("is {total} bytes long; at most {MAX_TXT_BYTES}"));
    }
    let chunks: Vec<String> = strings
        .iter()
        .flat_map(|s| s.chunks(MAX_STRING))
        .map(quote)
        .collect();
    Ok(chunks.join(" "))
}

/// One character-string in double quotes, escaped.
pub(super) fn quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

/// Parses one or more quoted strings separated by white space, undoing
/// `\X` and `\DDD` escapes.
pub(super) fn parse_quoted(input: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut bytes = input.bytes().peekable();
    let mut strings = Vec::new();
    loop {
        while bytes.next_if(u8::is_ascii_whitespace).is_some() {}
        match bytes.next() {
            None => break,
            Some(b'"') => {}
            Some(_) => {
                return Err(
                    "text outside double quotes (quote every string, or none at all)".to_owned(),
                );
            }
        }
        let mut s = Vec::new();
        loop {
            match bytes.next() {
                None => return Err("a quoted string is not closed".to_owned()),
                Some(b'"') => break,
                Some(b'\\') => match bytes.next() {
                    None => return Err("a quoted string ends with a lone '\\'".to_owned()),
                    Some(d) if d.is_ascii_digit() => {
                        let mut value = u32::from(d - b'0');
                        for _ in 0..2 {
                            match bytes.next_if(u8::is_ascii_digit) {
                                Some(d) => value = value * 10 + u32::from(d - b'0'),
                                None => return Err("'\\' with a number needs 3 digits".to_owned()),
                            }
                        }
                        let byte = u8::try_from(value)
                            .map_err(|_| format!("escape \\{value:03} is over 255"))?;
                        s.push(byte);
                    }
                    Some(other) => s.push(other),
                },
                Some(b) => s.push(b),
            }
        }
        match bytes.peek() {
            None => {}
            Some(b) if b.is_ascii_whitespace() => {}
            Some(_) => return Err("quoted strings must be separated by a space".to_owned()),
        }
        strings.push(s);
    }
    Ok(strings)
}
