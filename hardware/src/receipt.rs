//! The receipt / queue ticket: plain data ([`Receipt`], [`ReceiptLine`]), laid out once into
//! lines of a given width, then encoded either as ESC/POS bytes ([`encode_escpos`]) or as the
//! text a person would read on the paper ([`render_text`]).
//!
//! Both encodings come from the same layout, so the text render is a faithful preview of the
//! paper. This module does no IO and must not know what the receipt is about (requests,
//! documents): callers hand it finished, translated lines.

mod escpos;

use serde::{Deserialize, Serialize};

pub use escpos::encode_escpos;

/// The narrowest paper we lay out for; smaller column counts are raised to this.
pub const MIN_COLUMNS: usize = 16;

/// Dots per character of the printer's font A (12×24), to size QR codes to the paper.
const DOTS_PER_COLUMN: usize = 12;

/// The largest QR module (dot) size we ask for; bigger codes scan no better.
const MAX_QR_MODULE_SIZE: usize = 6;

/// What a receipt says, top to bottom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub lines: Vec<ReceiptLine>,
}

/// One element of a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReceiptLine {
    /// Bold, double width and height, centred.
    Title(String),
    /// The queue number: very big (four times), bold, centred.
    QueueNumber(String),
    /// Running text, wrapped at the paper's width; `\n` starts a new line.
    Text(String),
    /// A label on the left and its value on the right; on two lines when both do not fit.
    Field { label: String, value: String },
    /// A dashed line across the paper.
    Separator,
    /// A QR code holding this text, centred.
    Qr(String),
    /// An empty line.
    Blank,
}

/// The receipt laid out for a given width: what goes on paper, line by line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Block {
    /// Normal lines, each already padded to its place.
    Plain(Vec<String>),
    /// Lines to print bold and double size, centred; each at most `columns / 2` characters.
    Title(Vec<String>),
    /// Lines to print four times as big, centred; each at most `columns / 4` characters.
    QueueNumber(Vec<String>),
    /// A QR code with its module size in dots.
    Qr {
        data: String,
        module_size: u8,
    },
    Blank,
}

/// Blank lines fed after the last line so that it clears the cutter.
pub(crate) const FINAL_FEED_LINES: u8 = 2;

/// Lays the receipt out for paper `columns` characters wide (at least [`MIN_COLUMNS`]).
pub(crate) fn layout(receipt: &Receipt, columns: usize) -> Vec<Block> {
    let columns = columns.max(MIN_COLUMNS);
    let mut blocks = Vec::with_capacity(receipt.lines.len());
    for line in &receipt.lines {
        match line {
            ReceiptLine::Title(text) => {
                blocks.push(Block::Title(wrap(&printable(text), columns / 2)));
            }
            ReceiptLine::QueueNumber(text) => {
                blocks.push(Block::QueueNumber(wrap(&printable(text), columns / 4)));
            }
            ReceiptLine::Text(text) => {
                let lines = text
                    .split('\n')
                    .flat_map(|paragraph| wrap(&printable(paragraph), columns));
                blocks.push(Block::Plain(lines.collect()));
            }
            ReceiptLine::Field { label, value } => {
                blocks.push(Block::Plain(field_lines(
                    &printable(label),
                    &printable(value),
                    columns,
                )));
            }
            ReceiptLine::Separator => blocks.push(Block::Plain(vec!["-".repeat(columns)])),
            ReceiptLine::Qr(data) if data.is_empty() => {}
            ReceiptLine::Qr(data) => match qr_module_size(data.len(), columns) {
                Some(module_size) => blocks.push(Block::Qr {
                    data: data.clone(),
                    module_size,
                }),
                None => tracing::warn!(
                    bytes = data.len(),
                    "QR data too long for a QR code; not printed"
                ),
            },
            ReceiptLine::Blank => blocks.push(Block::Blank),
        }
    }
    blocks
}

/// The receipt as a person would read it on paper `columns` characters wide: titles and queue
/// numbers centred (their larger print is not shown), text wrapped, `[QR: …]` where a code is,
/// and the cut at the end.
pub fn render_text(receipt: &Receipt, columns: usize) -> String {
    let columns = columns.max(MIN_COLUMNS);
    let mut out = String::new();
    let mut push = |line: &str| {
        out.push_str(line.trim_end());
        out.push('\n');
    };
    for block in layout(receipt, columns) {
        match block {
            Block::Plain(lines) => lines.iter().for_each(|line| push(line)),
            Block::Title(lines) | Block::QueueNumber(lines) => {
                lines.iter().for_each(|line| push(&centre(line, columns)));
            }
            Block::Qr { data, .. } => {
                for line in wrap(&printable(&format!("[QR: {data}]")), columns) {
                    push(&centre(&line, columns));
                }
            }
            Block::Blank => push(""),
        }
    }
    for _ in 0..FINAL_FEED_LINES {
        push("");
    }
    push(&format!("8<{}", "-".repeat(columns - 2)));
    out
}

fn centre(line: &str, columns: usize) -> String {
    let width = line.chars().count();
    format!("{}{line}", " ".repeat(columns.saturating_sub(width) / 2))
}

/// "Label          value" on one line (at least two spaces apart, so that the two do not read
/// as one phrase), or the label and then the value indented below it.
fn field_lines(label: &str, value: &str, columns: usize) -> Vec<String> {
    let (label_width, value_width) = (label.chars().count(), value.chars().count());
    if label_width + 2 + value_width <= columns {
        let gap = " ".repeat(columns - label_width - value_width);
        return vec![format!("{label}{gap}{value}")];
    }
    let mut lines = wrap(label, columns);
    lines.extend(
        wrap(value, columns - 2)
            .into_iter()
            .map(|line| format!("  {line}")),
    );
    lines
}

/// Greedy word wrap at `width` characters; words longer than a line are cut. Always at least
/// one (possibly empty) line.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut current: Vec<char> = Vec::new();
    for word in text.split(' ').filter(|word| !word.is_empty()) {
        let word: Vec<char> = word.chars().collect();
        let separator = usize::from(!current.is_empty());
        if current.len() + separator + word.len() <= width {
            if separator == 1 {
                current.push(' ');
            }
            current.extend(word);
            continue;
        }
        if !current.is_empty() {
            lines.push(std::mem::take(&mut current).into_iter().collect());
        }
        let chunks: Vec<&[char]> = word.chunks(width).collect();
        if let Some((last, full)) = chunks.split_last() {
            lines.extend(full.iter().map(|chunk| chunk.iter().collect::<String>()));
            current = last.to_vec();
        }
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current.into_iter().collect());
    }
    lines
}

/// Byte capacity of QR versions 1–40 at error correction level M (ISO/IEC 18004, byte mode).
const QR_CAPACITY_M: [usize; 40] = [
    14, 26, 42, 62, 84, 106, 122, 152, 180, 213, 251, 287, 331, 362, 412, 450, 504, 560, 624, 666,
    711, 779, 857, 911, 997, 1059, 1125, 1190, 1264, 1370, 1452, 1538, 1628, 1722, 1809, 1911,
    1989, 2099, 2213, 2331,
];

/// The module size (dots) that makes a QR code for `data_len` bytes fit the paper, or `None`
/// when no QR code at level M holds that much.
fn qr_module_size(data_len: usize, columns: usize) -> Option<u8> {
    let version = QR_CAPACITY_M
        .iter()
        .position(|&capacity| data_len <= capacity)?
        + 1;
    let modules = 17 + 4 * version;
    let size = (columns * DOTS_PER_COLUMN / modules).clamp(1, MAX_QR_MODULE_SIZE);
    u8::try_from(size).ok()
}

/// The characters of code page 1252 above ASCII that are not Latin-1 (0x80–0x9F).
const CP1252_EXTRAS: [char; 27] = [
    '€', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', 'Ž', '‘', '’', '“', '”', '•', '–',
    '—', '˜', '™', 'š', '›', 'œ', 'ž', 'Ÿ',
];

/// Makes text printable in code page 1252: letters outside it are transliterated ("ł" → "l"),
/// anything else unprintable becomes "?", and control characters (which could smuggle printer
/// commands in) are dropped. Every character of the result is one column wide.
pub(crate) fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' | '\u{A0}' => out.push(' '),
            ' '..='~' | '\u{A1}'..='\u{AC}' | '\u{AE}'..='\u{FF}' => out.push(c),
            c if CP1252_EXTRAS.contains(&c) => out.push(c),
            // Soft hyphens, zero-width and combining characters take no column.
            '\u{AD}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2060}'
            | '\u{FEFF}'
            | '\u{300}'..='\u{36F}' => {}
            c if c.is_control() => {}
            c => out.push_str(transliterate(c)),
        }
    }
    out
}

/// Latin letters of Central and Eastern European names, without their diacritics.
fn transliterate(c: char) -> &'static str {
    match c {
        'Ā' | 'Ă' | 'Ą' => "A",
        'ā' | 'ă' | 'ą' => "a",
        'Ć' | 'Ĉ' | 'Ċ' | 'Č' => "C",
        'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'Ď' | 'Đ' => "D",
        'ď' | 'đ' => "d",
        'Ē' | 'Ĕ' | 'Ė' | 'Ę' | 'Ě' => "E",
        'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'Ĝ' | 'Ğ' | 'Ġ' | 'Ģ' => "G",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'Ĥ' | 'Ħ' => "H",
        'ĥ' | 'ħ' => "h",
        'Ĩ' | 'Ī' | 'Ĭ' | 'Į' | 'İ' => "I",
        'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => "i",
        'Ĵ' => "J",
        'ĵ' => "j",
        'Ķ' => "K",
        'ķ' => "k",
        'Ĺ' | 'Ļ' | 'Ľ' | 'Ŀ' | 'Ł' => "L",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'Ń' | 'Ņ' | 'Ň' => "N",
        'ń' | 'ņ' | 'ň' => "n",
        'Ō' | 'Ŏ' | 'Ő' => "O",
        'ō' | 'ŏ' | 'ő' => "o",
        'Ŕ' | 'Ŗ' | 'Ř' => "R",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'Ś' | 'Ŝ' | 'Ş' | 'Ș' => "S",
        'ś' | 'ŝ' | 'ş' | 'ș' => "s",
        'Ţ' | 'Ť' | 'Ŧ' | 'Ț' => "T",
        'ţ' | 'ť' | 'ŧ' | 'ț' => "t",
        'Ũ' | 'Ū' | 'Ŭ' | 'Ů' | 'Ű' | 'Ų' => "U",
        'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => "u",
        'Ŵ' => "W",
        'ŵ' => "w",
        'Ŷ' => "Y",
        'ŷ' => "y",
        'Ź' | 'Ż' => "Z",
        'ź' | 'ż' => "z",
        '‐' | '‑' | '‒' | '−' => "-",
        '′' => "'",
        '″' => "\"",
        _ => "?",
    }
}
