//! Domain names as customers type them: IDNA-normalised to their ASCII
//! form (`Bücher.Example` → `xn--bcher-kva.example`), then checked.

/// The ASCII form of a domain name, or why it is not one.
pub fn normalise(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim().trim_end_matches('.');
    if trimmed.is_empty() {
        return Err("is empty".into());
    }
    let ascii = idna::domain_to_ascii(trimmed)
        .map_err(|_| format!("{raw:?} is not a valid domain name"))?;
    if ascii.len() > 253 {
        return Err("is longer than 253 characters".into());
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Err(format!(
            "{raw:?} needs at least a name and a top-level domain"
        ));
    }
    for label in &labels {
        let ok = (1..=63).contains(&label.len())
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!("{raw:?} has an invalid label {label:?}"));
        }
    }
    let tld = labels.last().copied().unwrap_or_default();
    if tld.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("{raw:?} is an address, not a domain name"));
    }
    Ok(ascii)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_and_checked() {
        assert_eq!(normalise("Example.COM").unwrap(), "example.com");
        assert_eq!(
            normalise(" shop.example.com. ").unwrap(),
            "shop.example.com"
        );
        assert_eq!(
            normalise("bücher.example").unwrap(),
            "xn--bcher-kva.example"
        );
        for bad in [
            "",
            "localhost",
            "-bad.com",
            "bad-.com",
            "a..b.com",
            "10.0.0.1",
            "under_score.com",
            "sp ace.com",
        ] {
            assert!(normalise(bad).is_err(), "{bad}");
        }
        assert!(normalise(&format!("{}.com", "a".repeat(64))).is_err());
    }
}
