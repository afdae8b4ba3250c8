//! The command APDUs of the Belpic applet (applets 1.7 and 1.8), the files they address, the
//! [`Pin`] that never shows itself, and status words with what they mean.
//!
//! Builders return a [`Command`] (header, data, optional Le) rather than bytes so that the
//! session can resend a command with another Le after `6Cxx`, and so that `Debug` can hide the
//! data of a VERIFY. Only the authentication key (`82`) can be selected for signing: there is
//! deliberately no way to build an MSE SET for the non-repudiation key `83`, whose signatures are
//! legally binding.

use std::fmt;

/// The Belpic applet's AID.
pub const BELPIC_AID: [u8; 15] = [
    0xA0, 0x00, 0x00, 0x00, 0x30, 0x29, 0x05, 0x70, 0x00, 0xAD, 0x13, 0x10, 0x01, 0x01, 0xFF,
];

/// The most bytes READ BINARY asks for at once (what the Fedict middleware uses).
pub const READ_CHUNK: u8 = 252;

/// A command APDU.
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: Vec<u8>,
    /// The expected response length; `Some(0)` means 256.
    pub le: Option<u8>,
    /// True when `data` is secret (a PIN block): `Debug` then hides it.
    pub secret: bool,
}

impl Command {
    fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Command {
        Command {
            cla,
            ins,
            p1,
            p2,
            data: Vec::new(),
            le: None,
            secret: false,
        }
    }

    fn data(mut self, data: Vec<u8>) -> Command {
        self.data = data;
        self
    }

    fn le(mut self, le: u8) -> Command {
        self.le = Some(le);
        self
    }

    /// The same command asking for exactly `le` bytes (after a `6Cxx`).
    pub fn with_le(&self, le: u8) -> Command {
        Command {
            le: Some(le),
            ..self.clone()
        }
    }

    /// The short-APDU encoding: `CLA INS P1 P2 [Lc data] [Le]`. Data never exceeds 255 bytes
    /// because every builder here bounds it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = vec![self.cla, self.ins, self.p1, self.p2];
        if !self.data.is_empty() {
            bytes.push(self.data.len() as u8);
            bytes.extend_from_slice(&self.data);
        }
        bytes.extend(self.le);
        bytes
    }

    /// The command's name, for error messages.
    pub fn name(&self) -> &'static str {
        match (self.cla, self.ins) {
            (_, 0xA4) => "SELECT",
            (_, 0xB0) => "READ BINARY",
            (_, 0xC0) => "GET RESPONSE",
            (0x80, 0xE4) => "GET CARD DATA",
            (_, 0x20) => "VERIFY PIN",
            (_, 0x22) => "MSE SET",
            (_, 0x2A) => "PSO: COMPUTE DIGITAL SIGNATURE",
            (_, 0x88) => "INTERNAL AUTHENTICATE",
            (0x80, 0xE6) => "LOG OFF",
            _ => "a command",
        }
    }
}

impl fmt::Debug for Command {
    /// Hex, with the data of a secret command (VERIFY) replaced by `**`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02X} {:02X} {:02X} {:02X}",
            self.cla, self.ins, self.p1, self.p2
        )?;
        if !self.data.is_empty() {
            write!(f, " {:02X}", self.data.len())?;
            if self.secret {
                write!(f, " **")?;
            } else {
                for byte in &self.data {
                    write!(f, " {byte:02X}")?;
                }
            }
        }
        if let Some(le) = self.le {
            write!(f, " {le:02X}")?;
        }
        Ok(())
    }
}

/// A file on the card as its path of file identifiers from the master file `3F00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilePath(pub &'static [u16]);

impl FilePath {
    pub const IDENTITY: FilePath = FilePath(&[0x3F00, 0xDF01, 0x4031]);
    pub const IDENTITY_SIGNATURE: FilePath = FilePath(&[0x3F00, 0xDF01, 0x4032]);
    pub const ADDRESS: FilePath = FilePath(&[0x3F00, 0xDF01, 0x4033]);
    pub const ADDRESS_SIGNATURE: FilePath = FilePath(&[0x3F00, 0xDF01, 0x4034]);
    pub const PHOTO: FilePath = FilePath(&[0x3F00, 0xDF01, 0x4035]);
    /// The chip's basic public key (applet 1.8 only).
    pub const BASIC_KEY: FilePath = FilePath(&[0x3F00, 0xDF01, 0x4040]);
    pub const AUTHENTICATION_CERTIFICATE: FilePath = FilePath(&[0x3F00, 0xDF00, 0x5038]);
    pub const CITIZEN_CA_CERTIFICATE: FilePath = FilePath(&[0x3F00, 0xDF00, 0x503A]);
    pub const ROOT_CERTIFICATE: FilePath = FilePath(&[0x3F00, 0xDF00, 0x503B]);
    pub const RRN_CERTIFICATE: FilePath = FilePath(&[0x3F00, 0xDF00, 0x503C]);
    /// The folder of the certificates and private keys (selected before signing).
    pub const CERTIFICATES_FOLDER: FilePath = FilePath(&[0x3F00, 0xDF00]);
}

impl fmt::Display for FilePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, fid) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("/")?;
            }
            write!(f, "{fid:04X}")?;
        }
        Ok(())
    }
}

/// SELECT of the Belpic applet by AID, without FCI.
pub fn select_applet() -> Command {
    Command::new(0x00, 0xA4, 0x04, 0x0C).data(BELPIC_AID.to_vec())
}

/// SELECT of one file identifier below the current folder (`00 A4 02 0C 02 FID`), without FCI.
/// Selecting each identifier of a path in turn works on every applet version.
pub fn select_file(fid: u16) -> Command {
    Command::new(0x00, 0xA4, 0x02, 0x0C).data(fid.to_be_bytes().to_vec())
}

/// SELECT by absolute path (`00 A4 08 0C`), the path written without the leading `3F00`.
pub fn select_path(path: FilePath) -> Command {
    let data = path
        .0
        .iter()
        .skip_while(|&&fid| fid == 0x3F00)
        .take(127)
        .flat_map(|fid| fid.to_be_bytes())
        .collect();
    Command::new(0x00, 0xA4, 0x08, 0x0C).data(data)
}

/// READ BINARY of `length` bytes at `offset` (at most `7FFF`: P1's top bit would mean a short
/// file identifier).
pub fn read_binary(offset: u16, length: u8) -> Command {
    let [high, low] = (offset & 0x7FFF).to_be_bytes();
    Command::new(0x00, 0xB0, high, low).le(length)
}

/// GET RESPONSE for `length` bytes (`0` = 256), after a `61xx`.
pub fn get_response(length: u8) -> Command {
    Command::new(0x00, 0xC0, 0x00, 0x00).le(length)
}

/// GET CARD DATA: 28 bytes of chip, OS and applet facts (`80 E4 00 00 1C`).
pub fn get_card_data() -> Command {
    Command::new(0x80, 0xE4, 0x00, 0x00).le(0x1C)
}

/// GET CARD DATA with P2 `01` (applet 1.8): 31 bytes, byte 28 the PIN tries left.
pub fn get_card_data_with_pin_tries() -> Command {
    Command::new(0x80, 0xE4, 0x00, 0x01).le(0x1F)
}

/// VERIFY of the cardholder PIN (reference 01) with the 8-byte PIN block: nibble `2`, nibble
/// length, the digits, `F` padding. The command is marked secret.
pub fn verify_pin(pin: &Pin) -> Command {
    let digits = pin.0.as_bytes();
    let mut nibbles = vec![0x2, digits.len() as u8];
    nibbles.extend(digits.iter().map(|digit| digit - b'0'));
    nibbles.resize(16, 0xF);
    let block = nibbles
        .chunks(2)
        .map(|pair| (pair[0] << 4) | pair[1])
        .collect();
    let mut command = Command::new(0x00, 0x20, 0x00, 0x01).data(block);
    command.secret = true;
    command
}

/// The signature algorithms the authentication key is used with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthenticationAlgorithm {
    /// Applet 1.7 (RSA-2048): PKCS#1 v1.5; the card adds the SHA-256 DigestInfo to a 32-byte
    /// digest (algorithm reference `08`).
    RsaPkcs1Sha256,
    /// Applet 1.8 (ECDSA P-384): the card signs a 48-byte SHA-384 digest and answers `r‖s`
    /// (algorithm reference `02`).
    EcdsaSha384,
}

impl AuthenticationAlgorithm {
    /// The algorithm reference for MSE SET.
    pub fn reference(self) -> u8 {
        match self {
            AuthenticationAlgorithm::RsaPkcs1Sha256 => 0x08,
            AuthenticationAlgorithm::EcdsaSha384 => 0x02,
        }
    }

    /// How long the digest handed to PSO must be.
    pub fn digest_len(self) -> usize {
        match self {
            AuthenticationAlgorithm::RsaPkcs1Sha256 => 32,
            AuthenticationAlgorithm::EcdsaSha384 => 48,
        }
    }

    /// The algorithm of an applet version from GET CARD DATA (`0x18` and later are ECDSA).
    pub fn for_applet(applet_version: u8) -> AuthenticationAlgorithm {
        if applet_version >= 0x18 {
            AuthenticationAlgorithm::EcdsaSha384
        } else {
            AuthenticationAlgorithm::RsaPkcs1Sha256
        }
    }
}

/// MSE SET of the signing environment for the authentication key `82`.
pub fn mse_set_authentication(algorithm: AuthenticationAlgorithm) -> Command {
    Command::new(0x00, 0x22, 0x41, 0xB6).data(vec![0x04, 0x80, algorithm.reference(), 0x84, 0x82])
}

/// PSO: COMPUTE DIGITAL SIGNATURE over a digest, without Le (T=0 answers `61xx`). The digest
/// is at most 255 bytes (callers pass 32 or 48).
pub fn pso_compute_digital_signature(digest: &[u8]) -> Command {
    Command::new(0x00, 0x2A, 0x9E, 0x9A).data(digest.iter().copied().take(255).collect())
}

/// INTERNAL AUTHENTICATE with the basic key `81` over a 48-byte challenge (applet 1.8).
pub fn internal_authenticate(challenge: &[u8; 48]) -> Command {
    let mut data = vec![0x94, 0x30];
    data.extend_from_slice(challenge);
    Command::new(0x00, 0x88, 0x02, 0x81).data(data)
}

/// LOG OFF: the card forgets that the PIN was verified.
pub fn log_off() -> Command {
    Command::new(0x80, 0xE6, 0x00, 0x00)
}

/// The cardholder PIN: 4 to 12 digits. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Pin(String);

/// Why a PIN was not accepted before it went to the card.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("a PIN has 4 to 12 digits")]
    WrongLength,
    #[error("a PIN has only digits")]
    NotDigits,
}

impl Pin {
    pub fn new(digits: &str) -> Result<Pin, PinError> {
        if !digits.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(PinError::NotDigits);
        }
        if !(4..=12).contains(&digits.len()) {
            return Err(PinError::WrongLength);
        }
        Ok(Pin(digits.to_owned()))
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(****)")
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// The two status bytes that end every card response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusWord(pub u16);

impl StatusWord {
    pub const SUCCESS: StatusWord = StatusWord(0x9000);
    pub const FILE_NOT_FOUND: StatusWord = StatusWord(0x6A82);

    pub fn sw1(self) -> u8 {
        (self.0 >> 8) as u8
    }

    pub fn sw2(self) -> u8 {
        self.0 as u8
    }

    /// What the status means, in words (for logs and error messages).
    pub fn meaning(self) -> &'static str {
        match self.0 {
            0x9000 => "success",
            0x6700 => "wrong length",
            0x6581 => "memory failure",
            0x6881 | 0x6E00 => "class not supported",
            0x6982 => "security status not satisfied",
            0x6983 => "PIN blocked",
            0x6985 => "conditions of use not satisfied",
            0x6986 => "command not allowed",
            0x6A80 => "incorrect data",
            0x6A82 => "file not found",
            0x6A86 => "incorrect parameters",
            0x6A88 => "key or PIN reference not found",
            0x6B00 => "offset beyond the end of the file",
            0x6D00 => "instruction not supported or card not activated",
            word if word & 0xFFF0 == 0x63C0 => "wrong PIN",
            word if word & 0xFF00 == 0x6100 => "more data available",
            word if word & 0xFF00 == 0x6C00 => "wrong expected length",
            _ => "unknown status",
        }
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X} ({})", self.0, self.meaning())
    }
}
