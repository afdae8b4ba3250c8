//! The city's CA directory: creating it (`ca init`), opening it to issue, and revoking a device.
//!
//! Layout of the CA directory (mode 0700; keys 0600, everything else 0644):
//!
//! | file | what |
//! | --- | --- |
//! | `ca.key`, `ca.pem` | the CA: ECDSA P-256, self-signed, CA with path length 0 (it signs end-entity certificates only), key usage keyCertSign + cRLSign, 10 years, CN "<city> busloket CA" |
//! | `hub.key`, `hub.pem` | the hub's TLS server certificate: ECDSA P-256, serverAuth, the hub's host names and addresses, 2 years |
//! | `issuing.key`, `issuing.pub.pem` | the city's document-issuing key (Ed25519, PKCS#8 / SPKI PEM), which signs the QR seals of issued documents |
//! | `revoked.crl.pem` | the CRL, signed by the CA; number 1 and empty after `ca init` |
//! | `issued.toml` | every certificate issued, per device, and which devices are revoked ([`crate::registry`]) |
//!
//! Choices: ECDSA P-256 for the CA and the TLS servers because every TLS client (rustls, the
//! tablets' browsers) accepts it; certificates start an hour before `now` so a bus whose clock
//! is a little behind still accepts them; serials are 16 random bytes. `ca init` checks every
//! file is absent before writing the first, and writes each with `O_EXCL`, so it never
//! overwrites anything. Opening the CA checks that its key file is private and matches `ca.pem`,
//! and that the CA is still valid.

use std::fs::{self, DirBuilder};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use busloket_sync::terms::DeviceId;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use crate::bundle::{self, CaCertificate};
use crate::crl::{self, RevokedCertificate};
use crate::error::TrustError;
use crate::pki::files::{self, KEY_MODE, PUBLIC_MODE};
use crate::pki::{self, Serial};
use crate::registry::{self, Registry};

pub const CA_KEY_FILE: &str = "ca.key";
pub const CA_CERTIFICATE_FILE: &str = "ca.pem";
pub const HUB_KEY_FILE: &str = "hub.key";
pub const HUB_CERTIFICATE_FILE: &str = "hub.pem";
pub const ISSUING_KEY_FILE: &str = "issuing.key";
pub const ISSUING_PUBLIC_KEY_FILE: &str = "issuing.pub.pem";
pub const CRL_FILE: &str = "revoked.crl.pem";

const CA_VALIDITY: Duration = Duration::days(3653);
const HUB_VALIDITY: Duration = Duration::days(730);
/// Certificates start this long before `now`, for clocks that are a little behind.
pub(crate) const CLOCK_SKEW: Duration = Duration::hours(1);

/// What `ca init` wrote.
#[derive(Debug, Clone)]
pub struct CaCreated {
    pub dir: PathBuf,
    pub ca_subject: String,
    pub files: Vec<PathBuf>,
}

/// Creates the city's CA directory (see the module documentation). `name` is the city's name,
/// e.g. "City of Kortrijk"; `hub_hosts` the hub's DNS names or IP addresses.
pub fn init_ca(
    dir: &Path,
    name: &str,
    hub_hosts: &[String],
    now: SystemTime,
) -> Result<CaCreated, TrustError> {
    let name = name.trim();
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(TrustError::BadCityName);
    }
    let hub_names = subject_alt_names(hub_hosts, "hub")?;
    let outputs = [
        CA_KEY_FILE,
        CA_CERTIFICATE_FILE,
        HUB_KEY_FILE,
        HUB_CERTIFICATE_FILE,
        ISSUING_KEY_FILE,
        ISSUING_PUBLIC_KEY_FILE,
        CRL_FILE,
        registry::REGISTRY_FILE,
    ]
    .map(|file| dir.join(file));
    create_private_dir(dir)?;
    for path in &outputs {
        files::ensure_absent(path)?;
    }
    let now = pki::offset_date_time(now);

    let ca_key = new_p256_key("the CA key")?;
    let mut ca_params = CertificateParams::default();
    let ca_subject = format!("{name} busloket CA");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_subject.as_str());
    ca_params
        .distinguished_name
        .push(DnType::OrganizationName, name);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.serial_number = Some(rcgen::SerialNumber::from_slice(Serial::random().as_bytes()));
    ca_params.not_before = now - CLOCK_SKEW;
    ca_params.not_after = now + CA_VALIDITY;
    let ca_certificate = ca_params.self_signed(&ca_key).map_err(crypto("the CA"))?;
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca_params, ca_key);

    let hub_key = new_p256_key("the hub's key")?;
    let mut hub_params = end_entity_params(&format!("{name} busloket hub"), now, HUB_VALIDITY);
    hub_params.subject_alt_names = hub_names;
    hub_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let hub_certificate = hub_params
        .signed_by(&hub_key, &issuer)
        .map_err(crypto("the hub's certificate"))?;

    let issuing_key = SigningKey::generate(&mut rand::rngs::OsRng);
    let issuing_key_pem =
        issuing_key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|_| TrustError::Encoding {
                what: "the issuing key",
            })?;
    let issuing_public_pem = issuing_key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|_| TrustError::Encoding {
            what: "the issuing public key",
        })?;

    let crl = crl::sign_crl(&issuer, 1, &[], now).map_err(crypto("the revocation list"))?;
    let registry_text = registry::text(&Registry::default())?;

    let (ca_pem, hub_key_pem, hub_pem) = (
        ca_certificate.pem(),
        hub_key.serialize_pem(),
        hub_certificate.pem(),
    );
    let contents: [(&[u8], u32); 8] = [
        (ca_key_pem.as_bytes(), KEY_MODE),
        (ca_pem.as_bytes(), PUBLIC_MODE),
        (hub_key_pem.as_bytes(), KEY_MODE),
        (hub_pem.as_bytes(), PUBLIC_MODE),
        (issuing_key_pem.as_bytes(), KEY_MODE),
        (issuing_public_pem.as_bytes(), PUBLIC_MODE),
        (crl.as_bytes(), PUBLIC_MODE),
        (registry_text.as_bytes(), PUBLIC_MODE),
    ];
    for (path, (bytes, mode)) in outputs.iter().zip(contents) {
        files::write_new(path, bytes, mode)?;
    }
    Ok(CaCreated {
        dir: dir.to_owned(),
        ca_subject,
        files: outputs.to_vec(),
    })
}

/// The CA opened to issue: its key, its certificate, and the issuer rcgen signs with.
pub(crate) struct OpenCa {
    pub certificate: CaCertificate,
    pub not_after: OffsetDateTime,
    pub issuer: Issuer<'static, KeyPair>,
}

pub(crate) fn open_ca(dir: &Path, now: SystemTime) -> Result<OpenCa, TrustError> {
    let certificate = bundle::read_ca(&dir.join(CA_CERTIFICATE_FILE), now)?;
    let key_path = dir.join(CA_KEY_FILE);
    let key_pem = files::read_private_key_pem(&key_path)?;
    let key = KeyPair::from_pem(&key_pem).map_err(|_| bundle::BundleError::NotKey {
        path: key_path.clone(),
        expected: "ECDSA P-256",
    })?;
    let parsed = bundle::parse_certificate(&certificate.path, &certificate.der)?;
    if parsed.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err(TrustError::CaKeyMismatch {
            path: key_path,
            certificate: certificate.path.clone(),
        });
    }
    let not_after = parsed.validity().not_after.to_datetime();
    let issuer = Issuer::from_ca_cert_der(&certificate.der.as_slice().into(), key)
        .map_err(crypto("the CA's issuer"))?;
    Ok(OpenCa {
        certificate,
        not_after,
        issuer,
    })
}

/// What `device revoke` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// Every serial ever issued to the device (all are on the CRL now).
    pub serials: Vec<Serial>,
    /// Serials this call added to the CRL (none if the device was already revoked).
    pub newly_listed: Vec<Serial>,
    pub crl_number: u64,
}

/// Revokes every certificate issued to `device`: marks the device revoked in `issued.toml`
/// (first, so it cannot be enrolled again even if signing the CRL fails), then re-signs the CRL
/// with its serials and the next number. Running it again changes nothing.
pub fn revoke_device(
    ca_dir: &Path,
    device: &DeviceId,
    now: SystemTime,
) -> Result<Revocation, TrustError> {
    let ca = open_ca(ca_dir, now)?;
    let mut registry = registry::load(ca_dir)?;
    let Some(record) = registry.devices.get_mut(device) else {
        return Err(TrustError::UnknownDevice {
            device: device.to_string(),
        });
    };
    let now = pki::offset_date_time(now);
    let serials = record
        .certificates
        .iter()
        .map(|issued| {
            issued
                .serial
                .parse::<Serial>()
                .map_err(|_| TrustError::BadRequest {
                    path: registry::path(ca_dir),
                    problem: format!("\"{}\" is not a serial number", issued.serial),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if record.revoked_at.is_none() {
        record.revoked_at = Some(pki::human_date(now));
        registry::save(ca_dir, &registry)?;
    }

    let crl_path = ca_dir.join(CRL_FILE);
    let current = crl::load_crl(&crl_path, &ca.certificate.der.as_slice().into())?;
    let newly_listed: Vec<Serial> = serials
        .iter()
        .filter(|serial| current.revoked_at(serial).is_none())
        .cloned()
        .collect();
    if newly_listed.is_empty() {
        return Ok(Revocation {
            serials,
            newly_listed,
            crl_number: current.number,
        });
    }
    let mut revoked = current.revoked;
    revoked.extend(newly_listed.iter().map(|serial| RevokedCertificate {
        serial: serial.clone(),
        revoked_at: now,
    }));
    let number = current.number + 1;
    let crl =
        crl::sign_crl(&ca.issuer, number, &revoked, now).map_err(crypto("the revocation list"))?;
    files::replace(&crl_path, crl.as_bytes(), PUBLIC_MODE)?;
    Ok(Revocation {
        serials,
        newly_listed,
        crl_number: number,
    })
}

/// Parameters shared by every end-entity certificate: common name, random serial, not a CA,
/// digital signature, the authority key identifier, valid from a little before `now`.
pub(crate) fn end_entity_params(
    common_name: &str,
    now: OffsetDateTime,
    validity: Duration,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(Serial::random().as_bytes()));
    params.not_before = now - CLOCK_SKEW;
    params.not_after = now + validity;
    params
}

/// Subject alternative names from host names or addresses (at least one).
pub(crate) fn subject_alt_names(
    hosts: &[String],
    what: &'static str,
) -> Result<Vec<rcgen::SanType>, TrustError> {
    if hosts.is_empty() {
        return Err(TrustError::NoHost { what });
    }
    hosts
        .iter()
        .map(|host| {
            pki::subject_alt_name(host).ok_or_else(|| TrustError::BadHost { host: host.clone() })
        })
        .collect()
}

pub(crate) fn new_p256_key(what: &str) -> Result<KeyPair, TrustError> {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(crypto(what))
}

pub(crate) fn crypto(what: &str) -> impl FnOnce(rcgen::Error) -> TrustError + '_ {
    move |source| TrustError::Crypto {
        what: what.to_owned(),
        source,
    }
}

/// Creates `dir` (mode 0700) if it does not exist; an existing directory is used as it is.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), TrustError> {
    if fs::metadata(dir).is_ok_and(|metadata| metadata.is_dir()) {
        return Ok(());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| {
            TrustError::File(files::FileError::Write {
                path: dir.to_owned(),
                source,
            })
        })
}
