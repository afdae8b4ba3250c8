//! Unit tests of [`CardSession::read_der_file`] over a card that serves one zero-padded file
//! with real T=0 behaviour (`6Cxx` when Le is more than what remains, `6B00` past the end): the
//! padding is not read, the header forms, files shorter than their DER length, absent
//! certificates.

use expect_test::expect;

use super::{CardSession, SessionError, Transmit, TransmitError};
use crate::eid::apdu::FilePath;
use crate::eid::certificate::{CertificateError, X509Certificate};

/// A card holding one file (whatever path is selected) that writes down every command's first
/// five bytes and the status it answered.
struct OneFileCard {
    file: Vec<u8>,
    transcript: String,
    /// Pulled out of the reader when this many commands have been answered.
    removed_after: Option<usize>,
    commands: usize,
}

impl OneFileCard {
    fn new(file: Vec<u8>) -> OneFileCard {
        OneFileCard {
            file,
            transcript: String::new(),
            removed_after: None,
            commands: 0,
        }
    }

    /// How many READ BINARY commands (resends after `6Cxx` included) the card answered.
    fn read_binaries(&self) -> usize {
        self.transcript
            .lines()
            .filter(|line| line.starts_with("00 B0"))
            .count()
    }

    fn answer(&self, command: &[u8]) -> Vec<u8> {
        let status = |word: u16| word.to_be_bytes().to_vec();
        match command {
            [0x00, 0xA4, ..] => status(0x9000),
            [0x00, 0xB0, high, low, le] => {
                let offset = usize::from(u16::from_be_bytes([*high, *low]));
                if offset >= self.file.len() {
                    return status(0x6B00);
                }
                let remaining = self.file.len() - offset;
                let wanted = if *le == 0 { 256 } else { usize::from(*le) };
                if wanted > remaining {
                    return status(0x6C00 | remaining.min(255) as u16);
                }
                let mut reply = self.file[offset..offset + wanted].to_vec();
                reply.extend(status(0x9000));
                reply
            }
            _ => status(0x6D00),
        }
    }
}

impl Transmit for OneFileCard {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransmitError> {
        if self.removed_after == Some(self.commands) {
            return Err(TransmitError::CardRemoved);
        }
        self.commands += 1;
        let reply = self.answer(command);
        let shown: Vec<String> = command.iter().take(5).map(|b| format!("{b:02X}")).collect();
        let (data, status) = reply.split_at(reply.len() - 2);
        self.transcript.push_str(&format!(
            "{} -> {} bytes {:02X}{:02X}\n",
            shown.join(" "),
            data.len(),
            status[0],
            status[1]
        ));
        Ok(reply)
    }
}

/// A DER SEQUENCE of `total` bytes (header included) with the shortest length form that fits,
/// its content bytes never zero (so a stray padding byte would show).
fn der_element(total: usize) -> Vec<u8> {
    let header_len = match total {
        0..=0x81 => 2,
        0x82..=0x102 => 3,
        0x103..=0x1_0003 => 4,
        _ => 5,
    };
    let content = total - header_len;
    let mut element = vec![0x30];
    match header_len {
        2 => element.push(content as u8),
        3 => element.extend([0x81, content as u8]),
        4 => element.extend([0x82, (content >> 8) as u8, content as u8]),
        _ => element.extend([
            0x83,
            (content >> 16) as u8,
            (content >> 8) as u8,
            content as u8,
        ]),
    }
    element.extend((0..content).map(|i| (i % 255) as u8 + 1));
    assert_eq!(element.len(), total);
    element
}

fn padded(element: &[u8], padding: usize) -> Vec<u8> {
    let mut file = element.to_vec();
    file.resize(element.len() + padding, 0);
    file
}

fn read_der(card: &mut OneFileCard) -> Result<Vec<u8>, SessionError> {
    CardSession::new(card).read_der_file(FilePath::RRN_CERTIFICATE)
}

#[test]
fn the_padding_after_a_certificate_is_not_read() {
    // A 1234-byte certificate with the 1100 bytes of padding of an applet 1.8 card.
    let certificate = der_element(1234);
    let mut card = OneFileCard::new(padded(&certificate, 1100));
    assert_eq!(read_der(&mut card).unwrap(), certificate);
    // Five READ BINARY: four whole chunks and the 226 bytes left, nothing of the padding.
    expect![[r#"
        00 A4 08 0C 04 -> 0 bytes 9000
        00 B0 00 00 FC -> 252 bytes 9000
        00 B0 00 FC FC -> 252 bytes 9000
        00 B0 01 F8 FC -> 252 bytes 9000
        00 B0 02 F4 FC -> 252 bytes 9000
        00 B0 03 F0 E2 -> 226 bytes 9000
    "#]]
    .assert_eq(&card.transcript);

    // The whole file, for comparison: ten chunks, the last one after a 6Cxx.
    let mut card = OneFileCard::new(padded(&certificate, 1100));
    let file = CardSession::new(&mut card)
        .read_file(FilePath::RRN_CERTIFICATE)
        .unwrap();
    assert_eq!(file.len(), 2334);
    assert_eq!(card.read_binaries(), 11);
}

#[test]
fn every_length_form_and_chunk_boundary_takes_the_fewest_reads() {
    for total in [
        2, 100, 129, 130, 200, 251, 252, 253, 258, 259, 503, 504, 505, 1234, 4096, 20000,
    ] {
        let certificate = der_element(total);
        for padding in [0, 1, 50, 252, 1100] {
            let mut card = OneFileCard::new(padded(&certificate, padding));
            let read = read_der(&mut card)
                .unwrap_or_else(|error| panic!("{total} bytes with {padding} of padding: {error}"));
            assert_eq!(read, certificate, "{total} bytes with {padding} of padding");
            // The first chunk is always asked whole; when the file is shorter than that, the
            // card says so (6Cxx) and the session asks again.
            let resend = usize::from(padding == 0 && total < 252)
                + usize::from(padding > 0 && total + padding < 252);
            assert_eq!(
                card.read_binaries(),
                total.div_ceil(252) + resend,
                "{total} bytes with {padding} of padding:\n{}",
                card.transcript
            );
        }
    }
}

#[test]
fn a_file_shorter_than_its_der_length_is_an_error() {
    // It ends within a chunk: 6Cxx, then the short rest.
    let mut card = OneFileCard::new(der_element(1234)[..600].to_vec());
    let error = read_der(&mut card).unwrap_err();
    assert!(
        matches!(
            error,
            SessionError::DerTruncated {
                len: 600,
                announced: 1234,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "file 3F00/DF00/503C ends after 600 bytes, before the 1234 bytes its DER header announces"
    );

    // It ends on a chunk boundary: 6B00.
    let mut card = OneFileCard::new(der_element(1234)[..504].to_vec());
    let error = read_der(&mut card).unwrap_err();
    assert!(
        matches!(
            error,
            SessionError::DerTruncated {
                len: 504,
                announced: 1234,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        card.transcript
            .ends_with("00 B0 01 F8 FC -> 0 bytes 6B00\n")
    );

    // It ends inside the header itself.
    for header in [&[0x30][..], &[0x30, 0x82, 0x04]] {
        let mut card = OneFileCard::new(header.to_vec());
        let error = read_der(&mut card).unwrap_err();
        assert!(
            matches!(error, SessionError::DerHeaderTruncated { len, .. } if len == header.len()),
            "{error:?}"
        );
    }
    let mut card = OneFileCard::new(vec![0x30, 0x82, 0x04]);
    assert_eq!(
        read_der(&mut card).unwrap_err().to_string(),
        "file 3F00/DF00/503C ends after 3 bytes, inside its DER header"
    );
}

#[test]
fn a_length_beyond_what_a_file_can_hold_is_an_error_before_any_further_read() {
    for header in [
        &[0x30, 0x84, 0x7F, 0xFF, 0xFF, 0xFF][..],
        &[0x30, 0x83, 0x01, 0x00, 0x00],
        &[0x30, 0x82, 0x80, 0x00],
    ] {
        let mut card = OneFileCard::new(padded(header, 2000));
        let error = read_der(&mut card).unwrap_err();
        assert!(
            matches!(error, SessionError::DerTooLong { limit: 32768, .. }),
            "{error:?}"
        );
        assert_eq!(card.read_binaries(), 1);
    }
    let mut card = OneFileCard::new(padded(&[0x30, 0x84, 0x7F, 0xFF, 0xFF, 0xFF], 2000));
    assert_eq!(
        read_der(&mut card).unwrap_err().to_string(),
        "file 3F00/DF00/503C announces a DER element of 2147483653 bytes, more than a file can hold (32768)"
    );
    // The largest file READ BINARY can address is fine, and so is a three-byte length.
    let largest = der_element(32768);
    let mut card = OneFileCard::new(padded(&largest, 100));
    assert_eq!(read_der(&mut card).unwrap(), largest);
    let mut three_byte_length = vec![0x30, 0x83, 0x00, 0x10, 0x00];
    three_byte_length.extend([0xAA; 4096]);
    let mut card = OneFileCard::new(padded(&three_byte_length, 1100));
    assert_eq!(read_der(&mut card).unwrap(), three_byte_length);
    assert_eq!(card.read_binaries(), 4101_usize.div_ceil(252));
}

#[test]
fn an_absent_certificate_is_one_chunk_of_zeros_that_reads_as_absent() {
    for length in [2500, 1300, 252, 100] {
        let mut card = OneFileCard::new(vec![0; length]);
        let read = read_der(&mut card).unwrap();
        assert_eq!(read, vec![0; length.min(252)]);
        assert!(card.read_binaries() <= 2, "{}", card.transcript);
        assert!(matches!(
            X509Certificate::from_card_file(&read),
            Err(CertificateError::Absent)
        ));
    }
}

#[test]
fn a_header_that_is_not_der_is_left_to_the_verifier() {
    // Indefinite length: the first chunk comes back, and the certificate check refuses it.
    let mut file = vec![0x30, 0x80];
    file.extend([0xAA; 600]);
    let mut card = OneFileCard::new(file.clone());
    let read = read_der(&mut card).unwrap();
    assert_eq!(read, file[..252]);
    assert!(matches!(
        X509Certificate::from_card_file(&read),
        Err(CertificateError::BadPadding)
    ));
}

#[test]
fn a_card_pulled_mid_certificate_is_the_transport_error() {
    let certificate = der_element(1234);
    for removed_after in 0..6 {
        let mut card = OneFileCard::new(padded(&certificate, 1100));
        card.removed_after = Some(removed_after);
        let error = read_der(&mut card).unwrap_err();
        assert!(
            matches!(error, SessionError::Transmit(TransmitError::CardRemoved)),
            "{error:?}"
        );
    }
}
