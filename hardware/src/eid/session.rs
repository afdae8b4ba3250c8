//! A conversation with a Belgian eID over any [`Transmit`]: the PC/SC driver, a virtual card in
//! tests, or a scripted mock.
//!
//! The card speaks T=0, whose quirks this session absorbs so that readers that absorb them
//! themselves and readers that do not behave alike: `61xx` is followed by GET RESPONSE (again
//! while the card says `61xx`), `6Cxx` by the same command with the exact Le. Files are read in
//! chunks of [`READ_CHUNK`] bytes until a short chunk or `6B00`; a DER file (a certificate,
//! zero-padded to a fixed size on the card) only until the length its header announces, so the
//! padding costs no READ BINARY.
//!
//! The session does not log: the PIN block goes through [`Transmit::transmit`] and nowhere else.
//! Errors of the transport (a card pulled mid-read) come back unchanged as
//! [`SessionError::Transmit`], never as a half-read file.

use super::apdu::{self, AuthenticationAlgorithm, Command, FilePath, Pin, READ_CHUNK, StatusWord};
use super::certificate::{DerLength, der_announced_len};
use super::verify::CardFiles;

#[cfg(test)]
mod tests;

/// Sends one command APDU to the card and returns the response APDU (data ‖ SW1 SW2).
pub trait Transmit {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransmitError>;
}

impl<T: Transmit + ?Sized> Transmit for &mut T {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransmitError> {
        (**self).transmit(command)
    }
}

/// Why the transport could not exchange an APDU.
#[derive(Debug, thiserror::Error)]
pub enum TransmitError {
    #[error("the card was removed from the reader")]
    CardRemoved,
    #[error("the card was reset by another program")]
    CardReset,
    #[error("the card reader failed")]
    Reader {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Why a session with the card failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Transmit(#[from] TransmitError),
    #[error("the card answered {command} with {len} bytes, too few for a status word")]
    NoStatusWord { command: &'static str, len: usize },
    #[error("the card refused {command}: status {status}")]
    Refused {
        command: &'static str,
        status: StatusWord,
    },
    #[error("the card's answer to {command} is longer than {limit} bytes")]
    ResponseTooLong { command: &'static str, limit: usize },
    #[error("the card answered READ BINARY of {asked} bytes with {got} bytes")]
    ChunkTooLong { asked: usize, got: usize },
    #[error("file {path} is larger than {limit} bytes")]
    FileTooLarge { path: FilePath, limit: usize },
    #[error(
        "file {path} announces a DER element of {announced} bytes, more than a file can hold ({limit})"
    )]
    DerTooLong {
        path: FilePath,
        announced: usize,
        limit: usize,
    },
    #[error(
        "file {path} ends after {len} bytes, before the {announced} bytes its DER header announces"
    )]
    DerTruncated {
        path: FilePath,
        len: usize,
        announced: usize,
    },
    #[error("file {path} ends after {len} bytes, inside its DER header")]
    DerHeaderTruncated { path: FilePath, len: usize },
    #[error("the card data is {len} bytes long, fewer than {expected}")]
    ShortCardData { len: usize, expected: usize },
    #[error("wrong PIN: {tries_left} tries left")]
    WrongPin { tries_left: u8 },
    #[error("the PIN is blocked")]
    PinBlocked,
    #[error("a digest for {algorithm:?} has {expected} bytes, not {actual}")]
    DigestLength {
        algorithm: AuthenticationAlgorithm,
        expected: usize,
        actual: usize,
    },
}

/// A response APDU split into data and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub data: Vec<u8>,
    pub status: StatusWord,
}

/// The answer to GET CARD DATA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardData {
    pub serial_number: [u8; 16],
    pub component_code: u8,
    pub os_number: u8,
    pub os_version: u8,
    pub softmask_number: u8,
    pub softmask_version: u8,
    /// `0x17` for applet 1.7 (RSA), `0x18` for applet 1.8 (ECDSA).
    pub applet_version: u8,
    pub global_os_version: u16,
    pub applet_interface_version: u8,
    pub pkcs1_support: u8,
    pub key_exchange_version: u8,
    /// `0x07` selectable, `0x0F` personalised.
    pub life_cycle: u8,
}

impl CardData {
    pub fn parse(bytes: &[u8]) -> Result<CardData, SessionError> {
        let Some(bytes) = bytes.get(..28) else {
            return Err(SessionError::ShortCardData {
                len: bytes.len(),
                expected: 28,
            });
        };
        let mut serial_number = [0; 16];
        serial_number.copy_from_slice(&bytes[..16]);
        Ok(CardData {
            serial_number,
            component_code: bytes[16],
            os_number: bytes[17],
            os_version: bytes[18],
            softmask_number: bytes[19],
            softmask_version: bytes[20],
            applet_version: bytes[21],
            global_os_version: u16::from_be_bytes([bytes[22], bytes[23]]),
            applet_interface_version: bytes[24],
            pkcs1_support: bytes[25],
            key_exchange_version: bytes[26],
            life_cycle: bytes[27],
        })
    }

    /// The signature algorithm of the card's authentication key.
    pub fn authentication_algorithm(&self) -> AuthenticationAlgorithm {
        AuthenticationAlgorithm::for_applet(self.applet_version)
    }

    /// Applet 1.8 cards have a basic key (`4040`) and answer INTERNAL AUTHENTICATE.
    pub fn has_basic_key(&self) -> bool {
        self.applet_version >= 0x18
    }
}

/// The most GET RESPONSE rounds one command may need (a 256-byte RSA signature needs one).
const MAX_GET_RESPONSES: usize = 32;
/// The most bytes one command's response may gather over its GET RESPONSE rounds.
const MAX_RESPONSE: usize = 8 * 1024;
/// The highest offset READ BINARY can address.
const MAX_OFFSET: usize = 0x7FFF;
/// The most bytes a DER file may announce: every byte of it must be addressable.
const MAX_DER_FILE: usize = MAX_OFFSET + 1;

/// A session with one card. Owns (or borrows, through `&mut T`) the transport.
#[derive(Debug)]
pub struct CardSession<T> {
    transport: T,
}

impl<T: Transmit> CardSession<T> {
    pub fn new(transport: T) -> CardSession<T> {
        CardSession { transport }
    }

    pub fn into_transport(self) -> T {
        self.transport
    }

    fn exchange(&mut self, command: &Command) -> Result<Response, SessionError> {
        let mut reply = self.transport.transmit(&command.to_bytes())?;
        let len = reply.len();
        if len < 2 {
            return Err(SessionError::NoStatusWord {
                command: command.name(),
                len,
            });
        }
        let status = StatusWord(u16::from_be_bytes([reply[len - 2], reply[len - 1]]));
        reply.truncate(len - 2);
        Ok(Response {
            data: reply,
            status,
        })
    }

    /// Sends a command and follows the T=0 rules: one resend with the exact Le after `6Cxx`,
    /// GET RESPONSE while `61xx`. The returned status is the last one the card gave.
    pub fn transceive(&mut self, command: &Command) -> Result<Response, SessionError> {
        let mut response = self.exchange(command)?;
        if response.status.sw1() == 0x6C {
            response = self.exchange(&command.with_le(response.status.sw2()))?;
        }
        let mut rounds = 0;
        while response.status.sw1() == 0x61 {
            rounds += 1;
            if rounds > MAX_GET_RESPONSES || response.data.len() > MAX_RESPONSE {
                return Err(SessionError::ResponseTooLong {
                    command: command.name(),
                    limit: MAX_RESPONSE,
                });
            }
            let get_response = apdu::get_response(response.status.sw2());
            let mut part = self.exchange(&get_response)?;
            if part.status.sw1() == 0x6C {
                part = self.exchange(&get_response.with_le(part.status.sw2()))?;
            }
            response.data.extend_from_slice(&part.data);
            response.status = part.status;
        }
        if response.data.len() > MAX_RESPONSE {
            return Err(SessionError::ResponseTooLong {
                command: command.name(),
                limit: MAX_RESPONSE,
            });
        }
        Ok(response)
    }

    /// Sends a command that must succeed and returns its data.
    fn expect_success(&mut self, command: &Command) -> Result<Vec<u8>, SessionError> {
        let response = self.transceive(command)?;
        if response.status != StatusWord::SUCCESS {
            return Err(SessionError::Refused {
                command: command.name(),
                status: response.status,
            });
        }
        Ok(response.data)
    }

    /// Selects the Belpic applet (it is selected after a reset, but another program may have
    /// selected something else).
    pub fn select_applet(&mut self) -> Result<(), SessionError> {
        self.expect_success(&apdu::select_applet()).map(drop)
    }

    /// Selects a file or folder by path; if the card does not understand the path form
    /// (`6A82`, `6A86`), by each file identifier in turn from `3F00`.
    pub fn select(&mut self, path: FilePath) -> Result<(), SessionError> {
        let by_path = apdu::select_path(path);
        let response = self.transceive(&by_path)?;
        match response.status.0 {
            0x9000 => return Ok(()),
            0x6A82 | 0x6A86 => {}
            _ => {
                return Err(SessionError::Refused {
                    command: by_path.name(),
                    status: response.status,
                });
            }
        }
        for &fid in path.0 {
            self.expect_success(&apdu::select_file(fid))?;
        }
        Ok(())
    }

    /// Selects and reads a whole transparent file.
    pub fn read_file(&mut self, path: FilePath) -> Result<Vec<u8>, SessionError> {
        self.select(path)?;
        let mut contents = Vec::new();
        while let Some(chunk) = self.read_chunk(path, contents.len(), usize::from(READ_CHUNK))? {
            let short = chunk.len() < usize::from(READ_CHUNK);
            contents.extend_from_slice(&chunk);
            if short {
                break;
            }
        }
        Ok(contents)
    }

    /// One READ BINARY of at most `wanted` bytes at `offset` of the selected file; `None` past
    /// its end (`6B00`, after the first chunk).
    fn read_chunk(
        &mut self,
        path: FilePath,
        offset: usize,
        wanted: usize,
    ) -> Result<Option<Vec<u8>>, SessionError> {
        if offset > MAX_OFFSET {
            return Err(SessionError::FileTooLarge {
                path,
                limit: MAX_OFFSET,
            });
        }
        let command = apdu::read_binary(offset as u16, wanted as u8);
        let response = self.transceive(&command)?;
        match response.status.0 {
            0x9000 => {}
            0x6B00 if offset > 0 => return Ok(None),
            _ => {
                return Err(SessionError::Refused {
                    command: command.name(),
                    status: response.status,
                });
            }
        }
        let got = response.data.len();
        if got > wanted {
            return Err(SessionError::ChunkTooLong { asked: wanted, got });
        }
        Ok(Some(response.data))
    }

    /// Selects and reads a file that holds one DER element followed by zero padding (the
    /// certificate files `DF00/5038`, `503A`, `503C`): READ BINARY stops once the length the
    /// element's header announces is read, and the last one asks for no more than what is left.
    /// Returns the element without its padding.
    ///
    /// With no DER header to go by, the bytes read so far come back for the verifier to judge:
    /// a first chunk of zeros only (an absent certificate, as on a Kids-ID without
    /// authentication certificate, which [`super::X509Certificate::from_card_file`] reports as
    /// absent), or a header that is not DER. A file that ends before its announced length is
    /// [`SessionError::DerTruncated`] (or [`SessionError::DerHeaderTruncated`]), one that
    /// announces more than READ BINARY can address is [`SessionError::DerTooLong`].
    pub fn read_der_file(&mut self, path: FilePath) -> Result<Vec<u8>, SessionError> {
        self.select(path)?;
        let mut contents = Vec::new();
        let mut announced = None;
        loop {
            let offset = contents.len();
            let wanted = match announced {
                Some(total) if offset >= total => break,
                Some(total) => usize::from(READ_CHUNK).min(total - offset),
                None => usize::from(READ_CHUNK),
            };
            let Some(chunk) = self.read_chunk(path, offset, wanted)? else {
                break;
            };
            let got = chunk.len();
            contents.extend_from_slice(&chunk);
            if announced.is_none() {
                if contents.iter().all(|&byte| byte == 0) {
                    return Ok(contents);
                }
                match der_announced_len(&contents) {
                    DerLength::Announced(total) if total > MAX_DER_FILE => {
                        return Err(SessionError::DerTooLong {
                            path,
                            announced: total,
                            limit: MAX_DER_FILE,
                        });
                    }
                    DerLength::Announced(total) => announced = Some(total),
                    DerLength::NotDer => return Ok(contents),
                    DerLength::HeaderIncomplete => {}
                }
            }
            if got < wanted {
                break;
            }
        }
        match announced {
            Some(total) if contents.len() < total => Err(SessionError::DerTruncated {
                path,
                len: contents.len(),
                announced: total,
            }),
            Some(total) => {
                contents.truncate(total);
                Ok(contents)
            }
            None => Err(SessionError::DerHeaderTruncated {
                path,
                len: contents.len(),
            }),
        }
    }

    /// Reads every file that [`super::verify::verify_card`] checks, in one go: a card pulled
    /// half-way gives the transport's error, never a partial set. The RRN certificate comes
    /// without its padding ([`CardSession::read_der_file`]).
    pub fn read_card_files(&mut self) -> Result<CardFiles, SessionError> {
        Ok(CardFiles {
            identity: self.read_file(FilePath::IDENTITY)?,
            identity_signature: self.read_file(FilePath::IDENTITY_SIGNATURE)?,
            address: self.read_file(FilePath::ADDRESS)?,
            address_signature: self.read_file(FilePath::ADDRESS_SIGNATURE)?,
            photo: self.read_file(FilePath::PHOTO)?,
            rrn_certificate: self.read_der_file(FilePath::RRN_CERTIFICATE)?,
        })
    }

    /// GET CARD DATA: chip and applet facts, among which the applet version.
    pub fn card_data(&mut self) -> Result<CardData, SessionError> {
        CardData::parse(&self.expect_success(&apdu::get_card_data())?)
    }

    /// Applet 1.8 only: how many PIN tries are left, without spending one (GET CARD DATA with
    /// P2 `01`, byte 28). Older applets refuse the command; there, an empty VERIFY would count
    /// as a wrong PIN on V1.1 cards, so this session offers no such probe.
    pub fn pin_tries_left(&mut self) -> Result<u8, SessionError> {
        let data = self.expect_success(&apdu::get_card_data_with_pin_tries())?;
        data.get(28).copied().ok_or(SessionError::ShortCardData {
            len: data.len(),
            expected: 29,
        })
    }

    /// VERIFY of the cardholder PIN. A wrong PIN is [`SessionError::WrongPin`] with the tries
    /// left; none left, or already blocked, is [`SessionError::PinBlocked`].
    pub fn verify_pin(&mut self, pin: &Pin) -> Result<(), SessionError> {
        let command = apdu::verify_pin(pin);
        let status = self.transceive(&command)?.status;
        match status.0 {
            0x9000 => Ok(()),
            0x6983 | 0x63C0 => Err(SessionError::PinBlocked),
            word if word & 0xFFF0 == 0x63C0 => Err(SessionError::WrongPin {
                tries_left: (word & 0x000F) as u8,
            }),
            _ => Err(SessionError::Refused {
                command: command.name(),
                status,
            }),
        }
    }

    /// Signs `digest` with the authentication key (`82`): SELECT `3F00/DF00`, MSE SET, PSO.
    /// The PIN must have been verified in this session. Returns the signature as the card gives
    /// it (RSA: the modulus-sized signature; ECDSA: `r‖s`).
    pub fn authenticate(
        &mut self,
        algorithm: AuthenticationAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, SessionError> {
        if digest.len() != algorithm.digest_len() {
            return Err(SessionError::DigestLength {
                algorithm,
                expected: algorithm.digest_len(),
                actual: digest.len(),
            });
        }
        self.select(FilePath::CERTIFICATES_FOLDER)?;
        self.expect_success(&apdu::mse_set_authentication(algorithm))?;
        self.expect_success(&apdu::pso_compute_digital_signature(digest))
    }

    /// INTERNAL AUTHENTICATE with the chip's basic key (applet 1.8): the card signs the
    /// challenge as a SHA-384 digest and answers `r‖s`.
    pub fn internal_authenticate(&mut self, challenge: &[u8; 48]) -> Result<Vec<u8>, SessionError> {
        self.expect_success(&apdu::internal_authenticate(challenge))
    }

    /// LOG OFF: the card forgets the verified PIN.
    pub fn log_off(&mut self) -> Result<(), SessionError> {
        self.expect_success(&apdu::log_off()).map(drop)
    }
}
