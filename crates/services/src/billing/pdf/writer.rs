//! The PDF file itself: objects, the cross-reference table with exact byte
//! offsets, and the trailer. Everything written is 7-bit ASCII.

use super::fonts::Font;

/// A PDF literal string for WinAnsi `bytes`: `\`, `(` and `)` escaped,
/// anything outside printable ASCII as a three-digit octal escape.
pub(super) fn literal(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('(');
    for &b in bytes {
        match b {
            b'\\' | b'(' | b')' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7E => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:03o}")),
        }
    }
    out.push(')');
    out
}

/// A PDF text string (document information) as UTF-16BE hex with a byte-order mark.
fn text_string(text: &str) -> String {
    let mut out = String::from("<FEFF");
    for unit in text.encode_utf16() {
        out.push_str(&format!("{unit:04X}"));
    }
    out.push('>');
    out
}

/// Objects are numbered in the order they are added, starting at 1.
struct File {
    buf: Vec<u8>,
    offsets: Vec<usize>,
}

impl File {
    fn object(&mut self, body: &str) {
        self.offsets.push(self.buf.len());
        let number = self.offsets.len();
        self.buf
            .extend_from_slice(format!("{number} 0 obj\n{body}\nendobj\n").as_bytes());
    }

    fn stream(&mut self, content: &str) {
        self.object(&format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ));
    }
}

/// The whole file for `pages` (one content stream each) on an A4 media box.
pub(super) fn assemble(pages: &[String], title: &str) -> Vec<u8> {
    let mut file = File {
        buf: b"%PDF-1.4\n".to_vec(),
        offsets: Vec::new(),
    };
    // 1 catalog, 2 page tree, 3-4 fonts, 5 info, then a page and its content per page.
    const FIRST_PAGE: usize = 6;
    let kids: Vec<String> = (0..pages.len())
        .map(|i| format!("{} 0 R", FIRST_PAGE + 2 * i))
        .collect();
    file.object("<< /Type /Catalog /Pages 2 0 R >>");
    file.object(&format!(
        "<< /Type /Pages /Kids [{}] /Count {} >>",
        kids.join(" "),
        pages.len()
    ));
    for font in [Font::Regular, Font::Bold] {
        file.object(&format!(
            "<< /Type /Font /Subtype /Type1 /BaseFont /{} /Encoding /WinAnsiEncoding >>",
            font.base_font()
        ));
    }
    file.object(&format!(
        "<< /Title {} /Producer (mPanel) >>",
        text_string(title)
    ));
    for (i, content) in pages.iter().enumerate() {
        file.object(&format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] \
             /Resources << /Font << /{} 3 0 R /{} 4 0 R >> >> /Contents {} 0 R >>",
            Font::Regular.resource(),
            Font::Bold.resource(),
            FIRST_PAGE + 2 * i + 1
        ));
        file.stream(content);
    }

    let xref_at = file.buf.len();
    let size = file.offsets.len() + 1;
    let mut tail = format!("xref\n0 {size}\n0000000000 65535 f \n");
    for offset in &file.offsets {
        tail.push_str(&format!("{offset:010} 00000 n \n"));
    }
    tail.push_str(&format!(
        "trailer\n<< /Size {size} /Root 1 0 R /Info 5 0 R >>\nstartxref\n{xref_at}\n%%EOF\n"
    ));
    file.buf.extend_from_slice(tail.as_bytes());
    file.buf
}
