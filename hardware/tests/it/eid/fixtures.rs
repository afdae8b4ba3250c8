//! Test fixtures for the eID tests: TLV files built from field lists, and one test PKI per test
//! binary (generated once, deterministic seeds).
//!
//! RSA keys are 1024-bit: the verifier does not depend on the key size and 2048-bit generation is
//! slow in debug builds. Every validity period runs 2020–2040; tests check at [`now`].

use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use p384::ecdsa::SigningKey as EcSigningKey;
use p384::ecdsa::signature::Signer;
use p384::ecdsa::signature::hazmat::PrehashSigner;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rsa::pkcs8::EncodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use sha2::{Digest, Sha256, Sha384};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::Encode;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

use busloket_hardware::eid::{CardFiles, PhotoHash, TrustAnchors};

pub const NATIONAL_NUMBER: &str = "85073003328";

/// The moment the tests verify at.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
}

/// Encodes fields as the card does: tag, length (`FF` = 255 + next byte), value.
pub fn tlv(fields: &[(u8, &[u8])]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (tag, value) in fields {
        bytes.push(*tag);
        let mut rest = value.len();
        while rest >= 255 {
            bytes.push(0xFF);
            rest -= 255;
        }
        bytes.push(rest as u8);
        bytes.extend_from_slice(value);
    }
    bytes
}

pub const PHOTO: &[u8] = b"\xFF\xD8\xFF\xE0 a grey JPEG of 140 by 200 pixels \xFF\xD9";

/// The identity fields of a Belgian citizen (Dutch card), with the given photo hash and,
/// for applet 1.8 cards, the hash of the basic key file.
pub fn identity_fields(photo_hash: &[u8], basic_key_hash: Option<&[u8]>) -> Vec<(u8, Vec<u8>)> {
    let mut fields: Vec<(u8, Vec<u8>)> = vec![
        (0x00, vec![0x01]),
        (0x01, b"592123456789".to_vec()),
        (0x02, (0..16).collect()),
        (0x03, b"01.02.2024".to_vec()),
        (0x04, b"01.02.2034".to_vec()),
        (0x05, b"Gent".to_vec()),
        (0x06, NATIONAL_NUMBER.as_bytes().to_vec()),
        (0x07, "Van den Brœck".as_bytes().to_vec()),
        (0x08, "Anaïs Éloïse".as_bytes().to_vec()),
        (0x09, b"M".to_vec()),
        (0x0A, b"Belg".to_vec()),
        (0x0B, b"Brugge".to_vec()),
        (0x0C, b"30 JUL 1985".to_vec()),
        (0x0D, b"V".to_vec()),
        (0x0F, b"1".to_vec()),
        (0x11, photo_hash.to_vec()),
    ];
    if let Some(hash) = basic_key_hash {
        fields.push((0x1A, hash.to_vec()));
    }
    fields
}

pub fn encode(fields: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let borrowed: Vec<(u8, &[u8])> = fields.iter().map(|(t, v)| (*t, v.as_slice())).collect();
    tlv(&borrowed)
}

/// The address file, zero-padded to its fixed 117 bytes.
pub fn address_file(street: &str) -> Vec<u8> {
    let mut bytes = tlv(&[
        (0x00, &[0x01]),
        (0x01, street.as_bytes()),
        (0x02, b"9000"),
        (0x03, b"Gent"),
    ]);
    bytes.resize(117.max(bytes.len()), 0);
    bytes
}

/// A certificate authority or end entity of the test PKI.
pub enum Key {
    Rsa(RsaPrivateKey),
    Ec(EcSigningKey),
}

impl Key {
    pub fn spki(&self) -> SubjectPublicKeyInfoOwned {
        let der = match self {
            Key::Rsa(key) => key.to_public_key().to_public_key_der().unwrap(),
            Key::Ec(key) => key.verifying_key().to_public_key_der().unwrap(),
        };
        SubjectPublicKeyInfoOwned::try_from(der.as_bytes()).unwrap()
    }

    pub fn spki_der(&self) -> Vec<u8> {
        self.spki().to_der().unwrap()
    }

    /// What the national register does to a file: RSA PKCS#1 v1.5 with SHA-256, or ECDSA P-384
    /// with SHA-384 in DER.
    pub fn sign_file(&self, message: &[u8]) -> Vec<u8> {
        match self {
            Key::Rsa(key) => key
                .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(message))
                .unwrap(),
            Key::Ec(key) => {
                let signature: p384::ecdsa::Signature = key.sign(message);
                signature.to_der().as_bytes().to_vec()
            }
        }
    }

    /// What the card does with a digest: RSA PKCS#1 v1.5 (SHA-256 DigestInfo) or raw `r‖s`.
    pub fn sign_digest(&self, digest: &[u8]) -> Vec<u8> {
        match self {
            Key::Rsa(key) => key.sign(Pkcs1v15Sign::new::<Sha256>(), digest).unwrap(),
            Key::Ec(key) => {
                let signature: p384::ecdsa::Signature = key.sign_prehash(digest).unwrap();
                signature.to_bytes().to_vec()
            }
        }
    }
}

fn validity() -> Validity {
    let at = |year: i32| {
        let seconds = Utc
            .with_ymd_and_hms(year, 1, 1, 0, 0, 0)
            .unwrap()
            .timestamp();
        Time::UtcTime(
            x509_cert::der::asn1::UtcTime::from_unix_duration(Duration::from_secs(seconds as u64))
                .unwrap(),
        )
    };
    Validity {
        not_before: at(2020),
        not_after: at(2040),
    }
}

/// What a certificate is for.
pub enum Role<'a> {
    Root,
    Authority { issuer: &'a str },
    Leaf { issuer: &'a str },
}

/// Issues a certificate for `subject_key` named `subject`, signed by `issuer_key`.
pub fn certificate(
    subject: &str,
    subject_key: &Key,
    role: Role<'_>,
    issuer_key: &Key,
    serial: u8,
) -> Vec<u8> {
    let subject_name = Name::from_str(subject).unwrap();
    let profile = match role {
        Role::Root => Profile::Root,
        Role::Authority { issuer } => Profile::SubCA {
            issuer: Name::from_str(issuer).unwrap(),
            path_len_constraint: Some(0),
        },
        Role::Leaf { issuer } => Profile::Leaf {
            issuer: Name::from_str(issuer).unwrap(),
            enable_key_agreement: false,
            enable_key_encipherment: false,
        },
    };
    let serial = SerialNumber::new(&[serial]).unwrap();
    let spki = subject_key.spki();
    let certificate = match issuer_key {
        Key::Rsa(key) => {
            let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone());
            CertificateBuilder::new(profile, serial, validity(), subject_name, spki, &signer)
                .unwrap()
                .build::<rsa::pkcs1v15::Signature>()
                .unwrap()
        }
        Key::Ec(key) => {
            CertificateBuilder::new(profile, serial, validity(), subject_name, spki, key)
                .unwrap()
                .build::<p384::ecdsa::DerSignature>()
                .unwrap()
        }
    };
    certificate.to_der().unwrap()
}

/// Zero padding after a DER structure, as on the card.
pub fn padded(der: &[u8], padding: usize) -> Vec<u8> {
    let mut bytes = der.to_vec();
    bytes.resize(der.len() + padding, 0);
    bytes
}

pub const ROOT: &str = "CN=Test Root,O=Busloket Tests,C=BE";
pub const EC_ROOT: &str = "CN=Test Root EC,O=Busloket Tests,C=BE";
pub const RRN: &str = "CN=RRN,O=RRN,C=BE";
pub const CITIZEN_CA: &str = "CN=Test Citizen CA,C=BE";

/// The test PKI: an RSA root (applet 1.7 era) and an EC root (applet 1.8 era), an RRN key under
/// each, a citizen CA, authentication keys, and a chip basic key.
pub struct Pki {
    pub rsa_root: Vec<u8>,
    pub ec_root: Vec<u8>,
    pub rsa_rrn_key: Key,
    pub rsa_rrn: Vec<u8>,
    pub ec_rrn_key: Key,
    pub ec_rrn: Vec<u8>,
    pub citizen_ca: Vec<u8>,
    pub rsa_authentication_key: Key,
    pub rsa_authentication: Vec<u8>,
    pub ec_authentication_key: Key,
    pub ec_authentication: Vec<u8>,
    pub basic_key: Key,
    /// A root nobody configured, and an RRN certificate it issued with the real RRN's name.
    pub rogue_rrn_key: Key,
    pub rogue_rrn: Vec<u8>,
    /// A certificate in the name of [`NATIONAL_NUMBER`] that someone else signed with their own
    /// (genuine) authentication key, and that authentication certificate.
    pub impostor_authentication: Vec<u8>,
    pub forged_authentication: Vec<u8>,
}

pub static PKI: LazyLock<Pki> = LazyLock::new(|| {
    let mut rng = ChaCha8Rng::seed_from_u64(1830);
    let mut rsa = || Key::Rsa(RsaPrivateKey::new(&mut rng, 1024).unwrap());
    let rsa_root_key = rsa();
    let rsa_rrn_key = rsa();
    let citizen_ca_key = rsa();
    let rsa_authentication_key = rsa();
    let rogue_root_key = rsa();
    let rogue_rrn_key = rsa();
    let impostor_authentication_key = rsa();
    let victim_key = rsa();
    let mut rng = ChaCha8Rng::seed_from_u64(1831);
    let mut ec = || Key::Ec(EcSigningKey::random(&mut rng));
    let ec_root_key = ec();
    let ec_rrn_key = ec();
    let ec_authentication_key = ec();
    let basic_key = ec();

    let authentication_subject =
        format!("CN=Anaïs Van den Brœck (Authentication),serialNumber={NATIONAL_NUMBER},C=BE");
    let impostor_subject = "CN=Impostor (Authentication),serialNumber=90010112345,C=BE";
    let leaf = |issuer| Role::Leaf { issuer };
    Pki {
        rsa_root: certificate(ROOT, &rsa_root_key, Role::Root, &rsa_root_key, 1),
        ec_root: certificate(EC_ROOT, &ec_root_key, Role::Root, &ec_root_key, 2),
        rsa_rrn: certificate(RRN, &rsa_rrn_key, leaf(ROOT), &rsa_root_key, 3),
        ec_rrn: certificate(RRN, &ec_rrn_key, leaf(EC_ROOT), &ec_root_key, 4),
        citizen_ca: certificate(
            CITIZEN_CA,
            &citizen_ca_key,
            Role::Authority { issuer: ROOT },
            &rsa_root_key,
            5,
        ),
        rsa_authentication: certificate(
            &authentication_subject,
            &rsa_authentication_key,
            leaf(CITIZEN_CA),
            &citizen_ca_key,
            6,
        ),
        ec_authentication: certificate(
            &authentication_subject,
            &ec_authentication_key,
            leaf(CITIZEN_CA),
            &citizen_ca_key,
            7,
        ),
        rogue_rrn: certificate(RRN, &rogue_rrn_key, leaf(ROOT), &rogue_root_key, 8),
        impostor_authentication: certificate(
            impostor_subject,
            &impostor_authentication_key,
            leaf(CITIZEN_CA),
            &citizen_ca_key,
            9,
        ),
        forged_authentication: certificate(
            &authentication_subject,
            &victim_key,
            leaf(impostor_subject),
            &impostor_authentication_key,
            10,
        ),
        rsa_rrn_key,
        ec_rrn_key,
        rsa_authentication_key,
        ec_authentication_key,
        basic_key,
        rogue_rrn_key,
    }
});

pub fn anchors() -> TrustAnchors {
    TrustAnchors::from_der([PKI.rsa_root.as_slice(), PKI.ec_root.as_slice()]).unwrap()
}

/// The files of a consistent card: applet 1.7 (RSA RRN key, SHA-256 photo hash) or applet 1.8
/// (EC RRN key, SHA-384 photo hash, basic key hash), signed as the national register does.
pub fn card_files(ec: bool) -> CardFiles {
    let pki = &*PKI;
    let (key, certificate, photo_hash) = if ec {
        (
            &pki.ec_rrn_key,
            &pki.ec_rrn,
            PhotoHash::Sha384(Sha384::digest(PHOTO).into()),
        )
    } else {
        (
            &pki.rsa_rrn_key,
            &pki.rsa_rrn,
            PhotoHash::Sha256(Sha256::digest(PHOTO).into()),
        )
    };
    let basic_key_hash: Option<[u8; 48]> =
        ec.then(|| Sha384::digest(pki.basic_key.spki_der()).into());
    let identity = encode(&identity_fields(
        photo_hash.as_bytes(),
        basic_key_hash.as_ref().map(|h| h.as_slice()),
    ));
    signed_files(
        key,
        certificate,
        identity,
        address_file("Korenmarkt 1 bus 2"),
        ec,
    )
}

/// Signs an identity and address file with `key`; EC signature files are zero-padded.
pub fn signed_files(
    key: &Key,
    certificate: &[u8],
    identity: Vec<u8>,
    address: Vec<u8>,
    ec: bool,
) -> CardFiles {
    let pad = |signature: Vec<u8>| if ec { padded(&signature, 8) } else { signature };
    let identity_signature = pad(key.sign_file(&identity));
    let address_signature = pad(key.sign_file(&address_message(&address, &identity_signature)));
    CardFiles {
        identity,
        identity_signature,
        address,
        address_signature,
        photo: PHOTO.to_vec(),
        rrn_certificate: padded(certificate, 50),
    }
}

/// What the address signature covers: the address file without trailing zeros, then the
/// identity signature file.
pub fn address_message(address: &[u8], identity_signature: &[u8]) -> Vec<u8> {
    let used = address.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let mut message = address[..used].to_vec();
    message.extend_from_slice(identity_signature);
    message
}
