//! Where everything goes on the A4 pages: the blocks of a document, the lines
//! table flowing over as many pages as it needs, and the page footers.

use super::Document;
use super::fonts::{self, Font};
use super::writer::literal;

const LEFT: f32 = 50.0;
const RIGHT: f32 = 545.0;
const TOP: f32 = 792.0;
/// Content stays above this; the footer goes below it.
const BOTTOM: f32 = 62.0;
const FOOTER_Y: f32 = 36.0;

// The lines table: the description column and the right edges of the others.
const DESC_X: f32 = LEFT + 4.0;
const DESC_W: f32 = 230.0;
const QTY_R: f32 = 330.0;
const UNIT_R: f32 = 410.0;
const TAX_R: f32 = 465.0;
const AMOUNT_R: f32 = RIGHT - 4.0;
const MAX_DESC_LINES: usize = 3;
const ROW_LEADING: f32 = 11.0;

/// A font, a size and a grey level (0 black, 1 white).
#[derive(Clone, Copy)]
struct Style(Font, f32, f32);

const BODY: Style = Style(Font::Regular, 9.0, 0.0);
const STRONG: Style = Style(Font::Bold, 9.0, 0.0);
const LABEL: Style = Style(Font::Regular, 8.0, 0.4);

/// The content streams of the document's pages, footers included.
pub(super) fn pages(doc: &Document) -> Vec<String> {
    let continued = fonts::encode(&format!("{} {} (continued)", doc.title, doc.number));
    let mut canvas = Canvas {
        done: Vec::new(),
        ops: String::new(),
        y: TOP,
        continued,
    };
    canvas.head(doc);
    canvas.table(doc);
    canvas.tax_summary(doc);
    canvas.totals(doc);
    canvas.status_and_notes(doc);
    canvas.finish(&fonts::encode(&format!("{} {}", doc.title, doc.number)))
}

struct Canvas {
    done: Vec<String>,
    ops: String,
    /// Baseline cursor: the top of the space still free on the current page.
    y: f32,
    continued: Vec<u8>,
}

impl Canvas {
    fn text(&mut self, x: f32, y: f32, Style(font, size, gray): Style, bytes: &[u8]) {
        self.ops.push_str(&format!(
            "{gray:.2} g BT /{} {size:.1} Tf {x:.2} {y:.2} Td {} Tj ET\n",
            font.resource(),
            literal(bytes)
        ));
    }

    fn text_right(&mut self, right: f32, y: f32, style: Style, bytes: &[u8]) {
        let x = right - fonts::width(bytes, style.0, style.1);
        self.text(x, y, style, bytes);
    }

    /// `text` cut with an ellipsis to fit `max` points.
    fn text_fit(&mut self, x: f32, y: f32, style: Style, text: &str, max: f32) {
        let bytes = fonts::truncate(&fonts::encode(text), style.0, style.1, max);
        self.text(x, y, style, &bytes);
    }

    fn rule(&mut self, from: f32, to: f32, y: f32, gray: f32) {
        self.ops.push_str(&format!(
            "{gray:.2} G 0.5 w {from:.2} {y:.2} m {to:.2} {y:.2} l S\n"
        ));
    }

    fn band(&mut self, y: f32, height: f32, gray: f32) {
        self.ops.push_str(&format!(
            "{gray:.2} g {LEFT:.2} {y:.2} {:.2} {height:.2} re f\n",
            RIGHT - LEFT
        ));
    }

    /// Starts a new page unless `height` points still fit; true if it did.
    fn ensure(&mut self, height: f32) -> bool {
        if self.y - height >= BOTTOM {
            return false;
        }
        self.done.push(std::mem::take(&mut self.ops));
        let continued = std::mem::take(&mut self.continued);
        self.text(LEFT, TOP - 10.0, Style(Font::Bold, 10.0, 0.0), &continued);
        self.continued = continued;
        self.y = TOP - 30.0;
        true
    }

    /// Seller top left, title, number and dates top right, then the customer.
    fn head(&mut self, doc: &Document) {
        let title = fonts::encode(&doc.title);
        self.text_right(RIGHT, TOP - 16.0, Style(Font::Bold, 20.0, 0.0), &title);
        self.text_right(
            RIGHT,
            TOP - 34.0,
            Style(Font::Bold, 11.0, 0.0),
            &fonts::encode(&doc.number),
        );
        let mut right_y = TOP - 52.0;
        for (label, value) in &doc.dates {
            self.text(RIGHT - 165.0, right_y, LABEL, &fonts::encode(label));
            let value = fonts::truncate(&fonts::encode(value), Font::Regular, 9.0, 105.0);
            self.text_right(RIGHT, right_y, BODY, &value);
            right_y -= 13.0;
        }

        self.y = TOP - 10.0;
        self.text_fit(
            LEFT,
            self.y,
            Style(Font::Bold, 12.0, 0.0),
            &doc.seller.name,
            300.0,
        );
        self.y -= 15.0;
        for line in &doc.seller.lines {
            self.ensure(12.0);
            self.text_fit(LEFT, self.y, BODY, line, 300.0);
            self.y -= 12.0;
        }
        self.y = self.y.min(right_y) - 16.0;

        self.ensure(40.0);
        self.text(LEFT, self.y, LABEL, b"Bill to");
        self.y -= 14.0;
        self.text_fit(
            LEFT,
            self.y,
            Style(Font::Bold, 10.0, 0.0),
            &doc.customer.name,
            RIGHT - LEFT,
        );
        self.y -= 13.0;
        for line in &doc.customer.lines {
            self.ensure(12.0);
            self.text_fit(LEFT, self.y, BODY, line, RIGHT - LEFT);
            self.y -= 12.0;
        }
        self.y -= 14.0;
    }

    fn table_header(&mut self) {
        self.band(self.y - 18.0, 18.0, 0.92);
        let base = self.y - 12.0;
        self.text(DESC_X, base, STRONG, b"Description");
        self.text_right(QTY_R, base, STRONG, b"Qty");
        self.text_right(UNIT_R, base, STRONG, b"Unit price");
        self.text_right(TAX_R, base, STRONG, b"Tax");
        self.text_right(AMOUNT_R, base, STRONG, b"Amount");
        self.y -= 18.0;
    }

    fn table(&mut self, doc: &Document) {
        self.ensure(18.0 + ROW_LEADING + 7.0);
        self.table_header();
        for line in &doc.lines {
            let desc = description_lines(&line.description);
            let height = desc.len() as f32 * ROW_LEADING + 7.0;
            if self.ensure(height) {
                self.table_header();
            }
            let base = self.y - 12.0;
            for (i, text) in desc.iter().enumerate() {
                self.text(DESC_X, base - i as f32 * ROW_LEADING, BODY, text);
            }
            for (right, value) in [
                (QTY_R, &line.quantity),
                (UNIT_R, &line.unit_price),
                (TAX_R, &line.tax_rate),
                (AMOUNT_R, &line.amount),
            ] {
                self.text_right(right, base, BODY, &fonts::encode(value));
            }
            self.y -= height;
            self.rule(LEFT, RIGHT, self.y, 0.85);
        }
        self.y -= 14.0;
    }

    fn tax_summary(&mut self, doc: &Document) {
        if doc.tax_summary.is_empty() {
            return;
        }
        const LABEL_X: f32 = 300.0;
        self.ensure(30.0);
        let base = self.y - 10.0;
        self.text(LABEL_X, base, STRONG, b"Tax summary");
        self.text_right(TAX_R, base, STRONG, b"Net");
        self.text_right(AMOUNT_R, base, STRONG, b"Tax");
        self.y -= 14.0;
        self.rule(LABEL_X, RIGHT, self.y, 0.6);
        for row in &doc.tax_summary {
            self.ensure(13.0);
            let base = self.y - 10.0;
            self.text_fit(LABEL_X, base, BODY, &row.label, 110.0);
            self.text_right(TAX_R, base, BODY, &fonts::encode(&row.net));
            self.text_right(AMOUNT_R, base, BODY, &fonts::encode(&row.tax));
            self.y -= 13.0;
        }
        self.y -= 12.0;
    }

    /// Right-aligned label/value rows, the last one bold under a rule.
    fn totals(&mut self, doc: &Document) {
        let count = doc.totals.len();
        for (i, (label, value)) in doc.totals.iter().enumerate() {
            let last = i + 1 == count;
            let style = if last {
                Style(Font::Bold, 10.0, 0.0)
            } else {
                BODY
            };
            self.ensure(if last { 18.0 } else { 14.0 });
            if last {
                self.rule(300.0, RIGHT, self.y, 0.3);
                self.y -= 4.0;
            }
            let base = self.y - 10.0;
            self.text_right(TAX_R, base, style, &fonts::encode(label));
            self.text_right(AMOUNT_R, base, style, &fonts::encode(value));
            self.y -= 14.0;
        }
        self.y -= 10.0;
    }

    fn status_and_notes(&mut self, doc: &Document) {
        if !doc.status.is_empty() {
            self.ensure(16.0);
            self.text(LEFT, self.y - 11.0, LABEL, b"Status");
            self.text(
                LEFT + 32.0,
                self.y - 11.0,
                Style(Font::Bold, 11.0, 0.0),
                &fonts::encode(&doc.status),
            );
            self.y -= 26.0;
        }
        for note in &doc.notes {
            for line in fonts::wrap(&fonts::encode(note), Font::Regular, 9.0, RIGHT - LEFT) {
                self.ensure(12.0);
                self.text(LEFT, self.y - 9.0, BODY, &line);
                self.y -= 12.0;
            }
            self.y -= 6.0;
        }
    }

    /// The finished pages, each with its footer: document name and "Page N of M".
    fn finish(mut self, name: &[u8]) -> Vec<String> {
        self.done.push(std::mem::take(&mut self.ops));
        let total = self.done.len();
        let mut pages = std::mem::take(&mut self.done);
        for (i, page) in pages.iter_mut().enumerate() {
            self.ops = std::mem::take(page);
            self.rule(LEFT, RIGHT, FOOTER_Y + 12.0, 0.8);
            self.text(LEFT, FOOTER_Y, LABEL, name);
            let number = format!("Page {} of {total}", i + 1);
            self.text_right(RIGHT, FOOTER_Y, LABEL, number.as_bytes());
            *page = std::mem::take(&mut self.ops);
        }
        pages
    }
}

/// A description as at most `MAX_DESC_LINES` lines, the last ending in an
/// ellipsis when the text did not fit.
fn description_lines(description: &str) -> Vec<Vec<u8>> {
    let mut lines = fonts::wrap(&fonts::encode(description), Font::Regular, 9.0, DESC_W);
    if lines.len() > MAX_DESC_LINES {
        let rest = lines.split_off(MAX_DESC_LINES - 1).join(&b' ');
        lines.push(fonts::truncate(&rest, Font::Regular, 9.0, DESC_W));
    }
    lines
}
