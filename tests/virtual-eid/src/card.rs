//! The card itself: a pure APDU state machine, [`VirtualCard::respond`], that behaves like a
//! Belpic applet behind a T=0 reader.
//!
//! T=0 behaviour emulated: commands that return data after sending data (PSO, INTERNAL
//! AUTHENTICATE) answer `61xx` and hand the data out through GET RESPONSE, which must be the
//! very next command; a READ BINARY, GET RESPONSE or GET CARD DATA whose Le does not fit
//! answers `6Cxx` with the exact length; a READ BINARY at or past the end answers `6B00`.
//! SELECT never returns an FCI.
//!
//! PIN rules (simplified from the applet 1.8 reference manual, documented here because tests
//! rely on them): one PIN, 3 tries; a wrong VERIFY answers `63Cx` (x tries left, `63C0` on
//! the try that blocks) and withdraws the PIN right; a blocked PIN answers `6983`; a correct
//! one restores 3 tries. Key 82 (authentication) signs whenever the PIN was verified since
//! the last reset or LOG OFF. Key 83 (non-repudiation) signs only if the command just before
//! the PSO was a successful VERIFY. INTERNAL AUTHENTICATE (1.8, basic key 81) needs no PIN and
//! is limited to 5000 calls until the next correct PIN.
//!
//! No IO and no clock: the vpcd client and the tests drive it.

use std::collections::BTreeMap;

use crate::apdu::{Command, Exchange, ins, sw};
use crate::keys::TestKey;
use crate::profile::Profile;
use crate::security::{decode_pin_block, digest_length, sign_digest};

/// The master file and the two dedicated files of the Belpic applet.
pub const MASTER_FILE: u16 = 0x3F00;
pub const BELPIC_DF: u16 = 0xDF00;
pub const ID_DF: u16 = 0xDF01;

/// The Belpic applet (selected by default after reset).
pub const APPLET_AID: [u8; 15] = [
    0xA0, 0x00, 0x00, 0x00, 0x30, 0x29, 0x05, 0x70, 0x00, 0xAD, 0x13, 0x10, 0x01, 0x01, 0xFF,
];
/// DF(BELPIC) = DF00, the PKCS#15 application with the certificates.
pub const BELPIC_AID: [u8; 12] = [
    0xA0, 0x00, 0x00, 0x01, 0x77, 0x50, 0x4B, 0x43, 0x53, 0x2D, 0x31, 0x35,
];
/// DF(ID) = DF01, the identity files.
pub const ID_AID: [u8; 12] = [
    0xA0, 0x00, 0x00, 0x01, 0x77, 0x49, 0x64, 0x46, 0x69, 0x6C, 0x65, 0x73,
];

/// A transparent elementary file: the DF it sits in and its own id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId {
    pub df: u16,
    pub ef: u16,
}

/// The files of the eID, by their usual names.
pub mod file {
    use super::{BELPIC_DF, FileId, ID_DF};

    pub const IDENTITY: FileId = FileId {
        df: ID_DF,
        ef: 0x4031,
    };
    pub const IDENTITY_SIGNATURE: FileId = FileId {
        df: ID_DF,
        ef: 0x4032,
    };
    pub const ADDRESS: FileId = FileId {
        df: ID_DF,
        ef: 0x4033,
    };
    pub const ADDRESS_SIGNATURE: FileId = FileId {
        df: ID_DF,
        ef: 0x4034,
    };
    pub const PHOTO: FileId = FileId {
        df: ID_DF,
        ef: 0x4035,
    };
    /// Applet 1.8 only: the basic public key (DER SubjectPublicKeyInfo, P-384).
    pub const BASIC_PUBLIC_KEY: FileId = FileId {
        df: ID_DF,
        ef: 0x4040,
    };
    pub const AUTHENTICATION_CERTIFICATE: FileId = FileId {
        df: BELPIC_DF,
        ef: 0x5038,
    };
    pub const NON_REPUDIATION_CERTIFICATE: FileId = FileId {
        df: BELPIC_DF,
        ef: 0x5039,
    };
    pub const CA_CERTIFICATE: FileId = FileId {
        df: BELPIC_DF,
        ef: 0x503A,
    };
    pub const ROOT_CERTIFICATE: FileId = FileId {
        df: BELPIC_DF,
        ef: 0x503B,
    };
    pub const RRN_CERTIFICATE: FileId = FileId {
        df: BELPIC_DF,
        ef: 0x503C,
    };
}

/// Key references of MSE SET and INTERNAL AUTHENTICATE.
pub const BASIC_KEY: u8 = 0x81;
pub const AUTHENTICATION_KEY: u8 = 0x82;
pub const NON_REPUDIATION_KEY: u8 = 0x83;

const PIN_TRIES: u8 = 3;
const INTERNAL_AUTHENTICATIONS_PER_PIN: u32 = 5000;

/// Everything a card is personalised with; see `personalise` for how it is built.
#[derive(Debug, Clone)]
pub struct CardContents {
    pub profile: Profile,
    /// The 16-byte serial of GET CARD DATA (the chip number).
    pub serial: Vec<u8>,
    /// The PIN digits (4 to 12 ASCII digits).
    pub pin: String,
    pub files: BTreeMap<FileId, Vec<u8>>,
    pub authentication_key: Option<TestKey>,
    pub non_repudiation_key: Option<TestKey>,
    /// Applet 1.8: the chip's own basic key, used by INTERNAL AUTHENTICATE.
    pub basic_key: Option<TestKey>,
}

/// What a reset clears: the selection, granted PIN rights, the security environment and any
/// response waiting for GET RESPONSE.
#[derive(Debug, Default)]
struct Session {
    current_df: Option<u16>,
    current_ef: Option<FileId>,
    pin_verified: bool,
    previous_command_verified_pin: bool,
    security_environment: Option<(u8, u8)>,
    pending_response: Vec<u8>,
}

/// A virtual Belgian eID card. Feed it command APDUs with [`VirtualCard::respond`].
#[derive(Debug)]
pub struct VirtualCard {
    contents: CardContents,
    pin_tries_left: u8,
    internal_authentications_left: u32,
    session: Session,
    transcript: Vec<Exchange>,
}

impl VirtualCard {
    pub fn new(contents: CardContents) -> VirtualCard {
        VirtualCard {
            contents,
            pin_tries_left: PIN_TRIES,
            internal_authentications_left: INTERNAL_AUTHENTICATIONS_PER_PIN,
            session: Session::default(),
            transcript: Vec::new(),
        }
    }

    pub fn profile(&self) -> Profile {
        self.contents.profile
    }

    /// The answer to reset of this card's generation.
    pub fn atr(&self) -> &'static [u8] {
        self.contents.profile.atr()
    }

    /// The content of a file as stored on the card.
    pub fn file(&self, id: FileId) -> Option<&[u8]> {
        self.contents.files.get(&id).map(Vec::as_slice)
    }

    pub fn pin_tries_left(&self) -> u8 {
        self.pin_tries_left
    }

    /// Every exchange since the card was made or the transcript was taken.
    pub fn transcript(&self) -> &[Exchange] {
        &self.transcript
    }

    pub fn take_transcript(&mut self) -> Vec<Exchange> {
        std::mem::take(&mut self.transcript)
    }

    /// Power off, power on or reset: the volatile state goes, the PIN counter stays.
    pub fn reset(&mut self) {
        self.session = Session::default();
    }

    /// Answers one command APDU with a response APDU (data ‖ SW1 SW2) and records the
    /// exchange (VERIFY data masked) in the transcript.
    pub fn respond(&mut self, apdu: &[u8]) -> Vec<u8> {
        let response = self.process(apdu);
        self.transcript.push(Exchange::record(apdu, &response));
        response
    }

    fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        // T=0: response data is available to the GET RESPONSE right after, and to nothing else.
        let pending = std::mem::take(&mut self.session.pending_response);
        let previous_command_verified_pin =
            std::mem::take(&mut self.session.previous_command_verified_pin);
        let Some(command) = Command::parse(apdu) else {
            return sw::WRONG_LENGTH.to_vec();
        };
        match (command.cla, command.ins) {
            (0x00, ins::GET_RESPONSE) => self.get_response(&command, pending),
            (0x00, ins::SELECT) => self.select(&command),
            (0x00, ins::READ_BINARY) => self.read_binary(&command),
            (0x00, ins::VERIFY) => self.verify(&command),
            (0x00, ins::MANAGE_SECURITY_ENVIRONMENT) => self.manage_security_environment(&command),
            (0x00, ins::PERFORM_SECURITY_OPERATION) => {
                self.compute_digital_signature(&command, previous_command_verified_pin)
            }
            (0x00, ins::INTERNAL_AUTHENTICATE) => self.internal_authenticate(&command),
            (0x80, ins::GET_CARD_DATA) => self.get_card_data(&command),
            (0x80, ins::LOG_OFF) => {
                self.session.pin_verified = false;
                sw::OK.to_vec()
            }
            (
                0x00 | 0x80,
                ins::GET_RESPONSE
                | ins::SELECT
                | ins::READ_BINARY
                | ins::VERIFY
                | ins::MANAGE_SECURITY_ENVIRONMENT
                | ins::PERFORM_SECURITY_OPERATION
                | ins::INTERNAL_AUTHENTICATE
                | ins::GET_CARD_DATA
                | ins::LOG_OFF,
            ) => sw::CLA_NOT_SUPPORTED.to_vec(),
            (0x00 | 0x80, _) => sw::INS_NOT_SUPPORTED.to_vec(),
            _ => sw::CLA_NOT_SUPPORTED.to_vec(),
        }
    }

    fn get_response(&mut self, command: &Command<'_>, mut pending: Vec<u8>) -> Vec<u8> {
        if pending.is_empty() {
            return sw::CONDITIONS_OF_USE_NOT_SATISFIED.to_vec();
        }
        if (command.p1, command.p2) != (0, 0) {
            return sw::INCORRECT_P1_P2.to_vec();
        }
        let wanted = command.expected_length();
        if wanted > pending.len() {
            let exact = pending.len();
            self.session.pending_response = pending;
            return sw::wrong_le(exact).to_vec();
        }
        let rest = pending.split_off(wanted);
        let status = if rest.is_empty() {
            sw::OK
        } else {
            sw::bytes_available(rest.len())
        };
        self.session.pending_response = rest;
        with_status(pending, status)
    }

    fn select(&mut self, command: &Command<'_>) -> Vec<u8> {
        if !matches!(command.p2, 0x00 | 0x0C) {
            return sw::INCORRECT_P1_P2.to_vec();
        }
        let target = match command.p1 {
            0x04 => match command.data {
                data if data == APPLET_AID => Some((None, None)),
                data if data == BELPIC_AID => Some((Some(BELPIC_DF), None)),
                data if data == ID_AID => Some((Some(ID_DF), None)),
                _ => None,
            },
            0x00 | 0x02 | 0x08 | 0x09 => {
                if command.data.is_empty() || !command.data.len().is_multiple_of(2) {
                    return sw::WRONG_LENGTH.to_vec();
                }
                if matches!(command.p1, 0x00 | 0x02) && command.data.len() != 2 {
                    return sw::WRONG_LENGTH.to_vec();
                }
                let fids: Vec<u16> = command
                    .data
                    .chunks(2)
                    .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
                    .collect();
                // P1 08 is a path from the MF (with or without 3F00 in front); the others
                // start where we are.
                let start = if command.p1 == 0x08 {
                    None
                } else {
                    self.session.current_df
                };
                self.resolve(start, &fids)
            }
            _ => return sw::INCORRECT_P1_P2.to_vec(),
        };
        match target {
            Some((df, ef)) => {
                self.session.current_df = df;
                self.session.current_ef = ef;
                sw::OK.to_vec()
            }
            None => sw::FILE_NOT_FOUND.to_vec(),
        }
    }

    /// Walks `fids` from `start` (None = MF): 3F00 goes to the MF, DF00/DF01 are reachable from
    /// anywhere (as on the real card, where the middleware's FID-chain select relies on it),
    /// anything else must be an EF of the current DF and ends the walk.
    fn resolve(&self, start: Option<u16>, fids: &[u16]) -> Option<(Option<u16>, Option<FileId>)> {
        let mut df = start;
        let mut ef = None;
        for &fid in fids {
            if ef.is_some() {
                return None;
            }
            match fid {
                MASTER_FILE => df = None,
                BELPIC_DF | ID_DF => df = Some(fid),
                _ => {
                    let id = FileId { df: df?, ef: fid };
                    self.contents.files.contains_key(&id).then_some(())?;
                    ef = Some(id);
                }
            }
        }
        Some((df, ef))
    }

    fn read_binary(&mut self, command: &Command<'_>) -> Vec<u8> {
        if !command.data.is_empty() {
            return sw::WRONG_LENGTH.to_vec();
        }
        if command.p1 & 0x80 != 0 {
            // Short-EF-identifier addressing: the Belpic applet has none.
            return sw::INCORRECT_P1_P2.to_vec();
        }
        let Some(content) = self
            .session
            .current_ef
            .and_then(|id| self.contents.files.get(&id))
        else {
            return sw::COMMAND_NOT_ALLOWED_NO_CURRENT_EF.to_vec();
        };
        let offset = usize::from(u16::from_be_bytes([command.p1, command.p2]));
        if offset >= content.len() {
            return sw::WRONG_OFFSET.to_vec();
        }
        let remaining = content.len() - offset;
        let wanted = command.expected_length();
        if wanted > remaining {
            return sw::wrong_le(remaining).to_vec();
        }
        with_status(content[offset..offset + wanted].to_vec(), sw::OK)
    }

    fn get_card_data(&mut self, command: &Command<'_>) -> Vec<u8> {
        let extended = match (command.p1, command.p2, self.contents.profile) {
            (0x00, 0x00, _) => false,
            (0x00, 0x01, Profile::Applet18) => true,
            _ => return sw::INCORRECT_P1_P2.to_vec(),
        };
        let mut data = self.contents.serial.clone();
        data.resize(16, 0);
        data.extend_from_slice(&[
            0xD0, // component code
            0x01, // OS number
            0x01, // OS version
            0x01, // softmask number
            0x01, // softmask version
            self.contents.profile.applet_version(),
            0x00, // global OS version (2 bytes); 00 01 would ask readers for V1 delays
            0x02,
            0x01, // applet interface version
            0x01, // PKCS#1 support
            0x01, // key exchange version
            0x0F, // life cycle: personalised
        ]);
        if extended {
            // PIN 1 tries left; FF = the separate PINs 2 and 3 are not in use.
            data.extend_from_slice(&[self.pin_tries_left, 0xFF, 0xFF]);
        }
        if command.le != Some(data.len() as u8) {
            return sw::wrong_le(data.len()).to_vec();
        }
        with_status(data, sw::OK)
    }

    fn verify(&mut self, command: &Command<'_>) -> Vec<u8> {
        if command.p1 != 0x00 || command.p2 != 0x01 {
            return sw::REFERENCED_DATA_NOT_FOUND.to_vec();
        }
        let blocked = self.pin_tries_left == 0;
        // No data (P3 = 00): the PIN status, without spending a try.
        if command.data.is_empty() {
            if command.le.is_some_and(|p3| p3 != 0) {
                return sw::WRONG_LENGTH.to_vec();
            }
            return match (blocked, self.session.pin_verified) {
                (true, _) => sw::AUTHENTICATION_METHOD_BLOCKED.to_vec(),
                (false, true) => sw::OK.to_vec(),
                (false, false) => sw::wrong_pin(self.pin_tries_left).to_vec(),
            };
        }
        if command.data.len() != 8 {
            return sw::WRONG_LENGTH.to_vec();
        }
        if blocked {
            return sw::AUTHENTICATION_METHOD_BLOCKED.to_vec();
        }
        let Some(offered) = decode_pin_block(command.data) else {
            return sw::WRONG_DATA.to_vec();
        };
        if offered == self.contents.pin {
            self.pin_tries_left = PIN_TRIES;
            self.internal_authentications_left = INTERNAL_AUTHENTICATIONS_PER_PIN;
            self.session.pin_verified = true;
            self.session.previous_command_verified_pin = true;
            return sw::OK.to_vec();
        }
        self.pin_tries_left -= 1;
        self.session.pin_verified = false;
        sw::wrong_pin(self.pin_tries_left).to_vec()
    }

    fn manage_security_environment(&mut self, command: &Command<'_>) -> Vec<u8> {
        if (command.p1, command.p2) != (0x41, 0xB6) {
            return sw::INCORRECT_P1_P2.to_vec();
        }
        let &[0x04, 0x80, algorithm, 0x84, key] = command.data else {
            return sw::WRONG_DATA.to_vec();
        };
        let key_present = match key {
            AUTHENTICATION_KEY => self.contents.authentication_key.is_some(),
            NON_REPUDIATION_KEY => self.contents.non_repudiation_key.is_some(),
            _ => false,
        };
        if !key_present {
            return sw::REFERENCED_DATA_NOT_FOUND.to_vec();
        }
        if digest_length(self.contents.profile, algorithm).is_none() {
            return sw::WRONG_DATA.to_vec();
        }
        self.session.security_environment = Some((algorithm, key));
        sw::OK.to_vec()
    }

    fn compute_digital_signature(
        &mut self,
        command: &Command<'_>,
        previous_command_verified_pin: bool,
    ) -> Vec<u8> {
        if (command.p1, command.p2) != (0x9E, 0x9A) {
            return sw::INCORRECT_P1_P2.to_vec();
        }
        let Some((algorithm, key_reference)) = self.session.security_environment else {
            return sw::CONDITIONS_OF_USE_NOT_SATISFIED.to_vec();
        };
        let (allowed, key) = match key_reference {
            AUTHENTICATION_KEY => (
                self.session.pin_verified,
                self.contents.authentication_key.as_ref(),
            ),
            _ => (
                previous_command_verified_pin,
                self.contents.non_repudiation_key.as_ref(),
            ),
        };
        if !allowed {
            return sw::SECURITY_STATUS_NOT_SATISFIED.to_vec();
        }
        let Some(key) = key else {
            return sw::REFERENCED_DATA_NOT_FOUND.to_vec();
        };
        let Some(signature) = sign_digest(self.contents.profile, key, algorithm, command.data)
        else {
            return sw::WRONG_LENGTH.to_vec();
        };
        self.hand_out(signature)
    }

    fn internal_authenticate(&mut self, command: &Command<'_>) -> Vec<u8> {
        if self.contents.profile == Profile::Applet17 {
            return sw::INS_NOT_SUPPORTED.to_vec();
        }
        if command.p1 != 0x02 {
            return sw::INCORRECT_P1_P2.to_vec();
        }
        if command.p2 != BASIC_KEY {
            return sw::REFERENCED_DATA_NOT_FOUND.to_vec();
        }
        let [0x94, 0x30, challenge @ ..] = command.data else {
            return sw::WRONG_DATA.to_vec();
        };
        if challenge.len() != 48 {
            return sw::WRONG_LENGTH.to_vec();
        }
        if self.internal_authentications_left == 0 {
            return sw::CONDITIONS_OF_USE_NOT_SATISFIED.to_vec();
        }
        let Some(signature) = self
            .contents
            .basic_key
            .as_ref()
            .and_then(|key| key.sign_ec_prehash(challenge))
        else {
            return sw::REFERENCED_DATA_NOT_FOUND.to_vec();
        };
        self.internal_authentications_left -= 1;
        self.hand_out(signature)
    }

    /// Keeps `data` for GET RESPONSE and answers `61xx`.
    fn hand_out(&mut self, data: Vec<u8>) -> Vec<u8> {
        let status = sw::bytes_available(data.len());
        self.session.pending_response = data;
        status.to_vec()
    }
}

fn with_status(mut data: Vec<u8>, status: [u8; 2]) -> Vec<u8> {
    data.extend_from_slice(&status);
    data
}
