//! Invoices and credit notes as PDF, written by hand: PDF 1.4, A4 pages, the
//! standard Helvetica fonts in WinAnsi encoding, no crates. The caller formats
//! every amount, date and rate; this module only places the text.

mod fonts;
mod layout;
mod writer;

/// The seller or the customer as printed in the document's head.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Party {
    pub name: String,
    /// Company, address lines, country, "VAT ID: …", e-mail.
    pub lines: Vec<String>,
}

/// One row of the lines table, every column preformatted by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Line {
    pub description: String,
    pub quantity: String,
    pub unit_price: String,
    pub tax_rate: String,
    pub amount: String,
}

/// One row of the tax summary: the rate's label, its net base and its tax.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaxRow {
    pub label: String,
    pub net: String,
    pub tax: String,
}

/// Everything an invoice or credit note shows, as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    /// "Invoice" or "Credit note".
    pub title: String,
    /// "INV-2026-000001".
    pub number: String,
    pub seller: Party,
    pub customer: Party,
    /// ("Issued", "2026-11-21"), ("Due", "2026-12-05").
    pub dates: Vec<(String, String)>,
    pub lines: Vec<Line>,
    pub tax_summary: Vec<TaxRow>,
    /// ("Subtotal", "100.00 EUR"), …, ("Amount due", …); the last is printed bold.
    pub totals: Vec<(String, String)>,
    /// "PAID", "ISSUED", ….
    pub status: String,
    /// Printed last, each wrapped to the page width (e.g. a reverse-charge note).
    pub notes: Vec<String>,
}

/// The document as a complete PDF file. Characters WinAnsi cannot show print as `?`.
pub fn render(doc: &Document) -> Vec<u8> {
    let pages = layout::pages(doc);
    writer::assemble(&pages, &format!("{} {}", doc.title, doc.number))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::process::Command;

    fn s(text: &str) -> String {
        text.to_owned()
    }

    fn line(description: &str, amount: &str) -> Line {
        Line {
            description: s(description),
            quantity: s("1"),
            unit_price: s(amount),
            tax_rate: s("19 %"),
            amount: s(amount),
        }
    }

    fn invoice(lines: Vec<Line>) -> Document {
        Document {
            title: s("Invoice"),
            number: s("INV-2026-000001"),
            seller: Party {
                name: s("mPanel Hosting GmbH"),
                lines: vec![
                    s("Hauptstraße 1"),
                    s("10115 Berlin"),
                    s("Germany"),
                    s("VAT ID: DE123456789"),
                ],
            },
            customer: Party {
                name: s("Jörg Müller (Example) Ltd"),
                lines: vec![
                    s("1 Main Street"),
                    s("Dublin"),
                    s("Ireland"),
                    s("VAT ID: IE1234567T"),
                    s("billing@example.com"),
                ],
            },
            dates: vec![(s("Issued"), s("2026-11-21")), (s("Due"), s("2026-12-05"))],
            lines,
            tax_summary: vec![TaxRow {
                label: s("VAT 19 %"),
                net: s("100.00 EUR"),
                tax: s("19.00 EUR"),
            }],
            totals: vec![
                (s("Subtotal"), s("100.00 EUR")),
                (s("Tax"), s("19.00 EUR")),
                (s("Total"), s("119.00 EUR")),
                (s("Paid"), s("0.00 EUR")),
                (s("Amount due"), s("119.00 EUR")),
            ],
            status: s("ISSUED"),
            notes: vec![s(
                "Reverse charge: VAT to be accounted for by the recipient (Art. 196 Directive 2006/112/EC). \
                   Please pay 119,00 € to the account below; Grüße from Berlin. This note is long enough that \
                   it has to wrap onto a second line of the page, and maybe a third one too.",
            )],
        }
    }

    fn sample() -> Document {
        invoice(vec![
            line("Web hosting Pro (monthly)", "60.00 EUR"),
            line("Domain example.com – 1 year", "25.00 EUR"),
            line("SSL certificate (wildcard) \\ backslash", "15.00 EUR"),
            line(
                "A very long description that certainly does not fit into the description column \
                 of the table, not on one line, not on two, and not even on three lines of it, so the \
                 rest of it has to be cut off with an ellipsis at the end of the third line",
                "0.00 EUR",
            ),
        ])
    }

    /// Text `pdftotext -layout` extracts from `pdf`; `None` only when it is
    /// missing and `MPANEL_SKIP_PDFTOTEXT` is set.
    fn extract(pdf: &[u8], name: &str) -> Option<String> {
        let path =
            std::env::temp_dir().join(format!("mpanel-pdf-{}-{name}.pdf", std::process::id()));
        std::fs::write(&path, pdf).unwrap();
        let output = Command::new("pdftotext")
            .arg("-layout")
            .arg(&path)
            .arg("-")
            .output();
        let _ = std::fs::remove_file(&path);
        let output = match output {
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && std::env::var_os("MPANEL_SKIP_PDFTOTEXT").is_some() =>
            {
                return None;
            }
            other => other.expect(
                "pdftotext (poppler-utils) must be installed; set MPANEL_SKIP_PDFTOTEXT to skip",
            ),
        };
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stderr.is_empty(),
            "pdftotext complained: {stderr}"
        );
        Some(String::from_utf8(output.stdout).unwrap())
    }

    /// Some extracted line shows `left` and, after it, `right`.
    fn on_one_line(text: &str, left: &str, right: &str) -> bool {
        text.lines().any(|l| {
            l.find(left)
                .is_some_and(|at| l[at + left.len()..].contains(right))
        })
    }

    #[test]
    fn the_file_is_well_formed_pdf_with_exact_xref_offsets() {
        check_structure(&render(&sample()));
        check_structure(&render(&Document::default()));
    }

    fn check_structure(pdf: &[u8]) {
        assert!(pdf.starts_with(b"%PDF-1.4\n"));
        assert!(pdf.trim_ascii_end().ends_with(b"%%EOF"));
        assert!(pdf.is_ascii(), "the file is 7-bit clean");
        let text = std::str::from_utf8(pdf).unwrap();

        let startxref: usize = text
            .rsplit("startxref\n")
            .next()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(text[startxref..].starts_with("xref\n0 "));
        let mut table = text[startxref..].lines().skip(1);
        let count: usize = table
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        assert!(text.contains(&format!("/Size {count} ")));
        assert_eq!(table.next().unwrap(), "0000000000 65535 f ");
        for number in 1..count {
            let entry = table.next().unwrap();
            assert_eq!(entry.len(), 19, "entries are 20 bytes with their newline");
            assert!(entry.ends_with(" 00000 n "));
            let offset: usize = entry[..10].parse().unwrap();
            assert!(
                text[offset..].starts_with(&format!("{number} 0 obj\n")),
                "object {number} at {offset}"
            );
        }
        assert_eq!(table.next().unwrap(), "trailer");

        for stream in text.split("/Length ").skip(1) {
            let length: usize = stream.split(' ').next().unwrap().parse().unwrap();
            let data = &stream[stream.find("stream\n").unwrap() + "stream\n".len()..];
            assert!(
                data[length..].starts_with("\nendstream"),
                "stream length is exact"
            );
        }
    }

    #[test]
    fn pdftotext_reads_every_field_back() {
        let doc = sample();
        let Some(text) = extract(&render(&doc), "fields") else {
            return;
        };
        assert!(
            text.contains("Invoice") && text.contains("INV-2026-000001"),
            "{text}"
        );
        assert!(
            text.contains("mPanel Hosting GmbH") && text.contains("Hauptstraße 1"),
            "{text}"
        );
        assert!(
            text.contains("Jörg Müller (Example) Ltd") && text.contains("VAT ID: IE1234567T"),
            "{text}"
        );
        assert!(on_one_line(&text, "Due", "2026-12-05"), "{text}");
        assert!(on_one_line(&text, "Description", "Amount"), "{text}");
        for l in &doc.lines[..3] {
            assert!(
                on_one_line(&text, &l.description, &l.amount),
                "{} missing in:\n{text}",
                l.description
            );
        }
        assert!(
            on_one_line(&text, "A very long description", "0.00 EUR"),
            "{text}"
        );
        assert!(
            text.contains("…") && !text.contains("end of the third line"),
            "long descriptions are cut: {text}"
        );
        assert!(on_one_line(&text, "VAT 19 %", "19.00 EUR"), "{text}");
        for (label, value) in &doc.totals {
            assert!(
                on_one_line(&text, label, value),
                "{label} {value} missing in:\n{text}"
            );
        }
        assert!(text.contains("ISSUED"), "{text}");
        assert!(
            text.contains("Please pay 119,00 € to the") && text.contains("Grüße from Berlin."),
            "{text}"
        );
        assert!(text.contains("Page 1 of 1"), "{text}");
    }

    #[test]
    fn many_lines_flow_onto_further_pages_with_the_header_repeated() {
        let lines = (1..=120)
            .map(|i| line(&format!("Service item number {i}"), &format!("{i}.00 EUR")))
            .collect();
        let pdf = render(&invoice(lines));
        let pages = std::str::from_utf8(&pdf)
            .unwrap()
            .matches("/Type /Page ")
            .count();
        assert!(pages >= 3, "{pages} pages");
        let Some(text) = extract(&pdf, "pages") else {
            return;
        };
        assert!(
            on_one_line(&text, "Service item number 120", "120.00 EUR"),
            "{text}"
        );
        assert!(
            on_one_line(&text, "Service item number 1 ", "1.00 EUR"),
            "{text}"
        );
        assert!(text.contains("Page 3 of"), "{text}");
        assert!(text.contains(&format!("Page {pages} of {pages}")), "{text}");
        assert_eq!(
            text.matches("Unit price").count(),
            pages,
            "the table header opens every page"
        );
        assert!(on_one_line(&text, "Amount due", "119.00 EUR"), "{text}");
    }

    #[test]
    fn text_is_mapped_to_winansi_and_escaped() {
        assert_eq!(
            fonts::encode("€ü–—‘’“”•…é中"),
            [
                0x80, 0xFC, 0x96, 0x97, 0x91, 0x92, 0x93, 0x94, 0x95, 0x85, 0xE9, b'?'
            ]
        );
        assert_eq!(
            writer::literal(b"a(b)c\\d\x80\xfc"),
            "(a\\(b\\)c\\\\d\\200\\374)"
        );
    }

    #[test]
    fn wrapping_keeps_lines_inside_the_width() {
        let text = fonts::encode(
            "Lorem ipsum dolor sit amet, consectetur adipiscing elit Supercalifragilisticexpialidocious",
        );
        let lines = fonts::wrap(&text, fonts::Font::Regular, 9.0, 60.0);
        assert!(lines.len() > 3);
        assert!(
            lines
                .iter()
                .all(|l| fonts::width(l, fonts::Font::Regular, 9.0) <= 60.0)
        );
        let cut = fonts::truncate(&text, fonts::Font::Bold, 9.0, 60.0);
        assert_eq!(cut.last(), Some(&fonts::ELLIPSIS));
        assert!(fonts::width(&cut, fonts::Font::Bold, 9.0) <= 60.0);
    }
}
