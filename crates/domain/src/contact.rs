//! Contact details every part of mPanel accepts the same way (orders,
//! customers, users): an e-mail address a mail server will take, parsed by
//! the `email_address` crate (RFC 5321/5322) and then held to what mail
//! actually delivers to, and a country of the ISO 3166-1 list.

use email_address::{EmailAddress, Options};

use crate::orders::domain_name;

/// An e-mail address, trimmed, as given (its case is kept), or why it
/// cannot receive mail: RFC 5322's syntax, at most 64 characters before the
/// `@` and 254 in all, no quoted or non-ASCII local part (mail servers
/// without SMTPUTF8 refuse them), and a domain that is a real host name
/// with a top-level domain (IDN allowed), not an address literal.
pub fn email(raw: &str) -> Result<String, String> {
    let text = raw.trim();
    let bad = || format!("{text:?} is not an e-mail address");
    if text.chars().count() > 254 {
        return Err("is longer than 254 characters".into());
    }
    let options = Options::default()
        .without_display_text()
        .without_domain_literal();
    let parsed = EmailAddress::parse_with_options(text, options).map_err(|_| bad())?;
    let local = parsed.local_part();
    if local.len() > 64 || local.starts_with('"') || !local.is_ascii() {
        return Err(bad());
    }
    domain_name::normalise(parsed.domain()).map_err(|_| bad())?;
    Ok(text.to_owned())
}

/// An ISO 3166-1 alpha-2 country code, upper case (`DE`), or why not.
pub fn country(raw: &str) -> Result<String, String> {
    let code = raw.trim();
    if code.len() == 2
        && rust_iso3166::from_alpha2(code).is_some()
        && code == code.to_ascii_uppercase()
    {
        Ok(code.to_owned())
    } else {
        Err(format!(
            "{code:?} is not an ISO 3166-1 alpha-2 country code"
        ))
    }
}

/// Every ISO 3166-1 alpha-2 code, sorted (the API description lists them).
pub fn country_codes() -> Vec<&'static str> {
    let mut codes: Vec<&'static str> = rust_iso3166::ALL.iter().map(|c| c.alpha2).collect();
    codes.sort_unstable();
    codes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_mail_servers_take_are_accepted_as_given() {
        for good in [
            "jane@example.com",
            " Jane.Doe+billing@Example.COM ",
            "o'brien@sub.example.co.uk",
            "x@bücher.example",
            "a_b-c@example-shop.de",
        ] {
            assert_eq!(email(good).as_deref(), Ok(good.trim()), "{good}");
        }
    }

    #[test]
    fn addresses_a_mail_server_would_refuse_are_not() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long = format!("a@{}.com", "b".repeat(250));
        for bad in [
            "",
            "plain",
            "a@b",
            "a@localhost",
            "a@-bad.com",
            "a@bad-.com",
            "a@under_score.com",
            "a@10.0.0.1",
            "a@[10.0.0.1]",
            "\"quoted local\"@example.com",
            "jöhn@example.com",
            "a b@example.com",
            "a..b@example.com",
            ".a@example.com",
            "Jane <jane@example.com>",
            "a@example..com",
            "a@b.c@d.com",
            &long_local,
            &long,
        ] {
            assert!(email(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn countries_come_from_the_iso_list() {
        assert_eq!(country("DE").as_deref(), Ok("DE"));
        assert_eq!(country("GB").as_deref(), Ok("GB"));
        for bad in ["XX", "QQ", "de", "DEU", "D", "", "UK"] {
            assert!(country(bad).is_err(), "{bad:?} was accepted");
        }
        let codes = country_codes();
        assert!(codes.len() >= 249, "{}", codes.len());
        assert!(codes.contains(&"AT") && !codes.contains(&"XX"));
    }
}
