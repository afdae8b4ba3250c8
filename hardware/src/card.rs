//! eID card readers: what a card tells us ([`CardIdentity`]), what readers report
//! ([`CardEvent`], [`ReaderState`]), how reading fails ([`CardError`]) and the [`CardReaders`]
//! trait the node holds as `Arc<dyn CardReaders>`.
//!
//! This module only describes cards and readers. It must not decide anything about requests or
//! eligibility, and it must not log or print a national number or an address in full: the
//! `Debug` implementations here mask them by hand.

mod sim;

use std::fmt;

use chrono::NaiveDate;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::eid::Pin;

pub use sim::{DEFAULT_READ_DELAY, DEMO_PIN, SimCardReaders};

/// The identity and address files of an eID card, as read (and, for real cards, verified).
///
/// `Debug` masks the national number and the street; use the fields themselves where the full
/// value is needed and allowed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardIdentity {
    /// The card's own number (12 characters, as printed on the card).
    pub card_number: String,
    /// The chip number, upper-case hexadecimal.
    pub chip_number: String,
    /// The national number (rijksregisternummer), 11 digits as stored on the card.
    pub national_number: String,
    pub surname: String,
    /// The first two given names, as on the card.
    pub first_names: String,
    /// The initial of the third given name, often empty.
    pub first_letter_third_name: String,
    /// The nationality in the card's language ("Belg", "Belge", "Belgier"…).
    pub nationality: String,
    pub birth_place: String,
    /// The birth date, when the card's text holds a complete date (day or month can be blank).
    pub birth_date: Option<NaiveDate>,
    /// The birth date exactly as the card prints it ("12 MAAR 1978", "05 NOV 1972", "12.MÄR.1948").
    pub birth_date_text: String,
    pub sex: Sex,
    pub document_type: DocumentType,
    pub valid_from: NaiveDate,
    pub valid_until: NaiveDate,
    pub address: Address,
    /// The photo file (JPEG, 8-bit grey) of a real card. Never serialised: the photo is shown to
    /// the clerk from memory and never stored or sent. Empty for demo cards, whose picture is
    /// [`crate::demo_avatar_svg`].
    #[serde(skip)]
    pub photo_jpeg: Vec<u8>,
    /// True for the synthetic cards of the simulator; such an identity is not a person.
    pub demo: bool,
    /// What the read proved, for a request to carry; `None` for simulated cards.
    #[serde(default)]
    pub evidence: Option<CardEvidence>,
}

/// What a verified read of a real card proved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardEvidence {
    /// SHA-256 of the identity file as read, lowercase hex.
    pub identity_file_sha256: String,
    /// The applet version from GET CARD DATA (`0x17`, `0x18`).
    pub applet_version: u8,
    /// The identity and address files verify under the national register's certificate, which
    /// chains to a trust anchor.
    pub register_signature_verified: bool,
    /// Applet 1.8: the chip answered a fresh challenge with the key the register named.
    pub chip_verified: bool,
}

impl CardIdentity {
    /// The national number with everything but its check digits hidden, for logs and screens
    /// that only need to tell two cards apart: `**.**.**-***.28`.
    pub fn masked_national_number(&self) -> String {
        mask_national_number(&self.national_number)
    }

    /// "First names Surname", as a greeting or a receipt would show it.
    pub fn display_name(&self) -> String {
        format!("{} {}", self.first_names, self.surname)
    }
}

/// Masks a national number down to its last two characters, keeping the usual layout.
pub(crate) fn mask_national_number(national_number: &str) -> String {
    let digits: Vec<char> = national_number
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let check: String = digits.iter().skip(digits.len().saturating_sub(2)).collect();
    format!("**.**.**-***.{check}")
}

impl fmt::Debug for CardIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardIdentity")
            .field("card_number", &self.card_number)
            .field("chip_number", &self.chip_number)
            .field("national_number", &self.masked_national_number())
            .field("surname", &self.surname)
            .field("first_names", &self.first_names)
            .field("first_letter_third_name", &self.first_letter_third_name)
            .field("nationality", &self.nationality)
            .field("birth_place", &self.birth_place)
            .field("birth_date", &self.birth_date)
            .field("birth_date_text", &self.birth_date_text)
            .field("sex", &self.sex)
            .field("document_type", &self.document_type)
            .field("valid_from", &self.valid_from)
            .field("valid_until", &self.valid_until)
            .field("address", &self.address)
            .field(
                "photo_jpeg",
                &format_args!("<{} bytes>", self.photo_jpeg.len()),
            )
            .field("demo", &self.demo)
            .finish()
    }
}

/// The address file of the card. `Debug` hides the street and number.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub street_and_number: String,
    pub zip: String,
    pub municipality: String,
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Address")
            .field("street_and_number", &"***")
            .field("zip", &self.zip)
            .field("municipality", &self.municipality)
            .finish()
    }
}

/// The sex as registered on the card. Cards write female as `F`, `V` or `W` depending on the
/// language; a parser maps those to [`Sex::F`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Sex {
    M,
    F,
    X,
}

/// What kind of card it is: the card's document type code (identity file tag 0F).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "u8", into = "u8")]
pub enum DocumentType {
    /// Belgian eID (code 1).
    Eid,
    /// Kids-ID for Belgian children under 12 (code 6).
    KidsId,
    /// A residence card for a foreigner (codes 11–23, 27–28, 31–36, 61–69).
    ForeignerCard { code: u8 },
    /// Any other code (bootstrap and habilitation cards, codes added later).
    Other { code: u8 },
}

impl DocumentType {
    pub fn code(self) -> u8 {
        match self {
            DocumentType::Eid => 1,
            DocumentType::KidsId => 6,
            DocumentType::ForeignerCard { code } | DocumentType::Other { code } => code,
        }
    }
}

impl From<u8> for DocumentType {
    fn from(code: u8) -> DocumentType {
        match code {
            1 => DocumentType::Eid,
            6 => DocumentType::KidsId,
            11..=23 | 27..=28 | 31..=36 | 61..=69 => DocumentType::ForeignerCard { code },
            _ => DocumentType::Other { code },
        }
    }
}

impl From<DocumentType> for u8 {
    fn from(document_type: DocumentType) -> u8 {
        document_type.code()
    }
}

/// A change at the card readers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum CardEvent {
    ReaderAdded { reader: String },
    ReaderRemoved { reader: String },
    CardInserted { reader: String },
    CardRemoved { reader: String },
}

/// A reader as it is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReaderState {
    pub name: String,
    pub card_present: bool,
}

/// Why a card could not be read. The messages never contain a full national number.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    #[error("there is no card in reader {reader:?}")]
    NoCard { reader: String },
    #[error("there is no card reader called {reader:?}")]
    UnknownReader { reader: String },
    #[error("the card was removed from reader {reader:?} while it was being read")]
    CardRemoved { reader: String },
    #[error("the card in reader {reader:?} cannot be read: {reason}")]
    Unreadable { reader: String, reason: String },
    #[error("the card reader service is unavailable: {reason}")]
    ServiceUnavailable { reason: String },
    /// The card answered, but what it holds did not pass the checks: not signed by the national
    /// register, a photo that is not the card's, a chip that did not prove it is genuine.
    #[error("the card in reader {reader:?} cannot be trusted: {reason}")]
    NotTrusted { reader: String, reason: String },
    /// The PIN was wrong; the card allows `tries_left` more tries before it blocks.
    #[error("wrong PIN for the card in reader {reader:?}: {tries_left} tries left")]
    WrongPin { reader: String, tries_left: u8 },
    /// The PIN is blocked: only the town hall can unblock it (with the PUK letter).
    #[error("the PIN of the card in reader {reader:?} is blocked")]
    PinBlocked { reader: String },
    /// The card has no authentication key (Kids-ID cards of children under 12 have none).
    #[error("the card in reader {reader:?} cannot sign: it has no authentication certificate")]
    CannotSign { reader: String },
    /// Only the simulator gives this: no demo citizen has that national number.
    #[error("no demo citizen has the national number {masked}")]
    UnknownDemoCitizen { masked: String },
}

/// The eID card readers of the bus. Implementations: [`SimCardReaders`] (demo and tests) and,
/// later, the PC/SC driver.
pub trait CardReaders: Send + Sync + 'static {
    /// Every reader known now, in a stable order.
    fn readers(&self) -> Vec<ReaderState>;

    /// Events from now on. A receiver that lags behind gets `RecvError::Lagged` and should
    /// re-read [`CardReaders::readers`].
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<CardEvent>;

    /// Reads the identity and address of the card in `reader`.
    fn read_identity(&self, reader: &str) -> BoxFuture<'_, Result<CardIdentity, CardError>>;

    /// Proves the holder of the card in `reader` is present: the card's authentication key
    /// signs a digest of `request.statement` once the PIN is verified, and the signature and the
    /// certificate are checked before this returns. A wrong PIN is [`CardError::WrongPin`] with
    /// the tries left; a card without authentication key is [`CardError::CannotSign`] and costs
    /// no PIN try.
    fn authenticate_holder(
        &self,
        reader: &str,
        request: HolderRequest,
    ) -> BoxFuture<'_, Result<HolderSignature, CardError>>;
}

/// What to sign with the holder's PIN.
#[derive(Debug, Clone)]
pub struct HolderRequest {
    pub pin: Pin,
    /// The bytes the card signs a digest of (SHA-256 on applet 1.7, SHA-384 on 1.8): a request
    /// statement or a sign-in challenge, bound to a fresh nonce by the caller.
    pub statement: Vec<u8>,
    /// The national number the card must belong to (the citizen identified earlier); `None`
    /// when the card itself says who signs in (a clerk's sign-in).
    pub expected_national_number: Option<String>,
}

/// The card's authentication signature, verified: the certificate chains to a trust anchor,
/// belongs to `national_number` and its key signed the statement's digest.
#[derive(Clone, PartialEq, Eq)]
pub struct HolderSignature {
    /// The national number in the authentication certificate.
    pub national_number: String,
    pub algorithm: HolderAlgorithm,
    /// As the card answered: RSA the 256-byte signature, ECDSA `r‖s`. Empty for demo cards.
    pub signature: Vec<u8>,
    /// The authentication certificate (DER). Empty for demo cards.
    pub certificate_der: Vec<u8>,
    /// True when the simulator "signed": a demo card has no keys, and nothing it signs is
    /// evidence.
    pub demo: bool,
}

impl fmt::Debug for HolderSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HolderSignature")
            .field(
                "national_number",
                &mask_national_number(&self.national_number),
            )
            .field("algorithm", &self.algorithm)
            .field(
                "signature",
                &format_args!("<{} bytes>", self.signature.len()),
            )
            .field(
                "certificate_der",
                &format_args!("<{} bytes>", self.certificate_der.len()),
            )
            .field("demo", &self.demo)
            .finish()
    }
}

/// How the card signed: the digest of the statement and the signature scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HolderAlgorithm {
    /// Applet 1.7: SHA-256 digest, RSA PKCS#1 v1.5.
    RsaPkcs1Sha256,
    /// Applet 1.8: SHA-384 digest, ECDSA P-384, `r‖s`.
    EcdsaP384Sha384,
}

impl HolderAlgorithm {
    /// The stable name a request record stores.
    pub fn code(self) -> &'static str {
        match self {
            HolderAlgorithm::RsaPkcs1Sha256 => "rsa-pkcs1-sha256",
            HolderAlgorithm::EcdsaP384Sha384 => "ecdsa-p384-sha384",
        }
    }

    /// The digest of `statement` this algorithm signs.
    pub fn digest(self, statement: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        match self {
            HolderAlgorithm::RsaPkcs1Sha256 => sha2::Sha256::digest(statement).to_vec(),
            HolderAlgorithm::EcdsaP384Sha384 => sha2::Sha384::digest(statement).to_vec(),
        }
    }
}
