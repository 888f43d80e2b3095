//! Names are owned platform-wide: a domain, its `www.` alias and every name
//! under it belong to one subscription. Zones and vhosts are global on the
//! shared PowerDNS and web nodes (the more specific zone wins; nginx picks
//! one of two sites claiming a name), so a name that equals, contains or
//! sits inside a name someone else holds, in any tenant, would take over
//! part of theirs. These are the rules; the store finds the holders.

/// Refuses a name that cannot be owned: a public suffix itself (`co.uk`,
/// `github.io`: owning it would contain everyone's names under it), as the
/// Public Suffix List says. A name with an unlisted top-level domain
/// (`.test`) falls under the list's default rule: its TLD is the suffix.
pub fn check_ownable(name: &str) -> Result<(), String> {
    match psl::domain_str(name) {
        Some(_) => Ok(()),
        None => Err(format!(
            "{name} is a public suffix (anyone may register names under it); order a name under it"
        )),
    }
}

/// The names strictly above `name` that someone could hold, nearest first,
/// down to its registrable domain (`a.shop.example.co.uk` → `shop.example.co.uk`,
/// `example.co.uk`); nothing at or above the public suffix.
pub fn ancestors(name: &str) -> Vec<String> {
    let Some(registrable) = psl::domain_str(name) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut rest = name;
    while rest.len() > registrable.len() {
        match rest.split_once('.') {
            Some((_, parent)) => {
                out.push(parent.to_owned());
                rest = parent;
            }
            None => break,
        }
    }
    out
}

/// Whether holding `a` and `b` apart would let one take over the other:
/// the same name, or one inside the other (which covers `www.`: an alias
/// of its parent and inside it).
pub fn overlaps(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim_end_matches('.'), b.trim_end_matches('.'));
    a == b || is_under(a, b) || is_under(b, a)
}

/// `name` is a proper subdomain of `parent`.
fn is_under(name: &str, parent: &str) -> bool {
    name.len() > parent.len()
        && name.ends_with(parent)
        && name.as_bytes()[name.len() - parent.len() - 1] == b'.'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_suffixes_cannot_be_owned() {
        for name in ["co.uk", "github.io", "com", "test", "s3.amazonaws.com"] {
            assert!(check_ownable(name).is_err(), "{name}");
        }
        for name in [
            "example.co.uk",
            "me.github.io",
            "victim.test",
            "shop.victim.test",
        ] {
            assert_eq!(check_ownable(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn ancestors_stop_at_the_registrable_domain() {
        assert_eq!(
            ancestors("a.shop.example.co.uk"),
            vec!["shop.example.co.uk", "example.co.uk"]
        );
        assert_eq!(ancestors("shop.victim.test"), vec!["victim.test"]);
        assert!(ancestors("victim.test").is_empty());
        assert!(ancestors("co.uk").is_empty());
        // Under a private suffix, neighbours are not ancestors.
        assert!(ancestors("me.github.io").is_empty());
    }

    #[test]
    fn nested_names_and_www_overlap_siblings_do_not() {
        assert!(overlaps("victim.test", "victim.test."));
        assert!(overlaps("shop.victim.test", "victim.test"));
        assert!(overlaps("victim.test", "shop.victim.test"));
        assert!(overlaps("www.beta.test", "beta.test"));
        assert!(!overlaps("beta.test", "alpha.test"));
        assert!(
            !overlaps("evictim.test", "victim.test"),
            "a suffix of the text is not a parent"
        );
        assert!(!overlaps("a.github.io", "b.github.io"));
    }
}
