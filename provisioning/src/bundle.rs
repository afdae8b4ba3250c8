//! A device's trust bundle, as the node loads it at start: the city's CA, the device's
//! certificate (its identity: it signs sync manifests and is the TLS client certificate towards
//! the hub), the node's HTTPS certificate for the bus Wi-Fi, and the hub's URL.
//!
//! The bundle directory holds public material only (`bundle.toml`, `ca.pem`, `device.pem`,
//! `wifi.pem`); the keys (`device.key`, `wifi.key`) stay in the key directory where
//! `device request` made them, and never left the bus.
//!
//! [`load_bundle`] refuses a bundle unless every check passes, and says which file is wrong and
//! how, in words for the city's IT staff:
//! - each certificate chains to the bundle's CA with a valid signature, checked by
//!   rustls-webpki exactly as rustls will check it during the TLS handshake, at `now`;
//! - `device.pem` names the bundle's device (common name and `busloket:device:<id>` URI) and
//!   allows TLS client authentication; `wifi.pem` names the same device and allows TLS server
//!   authentication (the extended key usage must be present, not merely "not forbidden");
//! - each key matches its certificate, and no key file is readable by group or others;
//! - the CA certificate itself is a CA and is valid at `now` (webpki does not look at a trust
//!   anchor's dates; the node should not run on a CA the city has let expire).
//!
//! Revocation is not a property of the bundle: the node checks its own certificate against the
//! CRL the hub sends with [`DeviceBundle::check_not_revoked`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use busloket_sync::terms::DeviceId;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::OID_SIG_ED25519;

use crate::crl::RevocationList;
use crate::pki::files::{self, FileError};
use crate::pki::{self, DEVICE_URI_PREFIX, EKU_CLIENT_AUTH, EKU_SERVER_AUTH, Serial};

/// The description of a bundle, `bundle.toml`. File names are relative to the bundle directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleDescription {
    pub device_id: DeviceId,
    pub hub_url: String,
    pub ca: String,
    pub device_certificate: String,
    pub wifi_certificate: String,
}

pub const BUNDLE_FILE: &str = "bundle.toml";
pub const CA_FILE: &str = "ca.pem";
pub const DEVICE_CERTIFICATE_FILE: &str = "device.pem";
pub const WIFI_CERTIFICATE_FILE: &str = "wifi.pem";
pub const DEVICE_KEY_FILE: &str = "device.key";
pub const WIFI_KEY_FILE: &str = "wifi.key";

/// Why a bundle, a certificate, a key or a CRL is refused. Every variant names the file.
#[derive(Debug, Error)]
pub enum BundleError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{path}: is not a valid bundle description")]
    Description {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("{path}: {problem}")]
    BadDescription { path: PathBuf, problem: String },
    #[error("{path}: is not a certificate (the PEM block does not hold a valid X.509 certificate)")]
    NotCertificate { path: PathBuf },
    #[error("{path}: is not a CA certificate, so nothing can be checked against it")]
    NotCa { path: PathBuf },
    #[error("{path}: the certificate expired on {not_after}")]
    Expired { path: PathBuf, not_after: String },
    #[error("{path}: the certificate is not valid yet; it becomes valid on {not_before}")]
    NotYetValid { path: PathBuf, not_before: String },
    #[error(
        "{path}: was signed by another CA (\"{issuer}\"), not by the city's CA in {ca_path} (\"{ca_subject}\")"
    )]
    OtherCa {
        path: PathBuf,
        issuer: String,
        ca_path: PathBuf,
        ca_subject: String,
    },
    #[error(
        "{path}: its signature does not match the CA in {ca_path}: the file was altered, or it was signed by another CA with the same name (\"{issuer}\")"
    )]
    BadSignature {
        path: PathBuf,
        ca_path: PathBuf,
        issuer: String,
    },
    #[error(
        "{path}: the certificate is for device \"{found}\", but this bundle is for \"{expected}\""
    )]
    OtherDevice {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("{path}: the certificate does not allow {usage}")]
    MissingUsage { path: PathBuf, usage: &'static str },
    #[error("{path}: the certificate check refused it: {reason}")]
    Refused { path: PathBuf, reason: String },
    #[error("{path}: is not an {expected} private key")]
    NotKey {
        path: PathBuf,
        expected: &'static str,
    },
    #[error("{key_path}: the key does not match the certificate {certificate_path}")]
    KeyMismatch {
        key_path: PathBuf,
        certificate_path: PathBuf,
    },
    #[error("{path}: the certificate (serial {serial}) was revoked by the city on {revoked_at}")]
    Revoked {
        path: PathBuf,
        serial: Serial,
        revoked_at: String,
    },
    #[error("{path}: is not a certificate revocation list")]
    NotCrl { path: PathBuf },
    #[error(
        "{path}: the revocation list was not signed by the city's CA (\"{ca_subject}\"), or it was altered; it names \"{issuer}\" as its issuer"
    )]
    CrlSignature {
        path: PathBuf,
        ca_subject: String,
        issuer: String,
    },
}

/// Everything the node needs from its enrolment, checked. Keys are never printed.
pub struct DeviceBundle {
    device_id: DeviceId,
    hub_url: String,
    ca_certificate: CertificateDer<'static>,
    device_certificate: CertificateDer<'static>,
    device_certificate_path: PathBuf,
    device_serial: Serial,
    device_key: SigningKey,
    device_key_pkcs8: Vec<u8>,
    wifi_certificate: CertificateDer<'static>,
    wifi_key_pkcs8: Vec<u8>,
}

impl fmt::Debug for DeviceBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceBundle")
            .field("device_id", &self.device_id)
            .field("hub_url", &self.hub_url)
            .field("device_serial", &self.device_serial)
            .finish_non_exhaustive()
    }
}

impl DeviceBundle {
    pub fn device_id(&self) -> &DeviceId {
        &self.device_id
    }

    pub fn hub_url(&self) -> &str {
        &self.hub_url
    }

    /// The city's CA: the only root the node trusts for the hub.
    pub fn ca_certificate(&self) -> &CertificateDer<'static> {
        &self.ca_certificate
    }

    /// The device's certificate: its TLS client certificate towards the hub.
    pub fn device_certificate(&self) -> &CertificateDer<'static> {
        &self.device_certificate
    }

    pub fn device_serial(&self) -> &Serial {
        &self.device_serial
    }

    /// The device's identity key, for signing sync manifests.
    pub fn device_signing_key(&self) -> &SigningKey {
        &self.device_key
    }

    /// The same identity key as PKCS#8 DER, for rustls as the TLS client key.
    pub fn device_key_der(&self) -> PrivatePkcs8KeyDer<'static> {
        PrivatePkcs8KeyDer::from(self.device_key_pkcs8.clone())
    }

    /// The node's HTTPS certificate for the bus Wi-Fi.
    pub fn wifi_certificate(&self) -> &CertificateDer<'static> {
        &self.wifi_certificate
    }

    /// The Wi-Fi certificate's key (ECDSA P-256) as PKCS#8 DER, for rustls.
    pub fn wifi_key_der(&self) -> PrivatePkcs8KeyDer<'static> {
        PrivatePkcs8KeyDer::from(self.wifi_key_pkcs8.clone())
    }

    /// Refuses if the city has revoked this device's certificate (`crl` must have been checked
    /// against the bundle's CA, see [`crate::crl::load_crl`]).
    pub fn check_not_revoked(&self, crl: &RevocationList) -> Result<(), BundleError> {
        match crl.revoked_at(&self.device_serial) {
            Some(revoked_at) => Err(BundleError::Revoked {
                path: self.device_certificate_path.clone(),
                serial: self.device_serial.clone(),
                revoked_at: pki::human_date(revoked_at),
            }),
            None => Ok(()),
        }
    }
}

/// Loads and checks a bundle (see the module documentation for every check). `key_dir` holds
/// `device.key` and `wifi.key`; it may be the bundle directory itself.
pub fn load_bundle(
    bundle_dir: &Path,
    key_dir: &Path,
    now: SystemTime,
) -> Result<DeviceBundle, BundleError> {
    let description_path = bundle_dir.join(BUNDLE_FILE);
    let description = read_description(&description_path)?;

    let ca_path = bundle_dir.join(&description.ca);
    let ca = read_ca(&ca_path, now)?;

    let device_path = bundle_dir.join(&description.device_certificate);
    let device_der = read_certificate(&device_path)?;
    let device = parse_certificate(&device_path, &device_der)?;
    check_chain(
        &device_path,
        &device_der,
        &device,
        &ca,
        now,
        Usage::ClientAuth,
    )?;
    check_names_device(&device_path, &device, &description.device_id, true)?;

    let wifi_path = bundle_dir.join(&description.wifi_certificate);
    let wifi_der = read_certificate(&wifi_path)?;
    let wifi = parse_certificate(&wifi_path, &wifi_der)?;
    check_chain(&wifi_path, &wifi_der, &wifi, &ca, now, Usage::ServerAuth)?;
    check_names_device(&wifi_path, &wifi, &description.device_id, false)?;

    let device_key_path = key_dir.join(DEVICE_KEY_FILE);
    let (device_key, device_key_pkcs8) = read_device_key(&device_key_path)?;
    let device_public = device.public_key();
    if device_public.algorithm.algorithm != OID_SIG_ED25519
        || device_public.subject_public_key.data.as_ref() != device_key.verifying_key().as_bytes()
    {
        return Err(BundleError::KeyMismatch {
            key_path: device_key_path,
            certificate_path: device_path,
        });
    }

    let wifi_key_path = key_dir.join(WIFI_KEY_FILE);
    let wifi_key = read_wifi_key(&wifi_key_path)?;
    if wifi.public_key().subject_public_key.data.as_ref() != wifi_key.public_key_raw() {
        return Err(BundleError::KeyMismatch {
            key_path: wifi_key_path,
            certificate_path: wifi_path,
        });
    }

    let device_serial = Serial::from_der_bytes(device.raw_serial());
    Ok(DeviceBundle {
        device_id: description.device_id,
        hub_url: description.hub_url,
        ca_certificate: CertificateDer::from(ca.der),
        device_certificate: CertificateDer::from(device_der.clone()),
        device_certificate_path: device_path,
        device_serial,
        device_key,
        device_key_pkcs8,
        wifi_certificate: CertificateDer::from(wifi_der.clone()),
        wifi_key_pkcs8: wifi_key.serialize_der(),
    })
}

fn read_description(path: &Path) -> Result<BundleDescription, BundleError> {
    let text = files::read_text(path)?;
    let description: BundleDescription =
        toml::from_str(&text).map_err(|source| BundleError::Description {
            path: path.to_owned(),
            source,
        })?;
    check_hub_url(&description.hub_url).map_err(|problem| BundleError::BadDescription {
        path: path.to_owned(),
        problem,
    })?;
    for name in [
        &description.ca,
        &description.device_certificate,
        &description.wifi_certificate,
    ] {
        if !is_plain_file_name(name) {
            return Err(BundleError::BadDescription {
                path: path.to_owned(),
                problem: format!(
                    "\"{name}\" must be the name of a file in the bundle's directory, without a path"
                ),
            });
        }
    }
    Ok(description)
}

/// The hub is reached over HTTPS with mutual TLS only.
pub(crate) fn check_hub_url(url: &str) -> Result<(), String> {
    let authority = url
        .strip_prefix("https://")
        .and_then(|rest| rest.split(['/', '?', '#']).next())
        .unwrap_or("");
    if authority.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "the hub URL \"{url}\" must be an https:// address (the hub is reached over TLS only)"
        ));
    }
    Ok(())
}

fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/')
}

/// The city's CA certificate, read and checked to be a CA valid at `now`.
pub(crate) struct CaCertificate {
    pub path: PathBuf,
    pub der: Vec<u8>,
    pub subject: String,
}

pub(crate) fn read_ca(path: &Path, now: SystemTime) -> Result<CaCertificate, BundleError> {
    let der = read_certificate(path)?;
    let certificate = parse_certificate(path, &der)?;
    if !certificate.is_ca() {
        return Err(BundleError::NotCa {
            path: path.to_owned(),
        });
    }
    check_dates(path, &certificate, now)?;
    let subject = certificate.subject().to_string();
    Ok(CaCertificate {
        path: path.to_owned(),
        der,
        subject,
    })
}

pub(crate) fn read_certificate(path: &Path) -> Result<Vec<u8>, BundleError> {
    Ok(files::read_pem(path, "CERTIFICATE")?)
}

pub(crate) fn parse_certificate<'a>(
    path: &Path,
    der: &'a [u8],
) -> Result<X509Certificate<'a>, BundleError> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], certificate)) => Ok(certificate),
        _ => Err(BundleError::NotCertificate {
            path: path.to_owned(),
        }),
    }
}

fn check_dates(
    path: &Path,
    certificate: &X509Certificate,
    now: SystemTime,
) -> Result<(), BundleError> {
    let now = pki::offset_date_time(now);
    let validity = certificate.validity();
    if now < validity.not_before.to_datetime() {
        return Err(BundleError::NotYetValid {
            path: path.to_owned(),
            not_before: pki::human_date(validity.not_before.to_datetime()),
        });
    }
    if now > validity.not_after.to_datetime() {
        return Err(BundleError::Expired {
            path: path.to_owned(),
            not_after: pki::human_date(validity.not_after.to_datetime()),
        });
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Usage {
    ClientAuth,
    ServerAuth,
}

/// The chain from `certificate` to the CA, as rustls checks it, with the failures in words.
fn check_chain(
    path: &Path,
    der: &[u8],
    certificate: &X509Certificate,
    ca: &CaCertificate,
    now: SystemTime,
    usage: Usage,
) -> Result<(), BundleError> {
    let ca_der = CertificateDer::from(ca.der.as_slice());
    let anchor = webpki::anchor_from_trusted_cert(&ca_der).map_err(|err| BundleError::Refused {
        path: ca.path.clone(),
        reason: err.to_string(),
    })?;
    let der = CertificateDer::from(der);
    let end_entity =
        webpki::EndEntityCert::try_from(&der).map_err(|_| BundleError::NotCertificate {
            path: path.to_owned(),
        })?;
    let (key_usage, usage_words) = match usage {
        Usage::ClientAuth => (
            webpki::KeyUsage::required(EKU_CLIENT_AUTH),
            "TLS client authentication (the device's identity towards the hub)",
        ),
        Usage::ServerAuth => (
            webpki::KeyUsage::required(EKU_SERVER_AUTH),
            "TLS server authentication (the node's HTTPS on the bus Wi-Fi)",
        ),
    };
    let anchors = [anchor];
    let verified = end_entity.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &[],
        pki::unix_time(now),
        key_usage,
        None,
        None,
    );
    let issuer = certificate.issuer().to_string();
    match verified {
        Ok(_) => Ok(()),
        Err(webpki::Error::CertExpired { not_after, .. }) => Err(BundleError::Expired {
            path: path.to_owned(),
            not_after: pki::human_date_from_unix(not_after.as_secs()),
        }),
        Err(webpki::Error::CertNotValidYet { not_before, .. }) => Err(BundleError::NotYetValid {
            path: path.to_owned(),
            not_before: pki::human_date_from_unix(not_before.as_secs()),
        }),
        Err(webpki::Error::UnknownIssuer) if issuer != ca.subject => Err(BundleError::OtherCa {
            path: path.to_owned(),
            issuer,
            ca_path: ca.path.clone(),
            ca_subject: ca.subject.clone(),
        }),
        Err(
            webpki::Error::UnknownIssuer
            | webpki::Error::InvalidSignatureForPublicKey
            | webpki::Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_),
        ) => Err(BundleError::BadSignature {
            path: path.to_owned(),
            ca_path: ca.path.clone(),
            issuer,
        }),
        Err(webpki::Error::RequiredEkuNotFoundContext(_)) => Err(BundleError::MissingUsage {
            path: path.to_owned(),
            usage: usage_words,
        }),
        Err(webpki::Error::CaUsedAsEndEntity) => Err(BundleError::Refused {
            path: path.to_owned(),
            reason: "it is a CA certificate, not a device's".to_owned(),
        }),
        Err(err) => Err(BundleError::Refused {
            path: path.to_owned(),
            reason: format!("{err:?}"),
        }),
    }
}

/// The device a certificate names: its common name, and for the identity certificate also its
/// `busloket:device:<id>` URI. Both must be the bundle's device.
fn check_names_device(
    path: &Path,
    certificate: &X509Certificate,
    expected: &DeviceId,
    with_uri: bool,
) -> Result<(), BundleError> {
    let other = |found: String| BundleError::OtherDevice {
        path: path.to_owned(),
        expected: expected.to_string(),
        found,
    };
    let common_name = common_name(certificate).unwrap_or_default();
    if common_name != expected.as_str() {
        return Err(other(common_name));
    }
    if with_uri {
        let uris = device_uris(certificate);
        let wanted = format!("{DEVICE_URI_PREFIX}{expected}");
        if uris.len() != 1 || uris[0] != wanted {
            return Err(other(uris.join(", ")));
        }
    }
    Ok(())
}

pub(crate) fn common_name(certificate: &X509Certificate) -> Option<String> {
    let mut names = certificate.subject().iter_common_name();
    let name = names.next()?.as_str().ok()?.to_owned();
    names.next().is_none().then_some(name)
}

fn device_uris(certificate: &X509Certificate) -> Vec<String> {
    let Ok(Some(names)) = certificate.subject_alternative_name() else {
        return Vec::new();
    };
    names
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some((*uri).to_owned()),
            _ => None,
        })
        .collect()
}

fn read_device_key(path: &Path) -> Result<(SigningKey, Vec<u8>), BundleError> {
    let text = files::read_private_key_pem(path)?;
    let not_key = || BundleError::NotKey {
        path: path.to_owned(),
        expected: "Ed25519",
    };
    let der = files::pem_contents(path, text.as_bytes(), "PRIVATE KEY").map_err(|_| not_key())?;
    let key = SigningKey::from_pkcs8_der(&der).map_err(|_| not_key())?;
    Ok((key, der))
}

fn read_wifi_key(path: &Path) -> Result<rcgen::KeyPair, BundleError> {
    let text = files::read_private_key_pem(path)?;
    rcgen::KeyPair::from_pem(&text)
        .ok()
        .filter(|key| key.algorithm() == &rcgen::PKCS_ECDSA_P256_SHA256)
        .ok_or_else(|| BundleError::NotKey {
            path: path.to_owned(),
            expected: "ECDSA P-256",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hub_is_reached_over_https_only() {
        assert!(check_hub_url("https://hub.kortrijk.be:8443/sync").is_ok());
        assert!(check_hub_url("https://10.20.0.1").is_ok());
        for bad in [
            "http://hub",
            "https://",
            "https:///sync",
            "hub",
            "https://hub x",
        ] {
            assert!(check_hub_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_names_in_a_bundle_stay_in_its_directory() {
        assert!(is_plain_file_name("device.pem"));
        for bad in ["", ".", "..", "../ca/ca.key", "/etc/passwd"] {
            assert!(!is_plain_file_name(bad), "{bad}");
        }
    }
}
