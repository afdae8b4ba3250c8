//! X.509 certificates as the eID stores them, their public keys, and chains to the configured
//! trust anchors.
//!
//! Certificate files on the card are a DER certificate followed by zero padding (an absent
//! certificate is all zeros), so the DER length is read from the outer header and the rest must
//! be zeros. Keys are RSA (applet 1.7, the RSA Belgian roots) or ECDSA P-384 (applet 1.8, root
//! CA6); signatures over a certificate are checked on the exact `tbsCertificate` bytes as stored.
//!
//! Chains are checked for names, signatures and validity at a time given by the caller; this
//! module reads no clock and does no revocation check (CRL/OCSP need the network).

use std::ops::Range;

use chrono::{DateTime, Utc};
use p384::ecdsa::signature::hazmat::PrehashVerifier;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Decode, Encode, Tag, Tagged};
use x509_cert::name::Name;

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SHA1_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.5");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_WITH_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const SERIAL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.5");

/// Why a certificate could not be read or trusted.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("the card holds no certificate there")]
    Absent,
    #[error("the certificate is not a complete DER structure followed by zero padding")]
    BadPadding,
    #[error("the certificate is damaged")]
    Malformed {
        #[source]
        source: x509_cert::der::Error,
    },
    #[error("the certificate has an unsupported public key (algorithm {algorithm})")]
    UnsupportedKey { algorithm: String },
    #[error("the certificate of {subject} is not valid at {at}")]
    NotValidAt { subject: String, at: DateTime<Utc> },
    #[error("no trusted certificate issued the certificate of {subject}")]
    UntrustedIssuer { subject: String },
    #[error("the signature on the certificate of {subject} does not verify")]
    BadSignature { subject: String },
    #[error("the certificate of {subject} is not a certificate authority, yet it issued another")]
    NotAnAuthority { subject: String },
    #[error("the certificate chain of {subject} is longer than the certificates given")]
    ChainTooLong { subject: String },
}

/// What the tag and length at the start of some bytes say about the DER element they begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DerLength {
    /// The element is this many bytes long, header included (it may not all be there yet).
    Announced(usize),
    /// The bytes end inside the header.
    HeaderIncomplete,
    /// No definite length of at most four bytes: not DER as the card stores it.
    NotDer,
}

/// The header length and content length the DER header at the start of `bytes` announces,
/// whether or not the content follows.
fn der_header_announced(bytes: &[u8]) -> Result<(usize, usize), DerLength> {
    let first_length_byte = *bytes.get(1).ok_or(DerLength::HeaderIncomplete)?;
    if first_length_byte < 0x80 {
        return Ok((2, usize::from(first_length_byte)));
    }
    let count = usize::from(first_length_byte & 0x7F);
    if count == 0 || count > 4 {
        return Err(DerLength::NotDer);
    }
    let length = bytes
        .get(2..2 + count)
        .ok_or(DerLength::HeaderIncomplete)?
        .iter()
        .fold(0usize, |length, &byte| (length << 8) | usize::from(byte));
    Ok((2 + count, length))
}

/// The whole length (header included) of the DER element that `bytes` begin, read from its
/// header alone: how much of a zero-padded card file is worth reading.
pub(crate) fn der_announced_len(bytes: &[u8]) -> DerLength {
    match der_header_announced(bytes) {
        Ok((header, content)) => header
            .checked_add(content)
            .map_or(DerLength::NotDer, DerLength::Announced),
        Err(length) => length,
    }
}

/// The header length and content length of the DER element at the start of `bytes`, if the
/// element is complete.
fn der_header(bytes: &[u8]) -> Option<(usize, usize)> {
    let (header, content) = der_header_announced(bytes).ok()?;
    let total = header.checked_add(content)?;
    (total <= bytes.len()).then_some((header, content))
}

/// The length of the DER element at the start of `bytes` (header included), if it is complete.
pub(crate) fn der_element_len(bytes: &[u8]) -> Option<usize> {
    der_header(bytes).map(|(header, content)| header + content)
}

/// The DER element at the start of a zero-padded card file; `None` when the rest is not zeros
/// or the element is incomplete.
pub(crate) fn trim_zero_padding(bytes: &[u8]) -> Option<&[u8]> {
    let length = der_element_len(bytes)?;
    let (element, padding) = bytes.split_at(length);
    padding.iter().all(|&byte| byte == 0).then_some(element)
}

/// How an ECDSA signature is written: DER (certificates, the national register's files) or the
/// raw `r‖s` the card answers to PSO and INTERNAL AUTHENTICATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EcdsaEncoding {
    Der,
    Raw,
}

/// A public key of a certificate: the kinds Belgian eIDs and their roots use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateKey {
    Rsa(RsaPublicKey),
    P384(p384::ecdsa::VerifyingKey),
}

impl CertificateKey {
    /// Reads a DER SubjectPublicKeyInfo (RSA or EC P-384).
    pub fn from_spki_der(der: &[u8]) -> Result<CertificateKey, CertificateError> {
        let info = x509_cert::spki::SubjectPublicKeyInfoRef::from_der(der)
            .map_err(|source| CertificateError::Malformed { source })?;
        let unsupported = || CertificateError::UnsupportedKey {
            algorithm: info.algorithm.oid.to_string(),
        };
        if info.algorithm.oid == RSA_ENCRYPTION {
            RsaPublicKey::from_public_key_der(der)
                .map(CertificateKey::Rsa)
                .map_err(|_| unsupported())
        } else if info.algorithm.oid == EC_PUBLIC_KEY {
            p384::ecdsa::VerifyingKey::from_public_key_der(der)
                .map(CertificateKey::P384)
                .map_err(|_| unsupported())
        } else {
            Err(unsupported())
        }
    }

    /// Verifies an RSA PKCS#1 v1.5 signature over `message` hashed with the digest `D`.
    pub(crate) fn verify_rsa<D>(&self, message: &[u8], signature: &[u8]) -> bool
    where
        D: Digest + x509_cert::der::oid::AssociatedOid,
    {
        self.verify_rsa_prehash::<D>(&D::digest(message), signature)
    }

    /// Verifies an RSA PKCS#1 v1.5 signature over a digest made with `D` (the signer hashed).
    pub(crate) fn verify_rsa_prehash<D>(&self, digest: &[u8], signature: &[u8]) -> bool
    where
        D: Digest + x509_cert::der::oid::AssociatedOid,
    {
        let CertificateKey::Rsa(key) = self else {
            return false;
        };
        key.verify(Pkcs1v15Sign::new::<D>(), digest, signature)
            .is_ok()
    }

    /// Verifies an ECDSA P-384 signature over a digest.
    pub(crate) fn verify_ecdsa_prehash(
        &self,
        digest: &[u8],
        signature: &[u8],
        encoding: EcdsaEncoding,
    ) -> bool {
        let CertificateKey::P384(key) = self else {
            return false;
        };
        let signature = match encoding {
            EcdsaEncoding::Der => p384::ecdsa::Signature::from_der(signature),
            EcdsaEncoding::Raw => p384::ecdsa::Signature::from_slice(signature),
        };
        signature.is_ok_and(|signature| key.verify_prehash(digest, &signature).is_ok())
    }

    /// Verifies a certificate signature made with `algorithm`.
    fn verify_certificate_signature(
        &self,
        algorithm: &ObjectIdentifier,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        match *algorithm {
            SHA1_WITH_RSA => self.verify_rsa::<Sha1>(message, signature),
            SHA256_WITH_RSA => self.verify_rsa::<Sha256>(message, signature),
            SHA384_WITH_RSA => self.verify_rsa::<Sha384>(message, signature),
            SHA512_WITH_RSA => self.verify_rsa::<Sha512>(message, signature),
            ECDSA_WITH_SHA256 => {
                self.verify_ecdsa_prehash(&Sha256::digest(message), signature, EcdsaEncoding::Der)
            }
            ECDSA_WITH_SHA384 => {
                self.verify_ecdsa_prehash(&Sha384::digest(message), signature, EcdsaEncoding::Der)
            }
            ECDSA_WITH_SHA512 => {
                self.verify_ecdsa_prehash(&Sha512::digest(message), signature, EcdsaEncoding::Der)
            }
            _ => false,
        }
    }
}

/// A parsed certificate with its exact DER bytes and its public key. `Debug` and the errors
/// about it show its names with the subject `serialNumber` (a national number on
/// authentication certificates) hidden.
#[derive(Clone)]
pub struct X509Certificate {
    der: Vec<u8>,
    tbs: Range<usize>,
    certificate: x509_cert::Certificate,
    key: CertificateKey,
}

impl X509Certificate {
    /// Reads an exact DER certificate.
    pub fn from_der(der: &[u8]) -> Result<X509Certificate, CertificateError> {
        let certificate = x509_cert::Certificate::from_der(der)
            .map_err(|source| CertificateError::Malformed { source })?;
        // The outer SEQUENCE's header, then the tbsCertificate element: its bytes as signed.
        let (header, _) = der_header(der).ok_or(CertificateError::BadPadding)?;
        let tbs_len = der_element_len(&der[header..]).ok_or(CertificateError::BadPadding)?;
        let spki_der = certificate
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|source| CertificateError::Malformed { source })?;
        let key = CertificateKey::from_spki_der(&spki_der)?;
        Ok(X509Certificate {
            der: der.to_vec(),
            tbs: header..header + tbs_len,
            certificate,
            key,
        })
    }

    /// Reads a certificate file of the card: DER followed by zero padding, all zeros when the
    /// card has no such certificate (a Kids-ID without authentication certificate).
    pub fn from_card_file(bytes: &[u8]) -> Result<X509Certificate, CertificateError> {
        if bytes.iter().all(|&byte| byte == 0) {
            return Err(CertificateError::Absent);
        }
        X509Certificate::from_der(trim_zero_padding(bytes).ok_or(CertificateError::BadPadding)?)
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn key(&self) -> &CertificateKey {
        &self.key
    }

    pub fn subject(&self) -> &Name {
        &self.certificate.tbs_certificate.subject
    }

    pub fn issuer(&self) -> &Name {
        &self.certificate.tbs_certificate.issuer
    }

    /// The subject's `serialNumber` attribute (on an authentication certificate: the holder's
    /// national number).
    pub fn subject_serial_number(&self) -> Option<String> {
        self.subject()
            .0
            .iter()
            .flat_map(|rdn| rdn.0.iter())
            .find(|attribute| attribute.oid == SERIAL_NUMBER)
            .filter(|attribute| {
                matches!(
                    attribute.value.tag(),
                    Tag::PrintableString | Tag::Utf8String
                )
            })
            .and_then(|attribute| String::from_utf8(attribute.value.value().to_vec()).ok())
    }

    fn subject_text(&self) -> String {
        redacted_name(self.subject())
    }

    /// Whether `at` lies within the certificate's validity period.
    pub fn is_valid_at(&self, at: DateTime<Utc>) -> bool {
        let validity = &self.certificate.tbs_certificate.validity;
        let Ok(at) = u64::try_from(at.timestamp()) else {
            return false;
        };
        validity.not_before.to_unix_duration().as_secs() <= at
            && at <= validity.not_after.to_unix_duration().as_secs()
    }

    fn check_valid_at(&self, at: DateTime<Utc>) -> Result<(), CertificateError> {
        if self.is_valid_at(at) {
            Ok(())
        } else {
            Err(CertificateError::NotValidAt {
                subject: self.subject_text(),
                at,
            })
        }
    }

    /// Whether the certificate says it belongs to a certificate authority (basicConstraints
    /// with cA set): only those may issue certificates. Without this check, anyone holding a
    /// card could sign a certificate with their own authentication key and pass it off as
    /// issued by a CA.
    pub fn is_authority(&self) -> bool {
        matches!(
            self.certificate
                .tbs_certificate
                .get::<x509_cert::ext::pkix::BasicConstraints>(),
            Ok(Some((_, constraints))) if constraints.ca
        )
    }

    fn check_authority(&self) -> Result<(), CertificateError> {
        if self.is_authority() {
            Ok(())
        } else {
            Err(CertificateError::NotAnAuthority {
                subject: self.subject_text(),
            })
        }
    }

    /// Whether `self`'s key made the signature on `child`.
    pub fn signed(&self, child: &X509Certificate) -> bool {
        let Some(signature) = child.certificate.signature.as_bytes() else {
            return false;
        };
        self.key.verify_certificate_signature(
            &child.certificate.signature_algorithm.oid,
            &child.der[child.tbs.clone()],
            signature,
        )
    }
}

impl std::fmt::Debug for X509Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = match self.key {
            CertificateKey::Rsa(_) => "RSA",
            CertificateKey::P384(_) => "EC P-384",
        };
        f.debug_struct("X509Certificate")
            .field("subject", &redacted_name(self.subject()))
            .field("issuer", &redacted_name(self.issuer()))
            .field("key", &key)
            .field("der_len", &self.der.len())
            .finish()
    }
}

/// A name written as RFC 4514 does, with every `serialNumber` value replaced by `***`.
fn redacted_name(name: &Name) -> String {
    name.0
        .iter()
        .rev()
        .map(|rdn| {
            rdn.0
                .iter()
                .map(|attribute| {
                    if attribute.oid == SERIAL_NUMBER {
                        "serialNumber=***".to_owned()
                    } else {
                        attribute.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The root certificates the bus trusts (production: Belgium Root CA3, CA4, CA6; tests: a test
/// root). Passed in from configuration, never built in.
#[derive(Debug, Clone)]
pub struct TrustAnchors {
    roots: Vec<X509Certificate>,
}

impl TrustAnchors {
    pub fn new(roots: Vec<X509Certificate>) -> TrustAnchors {
        TrustAnchors { roots }
    }

    /// Reads each root from DER.
    pub fn from_der<'a>(
        roots: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<TrustAnchors, CertificateError> {
        let roots = roots
            .into_iter()
            .map(X509Certificate::from_der)
            .collect::<Result<_, _>>()?;
        Ok(TrustAnchors { roots })
    }

    /// Checks that `leaf` chains through some of `intermediates` to one of the roots: each
    /// certificate is signed by the next one's key, names match, every issuer is a certificate
    /// authority, and every certificate on the way (the root included) is valid `at`.
    pub fn verify_chain(
        &self,
        leaf: &X509Certificate,
        intermediates: &[X509Certificate],
        at: DateTime<Utc>,
    ) -> Result<(), CertificateError> {
        let mut current = leaf;
        for _ in 0..=intermediates.len() {
            current.check_valid_at(at)?;
            let same_name = |issuer: &&X509Certificate| issuer.subject() == current.issuer();
            let mut named_roots = self.roots.iter().filter(same_name).peekable();
            let root_named = named_roots.peek().is_some();
            if let Some(root) = named_roots.find(|root| root.signed(current)) {
                root.check_authority()?;
                return root.check_valid_at(at);
            }
            let mut named_cas = intermediates.iter().filter(same_name).peekable();
            let ca_named = named_cas.peek().is_some();
            match named_cas.find(|ca| ca.signed(current)) {
                Some(ca) => {
                    ca.check_authority()?;
                    current = ca;
                }
                None if root_named || ca_named => {
                    return Err(CertificateError::BadSignature {
                        subject: current.subject_text(),
                    });
                }
                None => {
                    return Err(CertificateError::UntrustedIssuer {
                        subject: current.subject_text(),
                    });
                }
            }
        }
        Err(CertificateError::ChainTooLong {
            subject: leaf.subject_text(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths() {
        assert_eq!(der_element_len(&[0x30, 0x00]), Some(2));
        assert_eq!(der_element_len(&[0x30, 0x01, 0xAA, 0x00]), Some(3));
        assert_eq!(der_element_len(&[0x30, 0x02, 0xAA]), None);
        assert_eq!(der_element_len(&[0x30, 0x81, 0x01, 0xAA]), Some(4));
        assert_eq!(der_element_len(&[0x30, 0x82, 0x00, 0x01, 0xAA]), Some(5));
        assert_eq!(der_element_len(&[0x30, 0x82, 0x01]), None);
        assert_eq!(der_element_len(&[0x30, 0x80]), None);
        assert_eq!(
            der_element_len(&[0x30, 0x88, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
            None
        );
        assert_eq!(der_element_len(&[0x30]), None);
    }

    #[test]
    fn announced_lengths_need_only_the_header() {
        assert_eq!(der_announced_len(&[0x30, 0x05]), DerLength::Announced(7));
        assert_eq!(
            der_announced_len(&[0x30, 0x82, 0x04, 0xD2]),
            DerLength::Announced(4 + 1234)
        );
        assert_eq!(
            der_announced_len(&[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]),
            DerLength::Announced(6 + 0xFFFF_FFFF)
        );
        assert_eq!(der_announced_len(&[]), DerLength::HeaderIncomplete);
        assert_eq!(der_announced_len(&[0x30]), DerLength::HeaderIncomplete);
        assert_eq!(
            der_announced_len(&[0x30, 0x83, 0x01, 0x00]),
            DerLength::HeaderIncomplete
        );
        assert_eq!(der_announced_len(&[0x30, 0x80, 0x00]), DerLength::NotDer);
        assert_eq!(
            der_announced_len(&[0x30, 0x85, 1, 2, 3, 4, 5]),
            DerLength::NotDer
        );
    }

    #[test]
    fn padding_must_be_zeros() {
        assert_eq!(
            trim_zero_padding(&[0x30, 0x01, 0xAA, 0, 0]),
            Some(&[0x30, 0x01, 0xAA][..])
        );
        assert_eq!(trim_zero_padding(&[0x30, 0x01, 0xAA, 0, 1]), None);
    }
}
