//! ESC/POS encoding of a laid-out receipt, with the `escpos` crate writing into memory.
//!
//! Pure: bytes in memory, no device IO (printers send the bytes). It must not change the layout
//! of [`super::layout`]: the text render relies on printing exactly those lines.
//!
//! Code page: Windows-1252 (`ESC t 16`), not PC858. Both print é è ë ü ö ç € and every other
//! letter of Dutch, French and German names, but the crate's PC858 table is wrong in places (it
//! maps the ASCII hyphen to 0xF0, so "78.03.12-037.01" would print a soft hyphen; `Ò` and `¿`
//! are missing) while its WPC1252 table matches the code page exactly
//! (/work/shared/research/hardware-print-gps.md §1). Text reaches the crate already reduced to
//! that code page by [`super::printable`], so its silent UTF-8 fallback never fires. Table 16
//! is Windows-1252 on Epson printers and the common clones; a model that numbers its tables
//! differently would need the number made configurable.

use std::cell::RefCell;

use escpos::driver::Driver;
use escpos::errors::Result as EscPosResult;
use escpos::printer::Printer;
use escpos::utils::{
    JustifyMode, PageCode, Protocol, QRCodeCorrectionLevel, QRCodeModel, QRCodeOption,
};

use super::{Block, FINAL_FEED_LINES, Receipt, layout};

/// Collects what the printer would send, instead of sending it.
#[derive(Default)]
struct MemoryDriver {
    bytes: RefCell<Vec<u8>>,
}

impl Driver for MemoryDriver {
    fn name(&self) -> String {
        "memory".to_owned()
    }

    fn write(&self, data: &[u8]) -> EscPosResult<()> {
        self.bytes.borrow_mut().extend_from_slice(data);
        Ok(())
    }

    fn read(&self, _buf: &mut [u8]) -> EscPosResult<usize> {
        Ok(0)
    }

    fn flush(&self) -> EscPosResult<()> {
        Ok(())
    }
}

/// The receipt as ESC/POS bytes for paper `columns` characters wide (font A): initialise, select
/// code page 1252, the lines with their styles, QR codes (model 2, level M, sized to the paper),
/// a short feed and a full cut.
pub fn encode_escpos(receipt: &Receipt, columns: usize) -> Vec<u8> {
    let blocks = layout(receipt, columns);
    // Every input the crate validates is valid by construction here: sizes 1..=8, QR module
    // sizes 1..=6 and data within the QR capacity (checked by `layout`), text within code page
    // 1252, and a driver that cannot fail. An error would be a bug in this function.
    encode_blocks(&blocks).expect("ESC/POS encoding of a laid-out receipt cannot fail")
}

fn encode_blocks(blocks: &[Block]) -> EscPosResult<Vec<u8>> {
    let mut printer = Printer::new(MemoryDriver::default(), Protocol::default(), None);
    printer.init()?.page_code(PageCode::WPC1252)?;
    for block in blocks {
        match block {
            Block::Plain(lines) => {
                for line in lines {
                    printer.writeln(line)?;
                }
            }
            Block::Title(lines) => emphasised(&mut printer, lines, 2)?,
            Block::QueueNumber(lines) => emphasised(&mut printer, lines, 4)?,
            Block::Qr { data, module_size } => {
                let option =
                    QRCodeOption::new(QRCodeModel::Model2, *module_size, QRCodeCorrectionLevel::M);
                printer
                    .justify(JustifyMode::CENTER)?
                    .qrcode_option(data, option)?
                    .justify(JustifyMode::LEFT)?;
            }
            Block::Blank => {
                printer.feed()?;
            }
        }
    }
    printer.feeds(FINAL_FEED_LINES)?.cut()?.print()?;
    Ok(printer.driver().bytes.into_inner())
}

/// Centred, bold lines at `scale` times the normal width and height, then back to normal.
fn emphasised(
    printer: &mut Printer<MemoryDriver>,
    lines: &[String],
    scale: u8,
) -> EscPosResult<()> {
    printer
        .justify(JustifyMode::CENTER)?
        .bold(true)?
        .size(scale, scale)?;
    for line in lines {
        printer.writeln(line)?;
    }
    printer
        .reset_size()?
        .bold(false)?
        .justify(JustifyMode::LEFT)?;
    Ok(())
}
