//! A small card that serves files with real T=0 behaviour (`6Cxx` when Le is more than what
//! remains, `6B00` past the end, SELECT by path or by identifier), so that reading and verifying
//! run together: the pure half end to end, without pcscd.

use std::collections::HashMap;

use busloket_hardware::eid::apdu::FilePath;
use busloket_hardware::eid::{
    CardFiles, CardSession, SessionError, Transmit, TransmitError, verify_card,
};

use super::fixtures::{anchors, card_files, now, padded};

struct FileCard {
    files: HashMap<u16, Vec<u8>>,
    selected: Option<u16>,
    apdus: usize,
    /// Pulled out of the reader at this APDU.
    removed_at: Option<usize>,
}

impl FileCard {
    fn new(files: &CardFiles) -> FileCard {
        let mut photo = files.photo.clone();
        photo.resize(3 * 252, 0x55); // a size that is a multiple of the chunk: ends with 6B00
        let files = HashMap::from([
            (0x4031, files.identity.clone()),
            (0x4032, files.identity_signature.clone()),
            (0x4033, files.address.clone()),
            (0x4034, files.address_signature.clone()),
            (0x4035, photo),
            (0x503C, files.rrn_certificate.clone()),
        ]);
        FileCard {
            files,
            selected: None,
            apdus: 0,
            removed_at: None,
        }
    }

    fn answer(&mut self, command: &[u8]) -> Vec<u8> {
        let status = |word: u16| word.to_be_bytes().to_vec();
        match command {
            [0x00, 0xA4, 0x08, 0x0C, length, path @ ..] if path.len() == usize::from(*length) => {
                let fid = u16::from_be_bytes([path[path.len() - 2], path[path.len() - 1]]);
                if self.files.contains_key(&fid) {
                    self.selected = Some(fid);
                    status(0x9000)
                } else {
                    status(0x6A82)
                }
            }
            [0x00, 0xA4, 0x02, 0x0C, 0x02, high, low] => match u16::from_be_bytes([*high, *low]) {
                0x3F00 | 0xDF00 | 0xDF01 => status(0x9000),
                fid if self.files.contains_key(&fid) => {
                    self.selected = Some(fid);
                    status(0x9000)
                }
                _ => status(0x6A82),
            },
            [0x00, 0xB0, high, low, le] => {
                let Some(file) = self.selected.and_then(|fid| self.files.get(&fid)) else {
                    return status(0x6986);
                };
                let offset = usize::from(u16::from_be_bytes([*high, *low]));
                if offset >= file.len() {
                    return status(0x6B00);
                }
                let remaining = file.len() - offset;
                let wanted = usize::from(*le);
                if wanted > remaining {
                    return status(0x6C00 | remaining as u16);
                }
                let mut reply = file[offset..offset + wanted].to_vec();
                reply.extend(status(0x9000));
                reply
            }
            _ => status(0x6D00),
        }
    }
}

impl Transmit for FileCard {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransmitError> {
        self.apdus += 1;
        if self.removed_at.is_some_and(|at| self.apdus >= at) {
            return Err(TransmitError::CardRemoved);
        }
        Ok(self.answer(command))
    }
}

#[test]
fn read_and_verify_both_generations() {
    for ec in [false, true] {
        let mut files = card_files(ec);
        files.rrn_certificate = padded(&files.rrn_certificate, 1100);
        let mut card = FileCard::new(&files);
        let read = CardSession::new(&mut card).read_card_files().unwrap();
        assert_eq!(read.identity, files.identity);
        assert_eq!(read.address, files.address);
        // The certificate without its padding: the reading stops at the DER length.
        let (der, padding) = files.rrn_certificate.split_at(read.rrn_certificate.len());
        assert_eq!(read.rrn_certificate, der);
        assert!(padding.len() >= 1100 && padding.iter().all(|&byte| byte == 0));
        assert_eq!(read.photo.len(), 3 * 252);
        // The padded photo no longer matches its hash: everything else verified first.
        let error = verify_card(read.clone(), &anchors(), now()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the photo does not match the card's data"
        );
        verify_card(
            CardFiles {
                photo: files.photo.clone(),
                ..read
            },
            &anchors(),
            now(),
        )
        .unwrap();
    }
}

#[test]
fn a_card_pulled_at_any_moment_gives_no_files() {
    let files = card_files(true);
    let apdus = {
        let mut card = FileCard::new(&files);
        CardSession::new(&mut card).read_card_files().unwrap();
        card.apdus
    };
    for removed_at in 1..=apdus {
        let mut card = FileCard::new(&files);
        card.removed_at = Some(removed_at);
        let error = CardSession::new(&mut card).read_card_files().unwrap_err();
        assert!(
            matches!(error, SessionError::Transmit(TransmitError::CardRemoved)),
            "{error:?}"
        );
    }
    let mut card = FileCard::new(&files);
    card.files.remove(&0x4035);
    let error = CardSession::new(&mut card)
        .read_file(FilePath::PHOTO)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the card refused SELECT: status 6A82 (file not found)"
    );
}
