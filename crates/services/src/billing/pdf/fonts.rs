//! The two standard fonts the documents use, their WinAnsi encoding and
//! glyph widths, and the text measuring, wrapping and truncating built on them.

/// One of the two standard Type1 fonts every PDF reader has built in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Font {
    Regular,
    Bold,
}

impl Font {
    /// The name the page resources give the font.
    pub(super) fn resource(self) -> &'static str {
        match self {
            Font::Regular => "F1",
            Font::Bold => "F2",
        }
    }

    /// The PostScript name of the standard font.
    pub(super) fn base_font(self) -> &'static str {
        match self {
            Font::Regular => "Helvetica",
            Font::Bold => "Helvetica-Bold",
        }
    }

    fn widths(self) -> &'static [u16; 224] {
        match self {
            Font::Regular => &HELVETICA,
            Font::Bold => &HELVETICA_BOLD,
        }
    }
}

/// WinAnsi code of the horizontal ellipsis.
pub(super) const ELLIPSIS: u8 = 0x85;

/// Text as WinAnsi bytes: Latin-1 as is, the common typographic characters of
/// 0x80..0x9F to their codes, white space to a space, anything else to `?`.
pub(super) fn encode(text: &str) -> Vec<u8> {
    text.chars().map(encode_char).collect()
}

fn encode_char(c: char) -> u8 {
    match c {
        ' '..='~' | '\u{A0}'..='\u{FF}' => u8::try_from(u32::from(c)).unwrap_or(b'?'),
        '\t' | '\n' | '\r' => b' ',
        '€' => 0x80,
        '‚' => 0x82,
        'ƒ' => 0x83,
        '„' => 0x84,
        '…' => ELLIPSIS,
        '†' => 0x86,
        '‡' => 0x87,
        'ˆ' => 0x88,
        '‰' => 0x89,
        'Š' => 0x8A,
        '‹' => 0x8B,
        'Œ' => 0x8C,
        'Ž' => 0x8E,
        '‘' => 0x91,
        '’' => 0x92,
        '“' => 0x93,
        '”' => 0x94,
        '•' => 0x95,
        '–' => 0x96,
        '—' => 0x97,
        '˜' => 0x98,
        '™' => 0x99,
        'š' => 0x9A,
        '›' => 0x9B,
        'œ' => 0x9C,
        'ž' => 0x9E,
        'Ÿ' => 0x9F,
        _ => b'?',
    }
}

/// Width in points of WinAnsi `bytes` set in `font` at `size`.
pub(super) fn width(bytes: &[u8], font: Font, size: f32) -> f32 {
    let table = font.widths();
    let units: u32 = bytes
        .iter()
        .map(|&b| {
            let w = usize::from(b)
                .checked_sub(32)
                .and_then(|i| table.get(i))
                .copied()
                .unwrap_or(0);
            u32::from(if w == 0 { DEFAULT_WIDTH } else { w })
        })
        .sum();
    // Exact: any realistic line is far below 2^24 units.
    units as f32 * size / 1000.0
}

/// Width used for a code the font has no glyph for.
const DEFAULT_WIDTH: u16 = 556;

/// `bytes` cut to fit `max` points, ending in an ellipsis when anything was cut.
pub(super) fn truncate(bytes: &[u8], font: Font, size: f32, max: f32) -> Vec<u8> {
    if width(bytes, font, size) <= max {
        return bytes.to_vec();
    }
    let room = max - width(&[ELLIPSIS], font, size);
    let mut out = Vec::with_capacity(bytes.len());
    let mut used = 0.0;
    for &b in bytes {
        let w = width(&[b], font, size);
        if used + w > room {
            break;
        }
        used += w;
        out.push(b);
    }
    while out.last() == Some(&b' ') {
        out.pop();
    }
    out.push(ELLIPSIS);
    out
}

/// `bytes` broken into lines no wider than `max` points: at spaces where
/// possible, inside a word only when the word alone is too wide.
pub(super) fn wrap(bytes: &[u8], font: Font, size: f32, max: f32) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    let mut line: Vec<u8> = Vec::new();
    for word in bytes.split(|&b| b == b' ').filter(|w| !w.is_empty()) {
        let mut candidate = line.clone();
        if !candidate.is_empty() {
            candidate.push(b' ');
        }
        candidate.extend_from_slice(word);
        if width(&candidate, font, size) <= max {
            line = candidate;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        for &b in word {
            line.push(b);
            if line.len() > 1 && width(&line, font, size) > max {
                line.pop();
                lines.push(std::mem::replace(&mut line, vec![b]));
            }
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Helvetica advance widths (1/1000 em) for WinAnsi codes 32..=255;
/// 0 marks the codes WinAnsi leaves undefined.
#[rustfmt::skip]
const HELVETICA: [u16; 224] = [
    // 32..=126
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, 0,
    // 128..=159
    556, 0, 222, 556, 333, 1000, 556, 556, 333, 1000, 667, 333, 1000, 0, 611, 0,
    0, 222, 222, 333, 333, 350, 556, 1000, 333, 1000, 500, 333, 944, 0, 500, 667,
    // 160..=255
    278, 333, 556, 556, 556, 556, 260, 556, 333, 737, 370, 556, 584, 333, 737, 333,
    400, 584, 333, 333, 333, 556, 537, 278, 333, 333, 365, 556, 834, 834, 834, 611,
    667, 667, 667, 667, 667, 667, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278,
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611,
    556, 556, 556, 556, 556, 556, 889, 500, 556, 556, 556, 556, 278, 278, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 584, 611, 556, 556, 556, 556, 500, 556, 500,
];

/// Helvetica-Bold advance widths (1/1000 em) for WinAnsi codes 32..=255.
#[rustfmt::skip]
const HELVETICA_BOLD: [u16; 224] = [
    // 32..=126
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611,
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556,
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611,
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584, 0,
    // 128..=159
    556, 0, 278, 556, 500, 1000, 556, 556, 333, 1000, 667, 333, 1000, 0, 611, 0,
    0, 278, 278, 500, 500, 350, 556, 1000, 333, 1000, 556, 333, 944, 0, 500, 667,
    // 160..=255
    278, 333, 556, 556, 556, 556, 280, 556, 333, 737, 370, 556, 584, 333, 737, 333,
    400, 584, 333, 333, 333, 611, 556, 278, 333, 333, 365, 556, 834, 834, 834, 611,
    722, 722, 722, 722, 722, 722, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278,
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611,
    556, 556, 556, 556, 556, 556, 889, 556, 556, 556, 556, 556, 278, 278, 278, 278,
    611, 611, 611, 611, 611, 611, 611, 584, 611, 611, 611, 611, 611, 556, 611, 556,
];
