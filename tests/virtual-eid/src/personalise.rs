//! Personalisation: turns a [`CardSpec`] (a citizen, a PIN, which certificates, which
//! forgery) into a [`VirtualCard`] whose files are signed by a [`TestPki`].
//!
//! The forgeries are what a verifier must refuse, each made the way an attacker would make it:
//! edited identity bytes under the old signature, a genuine address file and signature taken
//! from another card, a replaced photo, a genuine file set copied onto another chip.

use std::collections::BTreeMap;

use busloket_hardware::{CardIdentity, DocumentType, demo_citizens};
use sha2::{Digest, Sha384};

use crate::card::{CardContents, FileId, VirtualCard, file};
use crate::files::{
    IdentityExtras, address_file, address_signature_message, certificate_file, chip_number_bytes,
    identity_file, photo_hash, signature_file, synthetic_photo,
};
use crate::keys::TestKey;
use crate::pki::{PkiError, TestPki};
use crate::profile::Profile;

/// Why a card could not be personalised.
#[derive(Debug, thiserror::Error)]
pub enum PersonaliseError {
    #[error("a card PIN has 4 to 12 digits")]
    InvalidPin,
    #[error("the test PKI could not issue the card's keys")]
    Pki(#[from] PkiError),
}

/// The PIN of every virtual card unless a spec says otherwise.
pub const DEFAULT_PIN: &str = "1234";

/// How a card's contents were tampered with.
#[derive(Debug, Clone)]
pub enum Forgery {
    /// The identity file was edited (the surname changed) after the register signed it; the
    /// identity signature no longer matches.
    AlteredIdentity,
    /// The address file and its signature come from this other citizen's genuine card, so the
    /// address signature does not cover this card's identity signature.
    SwappedAddress(Box<CardIdentity>),
    /// The photo was replaced after signing; its hash no longer matches tag 11.
    ReplacedPhoto,
    /// Applet 1.8: the genuine files of this card on a chip with another basic key (the one of
    /// the chip numbered here); INTERNAL AUTHENTICATE does not match file 4040. No effect on
    /// applet 1.7 cards, which have no basic key (nothing there can detect a copy).
    CopiedToAnotherChip { other_chip_number: String },
}

/// What to personalise a card with.
#[derive(Debug, Clone)]
pub struct CardSpec {
    pub identity: CardIdentity,
    /// 4 to 12 digits.
    pub pin: String,
    /// Whether the card has an authentication key and certificate (5038). Kids-ID cards here
    /// have none: file 5038 is all zeros and MSE SET with key 82 answers `6A88`.
    pub authentication_certificate: bool,
    /// Whether the card has a non-repudiation key and certificate (5039).
    pub signature_certificate: bool,
    /// Extra identity-file tags (for example tags a reader does not know yet).
    pub additional_identity_tags: Vec<(u8, Vec<u8>)>,
    pub forgery: Option<Forgery>,
}

impl CardSpec {
    /// A genuine card for `identity` with the default PIN; Kids-ID cards without certificates.
    pub fn new(identity: CardIdentity) -> CardSpec {
        let adult_card = identity.document_type != DocumentType::KidsId;
        CardSpec {
            identity,
            pin: DEFAULT_PIN.to_owned(),
            authentication_certificate: adult_card,
            signature_certificate: adult_card,
            additional_identity_tags: Vec::new(),
            forgery: None,
        }
    }

    /// The card of the demo citizen with `national_number`, if there is one.
    pub fn demo_citizen(national_number: &str) -> Option<CardSpec> {
        demo_citizens()
            .into_iter()
            .find(|citizen| citizen.card.national_number == national_number)
            .map(|citizen| CardSpec::new(citizen.card))
    }

    pub fn with_forgery(mut self, forgery: Forgery) -> CardSpec {
        self.forgery = Some(forgery);
        self
    }

    pub fn with_pin(mut self, pin: &str) -> CardSpec {
        pin.clone_into(&mut self.pin);
        self
    }
}

/// The signed files of one identity, before any forgery.
struct SignedIdentity {
    identity_file: Vec<u8>,
    identity_signature_file: Vec<u8>,
    address_file: Vec<u8>,
    address_signature_file: Vec<u8>,
}

fn sign_identity(
    pki: &TestPki,
    identity: &CardIdentity,
    extras: &IdentityExtras,
) -> SignedIdentity {
    let profile = pki.profile();
    let identity_file = identity_file(identity, profile, extras);
    let identity_signature_file = signature_file(profile, pki.rrn_sign(&identity_file));
    let address_file = address_file(&identity.address);
    let address_signature_file = signature_file(
        profile,
        pki.rrn_sign(&address_signature_message(
            &address_file,
            &identity_signature_file,
        )),
    );
    SignedIdentity {
        identity_file,
        identity_signature_file,
        address_file,
        address_signature_file,
    }
}

/// Builds the card `spec` describes, signed by `pki` (whose profile the card takes).
pub fn personalise(spec: &CardSpec, pki: &TestPki) -> Result<VirtualCard, PersonaliseError> {
    if !(4..=12).contains(&spec.pin.len()) || !spec.pin.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(PersonaliseError::InvalidPin);
    }
    let profile = pki.profile();
    let identity = &spec.identity;
    let photo = if identity.photo_jpeg.is_empty() {
        synthetic_photo(profile, &identity.national_number)
    } else {
        identity.photo_jpeg.clone()
    };

    // Applet 1.8: the chip's basic key, its public half in 4040 and its hash in tag 1A.
    let files_basic_key =
        (profile == Profile::Applet18).then(|| pki.chip_basic_key(&identity.chip_number));
    let basic_key_file = files_basic_key.as_ref().map(TestKey::public_key_der);
    let extras = IdentityExtras {
        photo_hash: photo_hash(profile, &photo),
        basic_key_hash: basic_key_file
            .as_ref()
            .map(|der| Sha384::digest(der).to_vec()),
        additional_tags: spec.additional_identity_tags.clone(),
    };
    let mut signed = sign_identity(pki, identity, &extras);
    let mut stored_photo = photo;
    let mut chip_basic_key = files_basic_key;

    match &spec.forgery {
        None => {}
        Some(Forgery::AlteredIdentity) => {
            let mut altered = identity.clone();
            altered.surname = format!("{}-Vervalst", identity.surname);
            signed.identity_file = identity_file(&altered, profile, &extras);
        }
        Some(Forgery::SwappedAddress(other)) => {
            let other_photo = synthetic_photo(profile, &other.national_number);
            let other_extras = IdentityExtras {
                photo_hash: photo_hash(profile, &other_photo),
                basic_key_hash: extras.basic_key_hash.clone(),
                additional_tags: Vec::new(),
            };
            let donor = sign_identity(pki, other, &other_extras);
            signed.address_file = donor.address_file;
            signed.address_signature_file = donor.address_signature_file;
        }
        Some(Forgery::ReplacedPhoto) => {
            stored_photo =
                synthetic_photo(profile, &format!("{} replaced", identity.national_number));
        }
        Some(Forgery::CopiedToAnotherChip { other_chip_number }) => {
            chip_basic_key =
                (profile == Profile::Applet18).then(|| pki.chip_basic_key(other_chip_number));
        }
    }

    let keys = pki.issue_card_keys(identity)?;
    let mut files: BTreeMap<FileId, Vec<u8>> = BTreeMap::new();
    files.insert(file::IDENTITY, signed.identity_file);
    files.insert(file::IDENTITY_SIGNATURE, signed.identity_signature_file);
    files.insert(file::ADDRESS, signed.address_file);
    files.insert(file::ADDRESS_SIGNATURE, signed.address_signature_file);
    files.insert(file::PHOTO, stored_photo);
    if let Some(basic_key_file) = basic_key_file {
        files.insert(file::BASIC_PUBLIC_KEY, basic_key_file);
    }
    let certificate = |present: bool, der: &[u8]| certificate_file(profile, present.then_some(der));
    files.insert(
        file::AUTHENTICATION_CERTIFICATE,
        certificate(
            spec.authentication_certificate,
            &keys.authentication_certificate_der,
        ),
    );
    files.insert(
        file::NON_REPUDIATION_CERTIFICATE,
        certificate(
            spec.signature_certificate,
            &keys.non_repudiation_certificate_der,
        ),
    );
    files.insert(
        file::CA_CERTIFICATE,
        certificate(true, &keys.issuing_ca_certificate_der),
    );
    files.insert(
        file::ROOT_CERTIFICATE,
        certificate(true, pki.root_certificate_der()),
    );
    files.insert(
        file::RRN_CERTIFICATE,
        certificate(true, pki.rrn_certificate_der()),
    );

    Ok(VirtualCard::new(CardContents {
        profile,
        serial: chip_number_bytes(&identity.chip_number),
        pin: spec.pin.clone(),
        files,
        authentication_key: spec
            .authentication_certificate
            .then_some(keys.authentication),
        non_repudiation_key: spec.signature_certificate.then_some(keys.non_repudiation),
        basic_key: chip_basic_key,
    }))
}
