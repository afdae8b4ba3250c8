//! Command APDUs as a T=0 card receives them, the status words the Belpic applet answers, and
//! the transcript of a card session (with VERIFY data masked, so no PIN ever reaches a log or a
//! snapshot).

use std::fmt::Write as _;

/// Status words (SW1 SW2) the virtual card answers.
pub mod sw {
    pub const OK: [u8; 2] = [0x90, 0x00];
    pub const WRONG_LENGTH: [u8; 2] = [0x67, 0x00];
    pub const SECURITY_STATUS_NOT_SATISFIED: [u8; 2] = [0x69, 0x82];
    pub const AUTHENTICATION_METHOD_BLOCKED: [u8; 2] = [0x69, 0x83];
    pub const CONDITIONS_OF_USE_NOT_SATISFIED: [u8; 2] = [0x69, 0x85];
    pub const COMMAND_NOT_ALLOWED_NO_CURRENT_EF: [u8; 2] = [0x69, 0x86];
    pub const WRONG_DATA: [u8; 2] = [0x6A, 0x80];
    pub const FILE_NOT_FOUND: [u8; 2] = [0x6A, 0x82];
    pub const INCORRECT_P1_P2: [u8; 2] = [0x6A, 0x86];
    pub const REFERENCED_DATA_NOT_FOUND: [u8; 2] = [0x6A, 0x88];
    pub const WRONG_OFFSET: [u8; 2] = [0x6B, 0x00];
    pub const INS_NOT_SUPPORTED: [u8; 2] = [0x6D, 0x00];
    pub const CLA_NOT_SUPPORTED: [u8; 2] = [0x6E, 0x00];

    /// `61xx`: response data waiting for GET RESPONSE (`xx` = 00 means 256 or more).
    pub fn bytes_available(count: usize) -> [u8; 2] {
        [0x61, length_byte(count)]
    }

    /// `6Cxx`: wrong Le, resend with `xx`.
    pub fn wrong_le(exact: usize) -> [u8; 2] {
        [0x6C, length_byte(exact)]
    }

    /// `63Cx`: wrong PIN, `x` tries left.
    pub fn wrong_pin(tries_left: u8) -> [u8; 2] {
        [0x63, 0xC0 | (tries_left & 0x0F)]
    }

    /// A short length byte: 256 and more are written `00`.
    fn length_byte(count: usize) -> u8 {
        if count >= 256 { 0 } else { count as u8 }
    }
}

/// Instruction bytes the applet knows.
pub mod ins {
    pub const VERIFY: u8 = 0x20;
    pub const MANAGE_SECURITY_ENVIRONMENT: u8 = 0x22;
    pub const PERFORM_SECURITY_OPERATION: u8 = 0x2A;
    pub const INTERNAL_AUTHENTICATE: u8 = 0x88;
    pub const SELECT: u8 = 0xA4;
    pub const READ_BINARY: u8 = 0xB0;
    pub const GET_RESPONSE: u8 = 0xC0;
    pub const GET_CARD_DATA: u8 = 0xE4;
    pub const LOG_OFF: u8 = 0xE6;
}

/// A command APDU split as a T=0 card sees it. Short APDUs only (the eID has no extended
/// lengths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command<'a> {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    /// The command data (empty for cases 1 and 2).
    pub data: &'a [u8],
    /// The Le byte as sent (`None` for cases 1 and 3): P3 of a case-2 command, or the byte
    /// after the data of a case-4 command. See [`Command::expected_length`].
    pub le: Option<u8>,
}

impl<'a> Command<'a> {
    /// Splits `apdu`: 4 bytes = case 1; 5 bytes = case 2 (P3 is Le); more = case 3, or case 4
    /// when one byte follows the data (a trailing Le a T=0 card ignores). `None` when the
    /// length does not add up.
    pub fn parse(apdu: &'a [u8]) -> Option<Command<'a>> {
        let (header, body) = apdu.split_at_checked(4)?;
        let [cla, ins, p1, p2] = [header[0], header[1], header[2], header[3]];
        let command = |data, le| Command {
            cla,
            ins,
            p1,
            p2,
            data,
            le,
        };
        match body {
            [] => Some(command(&[][..], None)),
            [p3] => Some(command(&[][..], Some(*p3))),
            [lc, rest @ ..] => {
                let lc = usize::from(*lc);
                match rest.len().checked_sub(lc)? {
                    0 => Some(command(rest, None)),
                    1 => Some(command(&rest[..lc], Some(rest[lc]))),
                    _ => None,
                }
            }
        }
    }

    /// The number of bytes the command asks for: Le, where Le = 00 (or no Le) means 256.
    pub fn expected_length(&self) -> usize {
        match self.le {
            None | Some(0) => 256,
            Some(le) => usize::from(le),
        }
    }
}

/// One command and its response, as exchanged with the card. A VERIFY's data is already
/// replaced by `**` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The command as sent, except that PIN bytes are masked (`None` at their place).
    pub command: Vec<Option<u8>>,
    pub response: Vec<u8>,
}

impl Exchange {
    /// Records `command` → `response`, masking the data of VERIFY (and CHANGE REFERENCE DATA)
    /// commands so the PIN never leaves the card.
    pub fn record(command: &[u8], response: &[u8]) -> Exchange {
        let carries_pin = command.len() > 5
            && matches!(command.get(1), Some(0x20 | 0x24))
            && matches!(command.first(), Some(0x00));
        let command = command
            .iter()
            .enumerate()
            .map(|(index, byte)| (!(carries_pin && index >= 5)).then_some(*byte))
            .collect();
        Exchange {
            command,
            response: response.to_vec(),
        }
    }

    /// The status word of the response.
    pub fn status_word(&self) -> [u8; 2] {
        match self.response.as_slice() {
            [.., sw1, sw2] => [*sw1, *sw2],
            _ => [0, 0],
        }
    }
}

/// Renders exchanges for snapshots and logs, one command line (`>`) and one response line
/// (`<`) each. Response data is summarised as its length: signatures and files differ per key
/// and card, the shape of the conversation does not.
///
/// ```text
/// > 00 A4 08 0C 04 DF 01 40 31
/// < 90 00
/// > 00 B0 00 00 FC
/// < 6C D3
/// ```
pub fn render_transcript(exchanges: &[Exchange]) -> String {
    let mut text = String::new();
    for exchange in exchanges {
        let command: Vec<String> = exchange
            .command
            .iter()
            .map(|byte| byte.map_or_else(|| "**".to_owned(), |byte| format!("{byte:02X}")))
            .collect();
        let _ = writeln!(text, "> {}", command.join(" "));
        let [sw1, sw2] = exchange.status_word();
        let data_length = exchange.response.len().saturating_sub(2);
        if data_length == 0 {
            let _ = writeln!(text, "< {sw1:02X} {sw2:02X}");
        } else {
            let _ = writeln!(text, "< [{data_length} bytes] {sw1:02X} {sw2:02X}");
        }
    }
    text
}

/// Upper-case hex with spaces, for messages and logs.
pub fn hex(bytes: &[u8]) -> String {
    let parts: Vec<String> = bytes.iter().map(|byte| format!("{byte:02X}")).collect();
    parts.join(" ")
}
