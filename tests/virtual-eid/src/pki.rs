//! The test PKI the virtual cards are signed with: a test root, the test national-register (RRN)
//! certificate that signs the identity and address files, a test Citizen CA and a test Foreigner
//! CA that issue the cards' authentication and signature certificates.
//!
//! Everything is derived from a seed: the same seed and profile give the same keys and the same
//! certificates, byte for byte (RSA keys come from a seeded ChaCha20 generator, ECDSA signatures
//! are RFC 6979 deterministic, PKCS#1 v1.5 signatures are deterministic by construction). A test
//! that runs the binary can therefore rebuild the root in-process instead of reading it from a
//! file. These certificates chain to a *test* root only: production must never trust it.
//!
//! The keys themselves come from `keys`; the first 1.7 PKI of a process takes about two seconds
//! in a debug build (four RSA-2048 keys), later ones reuse the cached keys.

use busloket_hardware::CardIdentity;
use chrono::{Datelike, NaiveDate};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyUsagePurpose, SerialNumber, date_time_ymd,
};
use sha2::{Digest, Sha256};

use crate::keys::{CertificateKey, TestKey, derive_key, derive_p384};
use crate::profile::Profile;

/// Why the test PKI could not be built. All of these are bugs or impossible inputs, never a
/// condition a test is expected to meet.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// `rsa::Error` is not `Clone`, and a failed generation is cached like a key, so the
    /// cause is kept as text.
    #[error("generating the RSA key {label:?} failed: {reason}")]
    RsaKey { label: String, reason: String },
    #[error("issuing the certificate {subject:?} failed")]
    Certificate {
        subject: String,
        #[source]
        source: rcgen::Error,
    },
}

/// The keys and certificates of one card, issued by a [`TestPki`].
#[derive(Debug, Clone)]
pub struct CardKeys {
    /// Key 82: PSO after a verified PIN ("PIN once").
    pub authentication: TestKey,
    pub authentication_certificate_der: Vec<u8>,
    /// Key 83: PSO right after a verified PIN. It makes legal signatures on a real card; the
    /// node must never use it.
    pub non_repudiation: TestKey,
    pub non_repudiation_certificate_der: Vec<u8>,
    /// The DER of the CA that issued both (Citizen CA or Foreigner CA), for file 503A.
    pub issuing_ca_certificate_der: Vec<u8>,
}

/// The test root, the RRN certificate and the two card-issuing CAs of one profile.
#[derive(Debug, Clone)]
pub struct TestPki {
    profile: Profile,
    seed: u64,
    root: TestKey,
    root_certificate_der: Vec<u8>,
    rrn: TestKey,
    rrn_certificate_der: Vec<u8>,
    citizen_ca: TestKey,
    citizen_ca_certificate_der: Vec<u8>,
    foreigner_ca: TestKey,
    foreigner_ca_certificate_der: Vec<u8>,
}

/// The seed the binary and most tests use.
pub const DEFAULT_SEED: u64 = 20_261_123;

const ROOT_NAME: &str = "busloket TEST Root (not Belgium Root)";
const CITIZEN_CA_NAME: &str = "busloket TEST Citizen CA";
const FOREIGNER_CA_NAME: &str = "busloket TEST Foreigner CA";

impl TestPki {
    /// Builds the PKI of `profile` from `seed`. The first call for a 1.7 profile generates four
    /// RSA-2048 keys (seconds in a debug build); later calls in the same process reuse them.
    pub fn generate(profile: Profile, seed: u64) -> Result<TestPki, PkiError> {
        let root = derive_key(profile, seed, "root")?;
        let rrn = derive_key(profile, seed, "rrn")?;
        let citizen_ca = derive_key(profile, seed, "citizen-ca")?;
        let foreigner_ca = derive_key(profile, seed, "foreigner-ca")?;

        let root_certificate_der = ca_params(ROOT_NAME, 1, None, &root)
            .self_signed(&CertificateKey::new(&root))
            .map(|certificate| certificate.der().to_vec())
            .map_err(|source| certificate_error(ROOT_NAME, source))?;
        let root_issuer = rcgen::Issuer::new(
            ca_params(ROOT_NAME, 1, None, &root),
            CertificateKey::new(&root),
        );
        let issue_ca = |name: &str, serial: u64, key: &TestKey| {
            ca_params(name, serial, Some(&root), key)
                .signed_by(&CertificateKey::new(key), &root_issuer)
                .map(|certificate| certificate.der().to_vec())
                .map_err(|source| certificate_error(name, source))
        };
        let citizen_ca_certificate_der = issue_ca(CITIZEN_CA_NAME, 3, &citizen_ca)?;
        let foreigner_ca_certificate_der = issue_ca(FOREIGNER_CA_NAME, 4, &foreigner_ca)?;

        let mut rrn_params = end_entity_params(2, &rrn);
        rrn_params.distinguished_name = distinguished_name(&[
            (DnType::CountryName, "BE"),
            (DnType::OrganizationName, "RRN"),
            (DnType::CommonName, "RRN"),
        ]);
        rrn_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::ContentCommitment,
        ];
        let rrn_certificate_der = rrn_params
            .signed_by(&CertificateKey::new(&rrn), &root_issuer)
            .map(|certificate| certificate.der().to_vec())
            .map_err(|source| certificate_error("RRN", source))?;

        Ok(TestPki {
            profile,
            seed,
            root,
            root_certificate_der,
            rrn,
            rrn_certificate_der,
            citizen_ca,
            citizen_ca_certificate_der,
            foreigner_ca,
            foreigner_ca_certificate_der,
        })
    }

    pub fn profile(&self) -> Profile {
        self.profile
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The test root: the trust anchor a verifier under test must be configured with.
    pub fn root_certificate_der(&self) -> &[u8] {
        &self.root_certificate_der
    }

    /// The root as PEM, for configuration files.
    pub fn root_certificate_pem(&self) -> String {
        pem::encode(&pem::Pem::new(
            "CERTIFICATE",
            self.root_certificate_der.clone(),
        ))
    }

    /// The RRN certificate (file 503C): its key signs the identity and address files.
    pub fn rrn_certificate_der(&self) -> &[u8] {
        &self.rrn_certificate_der
    }

    pub fn citizen_ca_certificate_der(&self) -> &[u8] {
        &self.citizen_ca_certificate_der
    }

    pub fn foreigner_ca_certificate_der(&self) -> &[u8] {
        &self.foreigner_ca_certificate_der
    }

    /// Signs a card file (or the address ‖ identity-signature message) as the register does.
    pub fn rrn_sign(&self, message: &[u8]) -> Vec<u8> {
        self.rrn.sign_message(message)
    }

    /// Issues the authentication and non-repudiation keys and certificates of `identity`'s
    /// card: subject `C=BE, CN=<first name> <surname> (Authentication|Signature), SN, GN,
    /// serialNumber=<national number>`, issued by the Foreigner CA for foreigner cards and by
    /// the Citizen CA otherwise.
    pub fn issue_card_keys(&self, identity: &CardIdentity) -> Result<CardKeys, PkiError> {
        let card_label = format!("card {} {}", identity.card_number, identity.national_number);
        let authentication = derive_key(self.profile, self.seed, &format!("{card_label} auth"))?;
        let non_repudiation = derive_key(self.profile, self.seed, &format!("{card_label} sign"))?;
        let foreigner = matches!(
            identity.document_type,
            busloket_hardware::DocumentType::ForeignerCard { .. }
        );
        let (ca_name, ca_serial, ca_key, ca_der) = if foreigner {
            (
                FOREIGNER_CA_NAME,
                4,
                &self.foreigner_ca,
                &self.foreigner_ca_certificate_der,
            )
        } else {
            (
                CITIZEN_CA_NAME,
                3,
                &self.citizen_ca,
                &self.citizen_ca_certificate_der,
            )
        };
        let issue = |role: &str, key: &TestKey, usage: KeyUsagePurpose| {
            let serial = serial_from_label(&format!("{card_label} {role}"));
            let mut params = end_entity_params(serial, key);
            let given_name = identity.first_names.split(' ').next().unwrap_or_default();
            params.distinguished_name = distinguished_name(&[
                (DnType::CountryName, "BE"),
                (
                    DnType::CommonName,
                    &format!("{given_name} {} ({role})", identity.surname),
                ),
                (DnType::CustomDnType(vec![2, 5, 4, 4]), &identity.surname),
                (
                    DnType::CustomDnType(vec![2, 5, 4, 42]),
                    &identity.first_names,
                ),
            ]);
            push_printable(
                &mut params.distinguished_name,
                vec![2, 5, 4, 5],
                &identity.national_number,
            );
            set_validity(&mut params, identity.valid_from, identity.valid_until);
            params.key_usages = vec![usage];
            if role == "Authentication" {
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            }
            let issuer = rcgen::Issuer::new(
                ca_params(ca_name, ca_serial, Some(&self.root), ca_key),
                CertificateKey::new(ca_key),
            );
            params
                .signed_by(&CertificateKey::new(key), &issuer)
                .map(|certificate| certificate.der().to_vec())
                .map_err(|source| certificate_error(role, source))
        };
        let authentication_certificate_der = issue(
            "Authentication",
            &authentication,
            KeyUsagePurpose::DigitalSignature,
        )?;
        let non_repudiation_certificate_der = issue(
            "Signature",
            &non_repudiation,
            KeyUsagePurpose::ContentCommitment,
        )?;
        Ok(CardKeys {
            authentication,
            authentication_certificate_der,
            non_repudiation,
            non_repudiation_certificate_der,
            issuing_ca_certificate_der: ca_der.clone(),
        })
    }

    /// The basic key (PuK#1, file 4040) of the chip with `chip_number`: always ECDSA P-384, and
    /// bound to the chip, not to the files, so a file set copied onto another chip does not
    /// match it.
    pub fn chip_basic_key(&self, chip_number: &str) -> TestKey {
        TestKey::EcP384(derive_p384(self.seed, &format!("chip {chip_number} basic")))
    }
}

fn certificate_error(subject: &str, source: rcgen::Error) -> PkiError {
    PkiError::Certificate {
        subject: subject.to_owned(),
        source,
    }
}

fn distinguished_name(parts: &[(DnType, &str)]) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    for (kind, value) in parts {
        if kind == &DnType::CountryName {
            push_printable(&mut name, vec![2, 5, 4, 6], value);
        } else {
            name.push(kind.clone(), DnValue::Utf8String((*value).to_owned()));
        }
    }
    name
}

/// Country and serialNumber are PrintableString in X.520, and real eID certificates use it.
fn push_printable(name: &mut DistinguishedName, oid: Vec<u64>, value: &str) {
    let kind = if oid == [2, 5, 4, 6] {
        DnType::CountryName
    } else {
        DnType::CustomDnType(oid)
    };
    match rcgen::string::PrintableString::try_from(value) {
        Ok(printable) => name.push(kind, DnValue::PrintableString(printable)),
        Err(_) => name.push(kind, DnValue::Utf8String(value.to_owned())),
    }
}

fn ca_params(
    name: &str,
    serial: u64,
    issuer: Option<&TestKey>,
    key: &TestKey,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name =
        distinguished_name(&[(DnType::CountryName, "BE"), (DnType::CommonName, name)]);
    params.serial_number = Some(SerialNumber::from(serial));
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2045, 1, 1);
    params.is_ca = IsCa::Ca(match issuer {
        None => BasicConstraints::Unconstrained,
        Some(_) => BasicConstraints::Constrained(0),
    });
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier(key));
    params.use_authority_key_identifier_extension = issuer.is_some();
    params
}

fn end_entity_params(serial: u64, key: &TestKey) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.serial_number = Some(SerialNumber::from(serial));
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2040, 1, 1);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier(key));
    params.use_authority_key_identifier_extension = true;
    params
}

/// RFC 7093 method 1: the leftmost 160 bits of the SHA-256 of the public key.
fn key_identifier(key: &TestKey) -> Vec<u8> {
    Sha256::digest(key.raw_public_key())[..20].to_vec()
}

/// Sets a certificate's validity to whole days (midnight UTC).
fn set_validity(params: &mut CertificateParams, from: NaiveDate, until: NaiveDate) {
    // Card dates are calendar dates, whose month and day always fit a u8.
    let ymd = |date: NaiveDate| date_time_ymd(date.year(), date.month() as u8, date.day() as u8);
    params.not_before = ymd(from);
    params.not_after = ymd(until);
}

/// A positive certificate serial number derived from a label.
fn serial_from_label(label: &str) -> u64 {
    let hash = label_hash(label);
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    u64::from_be_bytes(first) >> 1
}

fn label_hash(label: &str) -> [u8; 32] {
    Sha256::digest(label.as_bytes()).into()
}
