//! The private keys of the test PKI and of the virtual cards, derived from a seed and a label,
//! and the glue that lets rcgen sign certificates with them.
//!
//! RSA keys come from a ChaCha20 generator seeded with SHA-256(seed, profile, label); P-384
//! keys are SHA-384(seed, label, counter) taken as a scalar. RSA-2048 generation is slow in
//! debug builds (num-bigint-dig), so generated RSA keys are cached for the life of the process.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, OnceLock, PoisonError};

use p384::ecdsa::signature::Signer;
use p384::ecdsa::signature::hazmat::PrehashSigner;
use p384::pkcs8::EncodePublicKey;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use rcgen::{PublicKeyData, SignatureAlgorithm, SigningKey};
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use sha2::{Digest, Sha256, Sha384};

use crate::pki::PkiError;
use crate::profile::Profile;

/// A private key of the test PKI or of a virtual card.
#[derive(Clone)]
pub enum TestKey {
    Rsa(Arc<RsaPrivateKey>),
    EcP384(p384::ecdsa::SigningKey),
}

impl fmt::Debug for TestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TestKey::Rsa(_) => f.write_str("TestKey::Rsa(<2048-bit private key>)"),
            TestKey::EcP384(_) => f.write_str("TestKey::EcP384(<private key>)"),
        }
    }
}

impl TestKey {
    /// The public key as a DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> Vec<u8> {
        let encoded = match self {
            TestKey::Rsa(key) => key.to_public_key().to_public_key_der(),
            TestKey::EcP384(key) => key.verifying_key().to_public_key_der(),
        };
        // Encoding a well-formed in-memory key cannot fail; an empty SPKI would make every
        // check that uses it fail loudly.
        encoded
            .map(|der| der.as_bytes().to_vec())
            .unwrap_or_default()
    }

    /// Signs `message` the way the national register signs card files: RSA PKCS#1 v1.5 with
    /// SHA-256 (256 bytes), or ECDSA P-384 with SHA-384 as a DER signature.
    pub fn sign_message(&self, message: &[u8]) -> Vec<u8> {
        match self {
            TestKey::Rsa(key) => {
                let digest = Sha256::digest(message);
                // PKCS#1 v1.5 over a SHA-256 digest with a 2048-bit key cannot fail; an empty
                // signature would fail every check loudly (and rcgen refuses it).
                key.sign(Pkcs1v15Sign::new::<Sha256>(), &digest)
                    .unwrap_or_default()
            }
            TestKey::EcP384(key) => {
                let signature: p384::ecdsa::DerSignature = key.sign(message);
                signature.as_bytes().to_vec()
            }
        }
    }

    /// ECDSA over a digest the caller computed, as the card does for PSO and INTERNAL
    /// AUTHENTICATE: raw `r ‖ s`, 96 bytes. `None` for an RSA key or a digest shorter than 24
    /// bytes.
    pub fn sign_ec_prehash(&self, digest: &[u8]) -> Option<Vec<u8>> {
        let TestKey::EcP384(key) = self else {
            return None;
        };
        let signature: p384::ecdsa::Signature = key.sign_prehash(digest).ok()?;
        Some(signature.to_bytes().to_vec())
    }

    /// RSA PKCS#1 v1.5 over `digest_info` (DigestInfo ‖ hash, already assembled), as the card
    /// does for PSO. `None` for an EC key or input too long for the modulus.
    pub fn sign_rsa_digest_info(&self, digest_info: &[u8]) -> Option<Vec<u8>> {
        let TestKey::Rsa(key) = self else {
            return None;
        };
        key.sign(Pkcs1v15Sign::new_unprefixed(), digest_info).ok()
    }

    /// The raw public key rcgen puts in the certificate: PKCS#1 RSAPublicKey for RSA, the
    /// uncompressed point for EC.
    pub(crate) fn raw_public_key(&self) -> Vec<u8> {
        match self {
            TestKey::Rsa(key) => key
                .to_public_key()
                .to_pkcs1_der()
                .map(|der| der.as_bytes().to_vec())
                .unwrap_or_default(),
            TestKey::EcP384(key) => key
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
        }
    }

    fn certificate_algorithm(&self) -> &'static SignatureAlgorithm {
        match self {
            TestKey::Rsa(_) => &rcgen::PKCS_RSA_SHA256,
            TestKey::EcP384(_) => &rcgen::PKCS_ECDSA_P384_SHA384,
        }
    }
}

/// A [`TestKey`] as rcgen sees it: the public half for the subject, the signer for the issuer.
pub(crate) struct CertificateKey<'a> {
    key: &'a TestKey,
    raw_public_key: Vec<u8>,
}

impl<'a> CertificateKey<'a> {
    pub(crate) fn new(key: &'a TestKey) -> CertificateKey<'a> {
        CertificateKey {
            key,
            raw_public_key: key.raw_public_key(),
        }
    }
}

impl PublicKeyData for CertificateKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.raw_public_key
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.key.certificate_algorithm()
    }
}

impl SigningKey for CertificateKey<'_> {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let signature = self.key.sign_message(message);
        if signature.is_empty() {
            return Err(rcgen::Error::RemoteKeyError);
        }
        Ok(signature)
    }
}

fn derivation_seed(profile: Option<Profile>, seed: u64, label: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"busloket-virtual-eid test pki\0");
    hasher.update(seed.to_be_bytes());
    if let Some(profile) = profile {
        hasher.update(profile.to_string().as_bytes());
    }
    hasher.update(label.as_bytes());
    hasher.finalize().into()
}

pub(crate) fn derive_key(profile: Profile, seed: u64, label: &str) -> Result<TestKey, PkiError> {
    match profile {
        Profile::Applet17 => {
            derive_rsa(derivation_seed(Some(profile), seed, label), label).map(TestKey::Rsa)
        }
        Profile::Applet18 => Ok(TestKey::EcP384(derive_p384(
            seed,
            &format!("{profile} {label}"),
        ))),
    }
}

/// A P-384 key from SHA-384(seed ‖ label ‖ counter), retrying in the (astronomically rare)
/// case the digest is not a valid scalar.
pub(crate) fn derive_p384(seed: u64, label: &str) -> p384::ecdsa::SigningKey {
    let base = derivation_seed(None, seed, label);
    (0u32..)
        .find_map(|counter| {
            let mut hasher = Sha384::new();
            hasher.update(base);
            hasher.update(counter.to_be_bytes());
            p384::ecdsa::SigningKey::from_slice(&hasher.finalize()).ok()
        })
        .unwrap_or_else(|| unreachable!("an endless counter always finds a valid scalar"))
}

/// Generated RSA keys of this process, by derivation seed. The map lock is held only to find
/// the slot; generation happens outside it, so two tests can generate two keys in parallel.
type RsaSlot = Arc<OnceLock<Result<Arc<RsaPrivateKey>, String>>>;
static RSA_KEYS: LazyLock<Mutex<HashMap<[u8; 32], RsaSlot>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn derive_rsa(derivation: [u8; 32], label: &str) -> Result<Arc<RsaPrivateKey>, PkiError> {
    let slot = RSA_KEYS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(derivation)
        .or_default()
        .clone();
    let generated = slot.get_or_init(|| {
        let mut rng = ChaCha20Rng::from_seed(derivation);
        RsaPrivateKey::new(&mut rng, 2048)
            .map(Arc::new)
            .map_err(|error| error.to_string())
    });
    generated.clone().map_err(|reason| PkiError::RsaKey {
        label: label.to_owned(),
        reason,
    })
}
