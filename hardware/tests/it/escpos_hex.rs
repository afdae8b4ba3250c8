//! A small ESC/POS disassembler for the tests: one command per line, its bytes in hex and what
//! it means. It knows only the commands the encoder may send; anything else shows as unknown, so
//! a snapshot makes unexpected bytes visible. Text is decoded as Windows-1252, independently of
//! the `escpos` crate's table.

use std::fmt::Write;

/// Windows-1252 0x80–0x9F (U+FFFD where the code page has a hole).
const CP1252_80_9F: [char; 32] = [
    '€', '\u{FFFD}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{FFFD}', 'Ž',
    '\u{FFFD}', '\u{FFFD}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{FFFD}',
    'ž', 'Ÿ',
];

pub fn decode_cp1252(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&byte| match byte {
            0x80..=0x9f => CP1252_80_9F[usize::from(byte - 0x80)],
            _ => char::from(byte),
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The stream as annotated hex, one command (or run of text) per line.
pub fn annotate(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (length, meaning) = command(rest);
        writeln!(out, "{}  {meaning}", hex(&rest[..length])).unwrap();
        rest = &rest[length..];
    }
    out
}

/// The texts printed, in order (for checks that no stray bytes became text).
pub fn texts(bytes: &[u8]) -> Vec<String> {
    let mut texts = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (length, _) = command(rest);
        if is_text(rest[0]) {
            texts.push(decode_cp1252(&rest[..length]));
        }
        rest = &rest[length..];
    }
    texts
}

fn is_text(byte: u8) -> bool {
    byte >= 0x20 && byte != 0x7f
}

/// The length of the command at the start of `bytes` and what it means.
fn command(bytes: &[u8]) -> (usize, String) {
    let arg = |index: usize| bytes.get(index).copied();
    match bytes {
        [0x1b, b'@', ..] => (2, "ESC @ initialise".into()),
        [0x1b, b't', n, ..] => {
            let name = if *n == 16 { "Windows-1252" } else { "?" };
            (3, format!("ESC t {n} code page {name}"))
        }
        [0x1b, b'a', n, ..] => {
            let mode = ["left", "centre", "right"]
                .get(usize::from(*n))
                .unwrap_or(&"?");
            (3, format!("ESC a {n} justify {mode}"))
        }
        [0x1b, b'E', n, ..] => (
            3,
            format!("ESC E {n} bold {}", if *n == 1 { "on" } else { "off" }),
        ),
        [0x1d, b'!', n, ..] => (3, format!("GS ! size {}x{}", (n >> 4) + 1, (n & 0x0f) + 1)),
        [0x1b, b'd', n, ..] => (3, format!("ESC d {n} print and feed {n} line(s)")),
        [0x1d, b'V', b'A', n, ..] => (4, format!("GS V A {n} feed to the cutter and cut")),
        [0x10, 0x04, n, ..] => (3, format!("DLE EOT {n} status query")),
        [0x1d, b'(', b'k', low, high, ..] => {
            let length = usize::from(*low) + 256 * usize::from(*high);
            let end = (5 + length).min(bytes.len());
            let params = &bytes[5..end];
            let meaning = match params {
                [49, 65, n, _] => format!("QR model {}", n - 48),
                [49, 67, n] => format!("QR module size {n} dots"),
                [49, 69, n] => {
                    format!(
                        "QR error correction {}",
                        ["L", "M", "Q", "H"]
                            .get(usize::from(n - 48))
                            .unwrap_or(&"?")
                    )
                }
                [49, 80, 48, data @ ..] => format!("QR store {:?}", String::from_utf8_lossy(data)),
                [49, 81, 48] => "QR print".to_owned(),
                _ => "GS ( k unknown 2D code function".to_owned(),
            };
            (end, format!("GS ( k {meaning}"))
        }
        [first, ..] if is_text(*first) => {
            let length = bytes
                .iter()
                .position(|&b| !is_text(b))
                .unwrap_or(bytes.len());
            (
                length,
                format!("text {:?}", decode_cp1252(&bytes[..length])),
            )
        }
        _ => (
            1,
            format!("unknown byte {:02x}", arg(0).unwrap_or_default()),
        ),
    }
}
