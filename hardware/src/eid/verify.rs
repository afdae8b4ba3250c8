//! The checks that make the data of an eID trustworthy, on the bytes of its files: the national
//! register (RRN) signed the identity and address files, the photo is the card's, the chip is
//! genuine (applet 1.8), and the holder signed with their PIN.
//!
//! Every failure is its own [`VerifyError`] variant whose message a clerk can act on. Time is an
//! argument; challenges and digests come from the caller, who draws them fresh per card or
//! request (this module draws no random numbers).

use chrono::{DateTime, Utc};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384};

use super::certificate::{
    CertificateError, CertificateKey, EcdsaEncoding, TrustAnchors, X509Certificate,
    trim_zero_padding,
};
use super::files::{FileError, IdentityFile, PhotoHash, parse_address, parse_identity};
use crate::card::{Address, CardIdentity};

/// Why the data of a card cannot be trusted.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the identity file on the card cannot be read")]
    IdentityFile {
        #[source]
        source: FileError,
    },
    #[error("the address file on the card cannot be read")]
    AddressFile {
        #[source]
        source: FileError,
    },
    #[error("the national register's certificate on the card is not trusted")]
    RrnCertificate {
        #[source]
        source: CertificateError,
    },
    #[error("the identity file is not signed by the national register")]
    IdentityNotSigned,
    #[error("the address file is not signed by the national register for this card")]
    AddressNotSigned,
    #[error("the photo does not match the card's data")]
    PhotoMismatch,
    #[error("the card's data names no chip key, so the chip cannot be checked")]
    BasicKeyMissing,
    #[error("the chip's key does not match the card's data")]
    BasicKeyMismatch,
    #[error("the chip's key cannot be read")]
    BasicKeyMalformed {
        #[source]
        source: CertificateError,
    },
    #[error("the chip did not prove it is genuine")]
    ChipNotGenuine,
    #[error("the card has no authentication certificate (Kids-ID cards have none)")]
    AuthenticationCertificateMissing,
    #[error("the card's authentication certificate is not trusted")]
    AuthenticationCertificateUntrusted {
        #[source]
        source: CertificateError,
    },
    #[error("the card's authentication certificate belongs to someone else than its identity")]
    HolderMismatch,
    #[error("the PIN signature of the card does not verify")]
    HolderSignatureInvalid,
}

/// The files of a card needed to identify its holder, as read (padding included).
#[derive(Clone, PartialEq, Eq)]
pub struct CardFiles {
    /// `DF01/4031`
    pub identity: Vec<u8>,
    /// `DF01/4032`
    pub identity_signature: Vec<u8>,
    /// `DF01/4033`
    pub address: Vec<u8>,
    /// `DF01/4034`
    pub address_signature: Vec<u8>,
    /// `DF01/4035`
    pub photo: Vec<u8>,
    /// `DF00/503C`
    pub rrn_certificate: Vec<u8>,
}

impl std::fmt::Debug for CardFiles {
    /// Sizes only: the files hold a national number and an address.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardFiles")
            .field("identity", &self.identity.len())
            .field("identity_signature", &self.identity_signature.len())
            .field("address", &self.address.len())
            .field("address_signature", &self.address_signature.len())
            .field("photo", &self.photo.len())
            .field("rrn_certificate", &self.rrn_certificate.len())
            .finish()
    }
}

/// A card whose identity, address and photo the national register signed. `Debug` masks the
/// national number and street and shows only the photo's size.
#[derive(Clone)]
pub struct VerifiedCard {
    pub identity: IdentityFile,
    pub address: Address,
    pub photo_jpeg: Vec<u8>,
    /// SHA-256 of the identity file as read: evidence a request can carry.
    pub identity_file_sha256: [u8; 32],
    /// The national register's certificate that signed the files.
    pub rrn_certificate: X509Certificate,
}

impl std::fmt::Debug for VerifiedCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedCard")
            .field("identity", &self.identity)
            .field("address", &self.address)
            .field(
                "photo_jpeg",
                &format_args!("<{} bytes>", self.photo_jpeg.len()),
            )
            .field("rrn_certificate", &self.rrn_certificate)
            .finish_non_exhaustive()
    }
}

impl VerifiedCard {
    pub fn into_card_identity(self) -> CardIdentity {
        self.identity
            .into_card_identity(self.address, self.photo_jpeg)
    }
}

/// Runs every check that needs no PIN and no card command: the RRN certificate chains to a
/// trust anchor and is valid `at`, the identity and address signatures verify, and the photo
/// hash matches. The chip challenge (applet 1.8) is separate: it needs the card.
pub fn verify_card(
    files: CardFiles,
    anchors: &TrustAnchors,
    at: DateTime<Utc>,
) -> Result<VerifiedCard, VerifyError> {
    let identity =
        parse_identity(&files.identity).map_err(|source| VerifyError::IdentityFile { source })?;
    let address =
        parse_address(&files.address).map_err(|source| VerifyError::AddressFile { source })?;
    let rrn_certificate = verify_rrn_certificate(&files.rrn_certificate, anchors, at)?;
    verify_identity_signature(
        rrn_certificate.key(),
        &files.identity,
        &files.identity_signature,
        &identity.photo_hash,
    )?;
    verify_address_signature(
        rrn_certificate.key(),
        &files.address,
        &files.identity_signature,
        &files.address_signature,
        &identity.photo_hash,
    )?;
    verify_photo(&identity.photo_hash, &files.photo)?;
    Ok(VerifiedCard {
        identity_file_sha256: Sha256::digest(&files.identity).into(),
        identity,
        address,
        photo_jpeg: files.photo,
        rrn_certificate,
    })
}

/// Reads the RRN certificate file (`503C`, zero-padded) and checks it chains directly to a
/// trust anchor and is valid `at`.
pub fn verify_rrn_certificate(
    file: &[u8],
    anchors: &TrustAnchors,
    at: DateTime<Utc>,
) -> Result<X509Certificate, VerifyError> {
    let certificate = X509Certificate::from_card_file(file)
        .map_err(|source| VerifyError::RrnCertificate { source })?;
    anchors
        .verify_chain(&certificate, &[], at)
        .map_err(|source| VerifyError::RrnCertificate { source })?;
    Ok(certificate)
}

/// The photo file's hash, with the algorithm the identity file's hash length names, equals it.
pub fn verify_photo(photo_hash: &PhotoHash, photo: &[u8]) -> Result<(), VerifyError> {
    let matches = match photo_hash {
        PhotoHash::Sha1(hash) => Sha1::digest(photo).as_slice() == hash,
        PhotoHash::Sha256(hash) => Sha256::digest(photo).as_slice() == hash,
        PhotoHash::Sha384(hash) => Sha384::digest(photo).as_slice() == hash,
    };
    matches.then_some(()).ok_or(VerifyError::PhotoMismatch)
}

/// SGN#ID (`4032`) is the RRN's signature over the identity file exactly as read.
pub fn verify_identity_signature(
    rrn_key: &CertificateKey,
    identity_file: &[u8],
    signature_file: &[u8],
    photo_hash: &PhotoHash,
) -> Result<(), VerifyError> {
    rrn_signature_verifies(rrn_key, identity_file, signature_file, photo_hash)
        .then_some(())
        .ok_or(VerifyError::IdentityNotSigned)
}

/// SGN#Address (`4034`) is the RRN's signature over the address file without its trailing zero
/// bytes, followed by the identity signature file: an address signed for another card fails.
pub fn verify_address_signature(
    rrn_key: &CertificateKey,
    address_file: &[u8],
    identity_signature_file: &[u8],
    address_signature_file: &[u8],
    photo_hash: &PhotoHash,
) -> Result<(), VerifyError> {
    let used = address_file
        .iter()
        .rposition(|&byte| byte != 0)
        .map_or(0, |last| last + 1);
    let mut message = address_file[..used].to_vec();
    message.extend_from_slice(identity_signature_file);
    rrn_signature_verifies(rrn_key, &message, address_signature_file, photo_hash)
        .then_some(())
        .ok_or(VerifyError::AddressNotSigned)
}

/// An RRN signature file over `message`: ECDSA P-384/SHA-384 in DER with zero padding, or RSA
/// PKCS#1 v1.5 with the photo hash's algorithm (SHA-1 cards re-signed with SHA-256 exist, so
/// SHA-1 falls back to SHA-256).
fn rrn_signature_verifies(
    key: &CertificateKey,
    message: &[u8],
    signature_file: &[u8],
    photo_hash: &PhotoHash,
) -> bool {
    match key {
        CertificateKey::P384(_) => trim_zero_padding(signature_file).is_some_and(|signature| {
            key.verify_ecdsa_prehash(&Sha384::digest(message), signature, EcdsaEncoding::Der)
        }),
        CertificateKey::Rsa(rsa_key) => {
            let size = rsa::traits::PublicKeyParts::size(rsa_key);
            let Some((signature, padding)) = signature_file.split_at_checked(size) else {
                return false;
            };
            if padding.iter().any(|&byte| byte != 0) {
                return false;
            }
            match photo_hash {
                PhotoHash::Sha1(_) => {
                    key.verify_rsa::<Sha1>(message, signature)
                        || key.verify_rsa::<Sha256>(message, signature)
                }
                PhotoHash::Sha256(_) => key.verify_rsa::<Sha256>(message, signature),
                PhotoHash::Sha384(_) => key.verify_rsa::<Sha384>(message, signature),
            }
        }
    }
}

/// Applet 1.8: the basic key file (`4040`, a DER SubjectPublicKeyInfo) is the one the identity
/// file names by its SHA-384 (tag `1A`). Returns the chip's key for [`verify_chip_challenge`].
pub fn verify_basic_key(
    identity: &IdentityFile,
    basic_key_file: &[u8],
) -> Result<CertificateKey, VerifyError> {
    let expected = identity
        .basic_key_hash
        .ok_or(VerifyError::BasicKeyMissing)?;
    let trimmed = trim_zero_padding(basic_key_file).unwrap_or(basic_key_file);
    let named = [basic_key_file, trimmed]
        .iter()
        .any(|bytes| Sha384::digest(bytes).as_slice() == expected);
    if !named {
        return Err(VerifyError::BasicKeyMismatch);
    }
    let key = CertificateKey::from_spki_der(trimmed)
        .map_err(|source| VerifyError::BasicKeyMalformed { source })?;
    match key {
        CertificateKey::P384(_) => Ok(key),
        CertificateKey::Rsa(_) => Err(VerifyError::BasicKeyMalformed {
            source: CertificateError::UnsupportedKey {
                algorithm: "RSA basic key".to_owned(),
            },
        }),
    }
}

/// The card's answer to INTERNAL AUTHENTICATE (`r‖s`, 96 bytes) is the basic key's signature
/// over the 48-byte challenge taken as a SHA-384 digest.
pub fn verify_chip_challenge(
    basic_key: &CertificateKey,
    challenge: &[u8; 48],
    response: &[u8],
) -> Result<(), VerifyError> {
    basic_key
        .verify_ecdsa_prehash(challenge, response, EcdsaEncoding::Raw)
        .then_some(())
        .ok_or(VerifyError::ChipNotGenuine)
}

/// Reads the authentication certificate file (`5038`) and checks it chains through the
/// citizen CA file (`503A`) to a trust anchor, every certificate valid `at`.
pub fn verify_authentication_certificate(
    authentication_file: &[u8],
    citizen_ca_file: &[u8],
    anchors: &TrustAnchors,
    at: DateTime<Utc>,
) -> Result<X509Certificate, VerifyError> {
    let untrusted = |source| VerifyError::AuthenticationCertificateUntrusted { source };
    let certificate = match X509Certificate::from_card_file(authentication_file) {
        Err(CertificateError::Absent) => return Err(VerifyError::AuthenticationCertificateMissing),
        result => result.map_err(untrusted)?,
    };
    let citizen_ca = X509Certificate::from_card_file(citizen_ca_file).map_err(untrusted)?;
    anchors
        .verify_chain(&certificate, &[citizen_ca], at)
        .map_err(untrusted)?;
    Ok(certificate)
}

/// The holder is present: the authentication certificate is the identity's (its subject
/// serialNumber is the national number) and its key signed `digest` (the PSO answer). RSA keys
/// sign PKCS#1 v1.5 with the digest's algorithm (by length: 20 SHA-1, 32 SHA-256, 48 SHA-384);
/// P-384 keys answer raw `r‖s`.
pub fn verify_holder_signature(
    authentication_certificate: &X509Certificate,
    national_number: &str,
    digest: &[u8],
    signature: &[u8],
) -> Result<(), VerifyError> {
    if authentication_certificate
        .subject_serial_number()
        .as_deref()
        != Some(national_number)
    {
        return Err(VerifyError::HolderMismatch);
    }
    let key = authentication_certificate.key();
    let verifies = match (key, digest.len()) {
        (CertificateKey::P384(_), _) => {
            key.verify_ecdsa_prehash(digest, signature, EcdsaEncoding::Raw)
        }
        (CertificateKey::Rsa(_), 20) => key.verify_rsa_prehash::<Sha1>(digest, signature),
        (CertificateKey::Rsa(_), 32) => key.verify_rsa_prehash::<Sha256>(digest, signature),
        (CertificateKey::Rsa(_), 48) => key.verify_rsa_prehash::<Sha384>(digest, signature),
        (CertificateKey::Rsa(_), _) => false,
    };
    verifies
        .then_some(())
        .ok_or(VerifyError::HolderSignatureInvalid)
}
