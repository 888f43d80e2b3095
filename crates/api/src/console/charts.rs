//! Charts drawn on the server as SVG (no script, nothing to download):
//! bar charts over days or categories, and a meter for a share. Every
//! chart carries a text alternative naming its figures.

use std::fmt::Write as _;

/// One bar: its label and value.
pub struct Bar {
    pub label: String,
    pub value: i64,
    /// The value as read out (`12.00 EUR`, `3 orders`).
    pub text: String,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A bar chart; `class` picks the bars' colour (`bar`, `bar alt`).
pub fn bars(title: &str, bars: &[Bar], class: &str) -> String {
    const W: i64 = 600;
    const H: i64 = 180;
    const BASE: i64 = 150;
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1);
    let n = i64::try_from(bars.len()).unwrap_or(1).max(1);
    let slot = W / n;
    let width = (slot * 7 / 10).max(2);
    let summary: Vec<String> = bars
        .iter()
        .map(|b| format!("{}: {}", b.label, b.text))
        .collect();
    let mut svg = format!(
        "<svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\"><title>{}</title>\
         <line class=\"axis\" x1=\"0\" y1=\"{BASE}\" x2=\"{W}\" y2=\"{BASE}\"/>",
        escape(&format!("{title}. {}", summary.join("; "))),
        escape(title),
    );
    let every = (n / 7).max(1);
    for (i, b) in (0_i64..).zip(bars) {
        let h = (b.value.max(0) * (BASE - 10)) / max;
        let x = i * slot + (slot - width) / 2;
        let _ = write!(
            svg,
            "<rect class=\"{}\" x=\"{x}\" y=\"{}\" width=\"{width}\" height=\"{h}\" rx=\"2\"><title>{}: {}</title></rect>",
            escape(class),
            BASE - h,
            escape(&b.label),
            escape(&b.text)
        );
        if i % every == 0 {
            let _ = write!(
                svg,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                x + width / 2,
                BASE + 16,
                escape(&b.label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// A horizontal meter filled to `percent` (0–100).
pub fn meter(label: &str, percent: f64) -> String {
    let p = percent.clamp(0.0, 100.0);
    format!(
        "<svg viewBox=\"0 0 100 10\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"{}: {p:.0}%\">\
         <rect x=\"0\" y=\"0\" width=\"100\" height=\"10\" fill=\"#e7eaf1\"/>\
         <rect x=\"0\" y=\"0\" width=\"{p:.1}\" height=\"10\" fill=\"#17a06b\"/></svg>",
        escape(label)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_names_its_figures_and_escapes_labels() {
        let svg = bars(
            "Orders",
            &[
                Bar {
                    label: "<b>".into(),
                    value: 3,
                    text: "3 orders".into(),
                },
                Bar {
                    label: "d2".into(),
                    value: 0,
                    text: "0 orders".into(),
                },
            ],
            "bar",
        );
        assert!(svg.contains("aria-label=\"Orders. &lt;b&gt;: 3 orders; d2: 0 orders\""));
        assert!(!svg.contains("<b>"));
        assert_eq!(svg.matches("<rect").count(), 2);
    }
}
