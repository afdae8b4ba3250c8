//! `device enroll`, at the city: the CA certifies a device's two requests and writes the bundle
//! the node loads ([`crate::bundle`]).
//!
//! What is checked before anything is signed: both requests are well-formed and their
//! self-signatures verify (whoever made them holds the keys); the identity key is Ed25519; the
//! device id in the identity request is valid and its `busloket:device:<id>` URI agrees; the
//! Wi-Fi key is ECDSA P-256 and its request names the same device; the Wi-Fi names are host
//! names or IP addresses; the hub URL is https; the device is not revoked; the certificates
//! would not outlive the CA.
//!
//! The certificates are built from these checked values only: nothing else a request asks for
//! (a CA flag, other key usages) reaches a certificate. `device.pem`: CN = device id, SAN URI,
//! EKU clientAuth. `wifi.pem`: CN = device id, the Wi-Fi SANs, EKU serverAuth. Both random
//! serials, from an hour before `now` for `days` days ([`DEFAULT_DAYS`] = 825, the longest
//! validity browsers have accepted for TLS server certificates). Enrolling a device again (new
//! keys, or renewal) is allowed unless it is revoked; every serial is kept in `issued.toml`
//! before the bundle is written, so a later revocation covers all of them.
//!
//! The bundle directory gets `bundle.toml`, `ca.pem`, `device.pem`, `wifi.pem` — public
//! material only; nothing existing is overwritten.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use busloket_sync::terms::DeviceId;
use rcgen::{CertificateSigningRequestParams, ExtendedKeyUsagePurpose, SanType};
use time::Duration;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_SIG_ED25519};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::bundle::{
    self, BUNDLE_FILE, BundleDescription, CA_FILE, DEVICE_CERTIFICATE_FILE, WIFI_CERTIFICATE_FILE,
};
use crate::ca::{self, crypto};
use crate::error::TrustError;
use crate::pki::files::{self, PUBLIC_MODE};
use crate::pki::{self, DEVICE_URI_PREFIX, Serial};
use crate::registry::{self, IssuedCertificate};
use crate::request::{DEVICE_REQUEST_FILE, WIFI_REQUEST_FILE};

/// Days a device's certificates are valid unless the operator says otherwise.
pub const DEFAULT_DAYS: u32 = 825;

/// The two requests of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFiles {
    pub device: PathBuf,
    pub wifi: PathBuf,
}

impl RequestFiles {
    /// From the operator's `--request` arguments: one directory holding `device.csr.pem` and
    /// `wifi.csr.pem`, or the two files themselves, told apart by those names.
    pub fn from_paths(paths: &[PathBuf]) -> Result<RequestFiles, TrustError> {
        if let [dir] = paths
            && dir.is_dir()
        {
            return Ok(RequestFiles {
                device: dir.join(DEVICE_REQUEST_FILE),
                wifi: dir.join(WIFI_REQUEST_FILE),
            });
        }
        let named = |suffix: &str| {
            let mut matching = paths
                .iter()
                .filter(|path| path.to_string_lossy().ends_with(suffix));
            match (matching.next(), matching.next()) {
                (Some(path), None) => Ok(path.clone()),
                _ => Err(TrustError::RequestFiles {
                    problem: format!("got {}", describe(paths)),
                }),
            }
        };
        if paths.len() != 2 {
            return Err(TrustError::RequestFiles {
                problem: format!("got {}", describe(paths)),
            });
        }
        Ok(RequestFiles {
            device: named(DEVICE_REQUEST_FILE)?,
            wifi: named(WIFI_REQUEST_FILE)?,
        })
    }
}

fn describe(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "none".to_owned();
    }
    paths
        .iter()
        .map(|path| path.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What `device enroll` issued.
#[derive(Debug, Clone)]
pub struct Enrolled {
    pub device: DeviceId,
    pub device_serial: Serial,
    pub wifi_serial: Serial,
    pub expires: String,
    pub bundle_dir: PathBuf,
}

/// Certifies a device's requests with the CA in `ca_dir` and writes its bundle to `out` (see the
/// module documentation).
pub fn enroll_device(
    ca_dir: &Path,
    requests: &RequestFiles,
    hub_url: &str,
    out: &Path,
    days: u32,
    now: SystemTime,
) -> Result<Enrolled, TrustError> {
    bundle::check_hub_url(hub_url).map_err(TrustError::BadHubUrl)?;
    if days == 0 {
        return Err(TrustError::ZeroDays);
    }
    let ca = ca::open_ca(ca_dir, now)?;
    let now = pki::offset_date_time(now);
    let validity = Duration::days(i64::from(days));
    if now + validity > ca.not_after {
        return Err(TrustError::OutlivesCa {
            days,
            ca_expires: pki::human_date(ca.not_after),
        });
    }

    let identity = read_request(&requests.device)?;
    let device = identity_device(&requests.device, &identity)?;
    let wifi = read_request(&requests.wifi)?;
    let wifi_names = wifi_names(&requests.wifi, &wifi, &device)?;

    let mut registry = registry::load(ca_dir)?;
    if registry
        .devices
        .get(&device)
        .is_some_and(|record| record.revoked_at.is_some())
    {
        return Err(TrustError::DeviceRevoked {
            device: device.to_string(),
        });
    }

    let outputs = [
        BUNDLE_FILE,
        CA_FILE,
        DEVICE_CERTIFICATE_FILE,
        WIFI_CERTIFICATE_FILE,
    ]
    .map(|file| out.join(file));
    fs::create_dir_all(out).map_err(|source| files::FileError::Write {
        path: out.to_owned(),
        source,
    })?;
    for path in &outputs {
        files::ensure_absent(path)?;
    }

    let device_serial = Serial::random();
    let mut device_params = ca::end_entity_params(device.as_str(), now, validity);
    device_params.serial_number = Some(rcgen::SerialNumber::from_slice(device_serial.as_bytes()));
    device_params.subject_alt_names = vec![device_uri(&device)?];
    device_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let device_certificate = CertificateSigningRequestParams {
        params: device_params,
        public_key: identity.public_key,
    }
    .signed_by(&ca.issuer)
    .map_err(crypto("the device's certificate"))?;

    let wifi_serial = Serial::random();
    let mut wifi_params = ca::end_entity_params(device.as_str(), now, validity);
    wifi_params.serial_number = Some(rcgen::SerialNumber::from_slice(wifi_serial.as_bytes()));
    wifi_params.subject_alt_names = wifi_names;
    wifi_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let wifi_certificate = CertificateSigningRequestParams {
        params: wifi_params,
        public_key: wifi.public_key,
    }
    .signed_by(&ca.issuer)
    .map_err(crypto("the Wi-Fi certificate"))?;

    let issued_at = pki::human_date(now);
    let expires = pki::human_date(now + validity);
    let record = registry.devices.entry(device.clone()).or_default();
    for (serial, kind) in [(&device_serial, "device"), (&wifi_serial, "wifi")] {
        record.certificates.push(IssuedCertificate {
            serial: serial.to_string(),
            kind: kind.to_owned(),
            issued_at: issued_at.clone(),
            expires: expires.clone(),
        });
    }
    registry::save(ca_dir, &registry)?;

    let description = BundleDescription {
        device_id: device.clone(),
        hub_url: hub_url.to_owned(),
        ca: CA_FILE.to_owned(),
        device_certificate: DEVICE_CERTIFICATE_FILE.to_owned(),
        wifi_certificate: WIFI_CERTIFICATE_FILE.to_owned(),
    };
    let description = toml::to_string(&description).map_err(|_| TrustError::Encoding {
        what: "the bundle description",
    })?;
    let ca_pem = files::pem_text("CERTIFICATE", &ca.certificate.der);
    let contents = [
        description,
        ca_pem,
        device_certificate.pem(),
        wifi_certificate.pem(),
    ];
    for (path, text) in outputs.iter().zip(contents) {
        files::write_new(path, text.as_bytes(), PUBLIC_MODE)?;
    }
    Ok(Enrolled {
        device,
        device_serial,
        wifi_serial,
        expires,
        bundle_dir: out.to_owned(),
    })
}

/// A request whose self-signature verified, with what the checks need from it.
struct Request {
    common_name: Option<String>,
    names: Vec<RequestedName>,
    key_kind: KeyKind,
    public_key: rcgen::PublicKey,
}

enum RequestedName {
    Uri(String),
    Dns(String),
    Ip(IpAddr),
    Other(String),
}

#[derive(Debug, PartialEq, Eq)]
enum KeyKind {
    Ed25519,
    P256,
    Other(String),
}

impl KeyKind {
    fn of(key: &SubjectPublicKeyInfo) -> KeyKind {
        let algorithm = &key.algorithm.algorithm;
        if *algorithm == OID_SIG_ED25519 {
            return KeyKind::Ed25519;
        }
        if *algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
            let curve = key
                .algorithm
                .parameters
                .as_ref()
                .and_then(|parameters| parameters.as_oid().ok());
            return match curve {
                Some(curve) if curve == OID_EC_P256 => KeyKind::P256,
                Some(curve) => KeyKind::Other(format!("an ECDSA key on curve {curve}")),
                None => KeyKind::Other("an ECDSA key on an unnamed curve".to_owned()),
            };
        }
        KeyKind::Other(format!("a key of type {algorithm}"))
    }

    fn described(&self) -> String {
        match self {
            KeyKind::Ed25519 => "an Ed25519 key".to_owned(),
            KeyKind::P256 => "an ECDSA P-256 key".to_owned(),
            KeyKind::Other(kind) => kind.clone(),
        }
    }
}

fn read_request(path: &Path) -> Result<Request, TrustError> {
    let der = files::read_pem(path, "CERTIFICATE REQUEST")?;
    let not_request = || TrustError::NotRequest {
        path: path.to_owned(),
    };
    let parsed = match X509CertificationRequest::from_der(&der) {
        Ok(([], parsed)) => parsed,
        _ => return Err(not_request()),
    };
    parsed
        .verify_signature()
        .map_err(|_| TrustError::RequestSignature {
            path: path.to_owned(),
        })?;
    let info = &parsed.certification_request_info;
    let key_kind = KeyKind::of(&info.subject_pki);
    let mut common_names = info.subject.iter_common_name();
    let common_name = match (common_names.next(), common_names.next()) {
        (Some(name), None) => name.as_str().ok().map(str::to_owned),
        _ => None,
    };
    let mut names = Vec::new();
    for extension in parsed.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(alternative) = extension {
            names.extend(alternative.general_names.iter().map(requested_name));
        }
    }
    // rcgen verifies the signature again and gives the public key in the form it signs.
    let public_key = CertificateSigningRequestParams::from_der(&der.as_slice().into())
        .map_err(|err| match err {
            rcgen::Error::UnsupportedExtension => TrustError::BadRequest {
                path: path.to_owned(),
                problem: "the request asks for extensions busloket does not issue".to_owned(),
            },
            _ => not_request(),
        })?
        .public_key;
    Ok(Request {
        common_name,
        names,
        key_kind,
        public_key,
    })
}

fn requested_name(name: &GeneralName) -> RequestedName {
    match name {
        GeneralName::URI(uri) => RequestedName::Uri((*uri).to_owned()),
        GeneralName::DNSName(dns) => RequestedName::Dns((*dns).to_owned()),
        GeneralName::IPAddress(bytes) => match <[u8; 4]>::try_from(*bytes) {
            Ok(v4) => RequestedName::Ip(IpAddr::from(v4)),
            Err(_) => match <[u8; 16]>::try_from(*bytes) {
                Ok(v6) => RequestedName::Ip(IpAddr::from(v6)),
                Err(_) => RequestedName::Other(format!("{name:?}")),
            },
        },
        other => RequestedName::Other(format!("{other:?}")),
    }
}

/// The device an identity request names, after checking its key and names.
fn identity_device(path: &Path, request: &Request) -> Result<DeviceId, TrustError> {
    if request.key_kind != KeyKind::Ed25519 {
        return Err(TrustError::IdentityKeyNotEd25519 {
            path: path.to_owned(),
            found: request.key_kind.described(),
        });
    }
    let common_name = request.common_name.clone().unwrap_or_default();
    let device: DeviceId = common_name.parse().map_err(|_| TrustError::BadDeviceId {
        value: common_name.clone(),
    })?;
    let wanted = format!("{DEVICE_URI_PREFIX}{device}");
    match request.names.as_slice() {
        [RequestedName::Uri(uri)] if *uri == wanted => Ok(device),
        _ => Err(TrustError::BadRequest {
            path: path.to_owned(),
            problem: format!("the request must name the device by exactly one URI, {wanted}"),
        }),
    }
}

/// The Wi-Fi certificate's names, after checking the request's key and device.
fn wifi_names(
    path: &Path,
    request: &Request,
    device: &DeviceId,
) -> Result<Vec<SanType>, TrustError> {
    if request.key_kind != KeyKind::P256 {
        return Err(TrustError::WifiKeyNotP256 {
            path: path.to_owned(),
            found: request.key_kind.described(),
        });
    }
    if request.common_name.as_deref() != Some(device.as_str()) {
        return Err(TrustError::BadRequest {
            path: path.to_owned(),
            problem: format!(
                "this Wi-Fi request is for \"{}\", not for device \"{device}\" of the identity request",
                request.common_name.as_deref().unwrap_or("")
            ),
        });
    }
    if request.names.is_empty() {
        return Err(TrustError::NoHost { what: "Wi-Fi" });
    }
    request
        .names
        .iter()
        .map(|name| match name {
            RequestedName::Dns(host) => pki::subject_alt_name(host)
                .ok_or_else(|| TrustError::BadHost { host: host.clone() }),
            RequestedName::Ip(address) => Ok(SanType::IpAddress(*address)),
            RequestedName::Uri(other) | RequestedName::Other(other) => {
                Err(TrustError::BadRequest {
                    path: path.to_owned(),
                    problem: format!(
                        "the Wi-Fi request may name host names and IP addresses only, not {other}"
                    ),
                })
            }
        })
        .collect()
}

fn device_uri(device: &DeviceId) -> Result<SanType, TrustError> {
    format!("{DEVICE_URI_PREFIX}{device}")
        .try_into()
        .map(SanType::URI)
        .map_err(crypto("the device's name"))
}
