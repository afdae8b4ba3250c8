//! The hub's trust material at run time: the TLS server configuration (the hub's certificate,
//! client certificates verified against the city CA), the device identity read from a verified
//! client certificate, and the files that change while the hub runs — the revocation list and the
//! staff file — reloaded when they change on disk (checked before each use) or on SIGHUP.
//!
//! The TLS handshake does not look at the CRL: a revoked device still connects, so the hub can
//! log its upload, keep it in quarantine and answer `403 device-revoked`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use busloket_provisioning::bundle::BundleError;
use busloket_provisioning::crl::load_crl;
use busloket_provisioning::pki::DEVICE_URI_PREFIX;
use busloket_provisioning::pki::files::{self, FileError};
use busloket_sync::staff::{Role, StaffEntry, StaffFileError, parse_staff_file};
use busloket_sync::terms::DeviceId;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::OID_SIG_ED25519;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::config::TrustPaths;
use crate::storage::HubStorage;
use crate::sync::{DeviceIdentity, Hub};

/// Why the hub cannot start with its trust material. Every variant names the file.
#[derive(Debug, Error)]
pub enum TrustError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Crl(#[from] BundleError),
    #[error("{path}: is not a certificate")]
    NotCertificate { path: PathBuf },
    #[error("{path}: is not a private key the hub can use")]
    NotKey { path: PathBuf },
    #[error("{key}: the key does not match the certificate {certificate}, or TLS refuses them")]
    Tls {
        key: PathBuf,
        certificate: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("{path}: the CA certificate cannot be a trust root")]
    BadRoot {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("{path}: cannot read the staff file")]
    StaffRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Staff {
        path: PathBuf,
        #[source]
        source: StaffFileError,
    },
}

/// The certificates and keys read at start.
#[derive(Debug)]
pub struct TlsMaterial {
    pub ca: CertificateDer<'static>,
    pub hub_certificate: CertificateDer<'static>,
    /// The DER SubjectPublicKeyInfo of the hub's certificate: the hub's actor is bound to it.
    pub hub_public_key: Vec<u8>,
    pub server: Arc<rustls::ServerConfig>,
}

fn read_certificate(path: &Path) -> Result<CertificateDer<'static>, TrustError> {
    let der = files::read_pem(path, "CERTIFICATE")?;
    match X509Certificate::from_der(&der) {
        Ok(([], _)) => Ok(CertificateDer::from(der)),
        _ => Err(TrustError::NotCertificate {
            path: path.to_owned(),
        }),
    }
}

/// Reads the CA, the hub's certificate and key, and builds the TLS configuration: TLS 1.3 and
/// 1.2, h2 and http/1.1, client certificates verified against the CA when offered (a browser
/// without one reaches the device page; `/sync/v1/` refuses it, see [`crate::server`]).
pub fn load_tls(paths: &TrustPaths) -> Result<TlsMaterial, TrustError> {
    let ca = read_certificate(&paths.ca_certificate)?;
    let hub_certificate = read_certificate(&paths.hub_certificate)?;
    let hub_public_key = X509Certificate::from_der(&hub_certificate)
        .map(|(_, parsed)| parsed.tbs_certificate.subject_pki.raw.to_vec())
        .map_err(|_| TrustError::NotCertificate {
            path: paths.hub_certificate.clone(),
        })?;
    let key_pem = files::read_private_key_pem(&paths.hub_key)?;
    let key =
        PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| TrustError::NotKey {
            path: paths.hub_key.clone(),
        })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(ca.clone())
        .map_err(|source| TrustError::BadRoot {
            path: paths.ca_certificate.clone(),
            source,
        })?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|error| TrustError::BadRoot {
            path: paths.ca_certificate.clone(),
            source: rustls::Error::General(error.to_string()),
        })?;
    let tls_error = |source| TrustError::Tls {
        key: paths.hub_key.clone(),
        certificate: paths.hub_certificate.clone(),
        source,
    };
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![hub_certificate.clone()], key)
        .map_err(tls_error)?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        ca,
        hub_certificate,
        hub_public_key,
        server: Arc::new(server),
    })
}

/// Who is at the other end of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// No client certificate (a browser).
    Anonymous,
    /// A device certificate the handshake verified.
    Device(DeviceIdentity),
    /// A certificate of the city CA that is not a device identity.
    NotADevice(String),
}

impl Peer {
    /// From the verified chain of a connection (leaf first).
    pub fn from_certificates(chain: Option<&[CertificateDer<'_>]>) -> Peer {
        match chain.and_then(<[_]>::first) {
            None => Peer::Anonymous,
            Some(leaf) => match device_identity(leaf) {
                Ok(identity) => Peer::Device(identity),
                Err(problem) => Peer::NotADevice(problem),
            },
        }
    }
}

/// The device a verified client certificate names: CN = device id, the SAN URI
/// `busloket:device:<id>` (required, and the same id), an Ed25519 key.
pub fn device_identity(certificate: &CertificateDer<'_>) -> Result<DeviceIdentity, String> {
    let (_, parsed) = X509Certificate::from_der(certificate)
        .map_err(|_| "the certificate does not parse".to_owned())?;
    let common_name = parsed
        .subject()
        .iter_common_name()
        .next()
        .and_then(|name| name.as_str().ok())
        .ok_or("the certificate has no common name")?;
    let id: DeviceId = common_name
        .parse()
        .map_err(|_| format!("\"{common_name}\" is not a device id"))?;
    let wanted = format!("{DEVICE_URI_PREFIX}{id}");
    let names_device = parsed
        .subject_alternative_name()
        .ok()
        .flatten()
        .is_some_and(|names| {
            names
                .value
                .general_names
                .iter()
                .any(|name| matches!(name, GeneralName::URI(uri) if *uri == wanted))
        });
    if !names_device {
        return Err(format!("the certificate does not name {wanted}"));
    }
    let key = parsed.public_key();
    let public_key: [u8; 32] = (key.algorithm.algorithm == OID_SIG_ED25519)
        .then(|| key.subject_public_key.data.as_ref().try_into().ok())
        .flatten()
        .ok_or("the certificate's key is not Ed25519")?;
    Ok(DeviceIdentity {
        id,
        public_key,
        serial: parsed.raw_serial().to_vec(),
    })
}

/// What identifies a file's content on disk without reading it: a replaced file (rename) has a
/// new inode, an edited one a new modification time or length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    inode: u64,
    modified: Option<SystemTime>,
    len: u64,
}

pub(crate) fn stamp(path: &Path) -> Option<Stamp> {
    let metadata = std::fs::metadata(path).ok()?;
    Some(Stamp {
        inode: metadata.ino(),
        modified: metadata.modified().ok(),
        len: metadata.len(),
    })
}

/// The staff file as the buses get it (synced file `staff`): the bus clerks' entries only, as
/// TOML that [`parse_staff_file`] reads. Central IT's and city clerks' hashes and eID bindings
/// stay at the hub.
pub fn bus_staff_file(staff: &[StaffEntry]) -> String {
    #[derive(serde::Serialize)]
    struct File<'a> {
        staff: Vec<Entry<'a>>,
    }
    #[derive(serde::Serialize)]
    struct Entry<'a> {
        username: &'a str,
        display_name: &'a str,
        password_hash: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        eid: Option<&'a str>,
        roles: Vec<&'static str>,
    }
    let file = File {
        staff: staff
            .iter()
            .filter(|entry| entry.has_role(Role::BusClerk))
            .map(|entry| Entry {
                username: &entry.username,
                display_name: &entry.display_name,
                password_hash: &entry.password_hash,
                eid: entry.eid.as_deref(),
                roles: entry.roles.iter().map(Role::code).collect(),
            })
            .collect(),
    };
    toml::to_string(&file).expect("the staff entries serialise as TOML")
}

/// The files the hub reloads while it runs.
pub struct LiveTrust {
    ca: CertificateDer<'static>,
    crl_path: PathBuf,
    staff_path: PathBuf,
    crl_stamp: Mutex<Option<Stamp>>,
    crl_number: Mutex<u64>,
    staff_stamp: Mutex<Option<Stamp>>,
    staff: RwLock<Arc<Vec<StaffEntry>>>,
}

impl std::fmt::Debug for LiveTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveTrust")
            .field("crl_path", &self.crl_path)
            .field("staff_path", &self.staff_path)
            .finish_non_exhaustive()
    }
}

impl LiveTrust {
    /// Loads the CRL and the staff file once, refusing to start on either being bad, and hands
    /// both to `hub`.
    pub fn load<S: HubStorage + ?Sized>(
        ca: CertificateDer<'static>,
        crl_path: &Path,
        staff_path: &Path,
        hub: &Hub<S>,
    ) -> Result<LiveTrust, TrustError> {
        let trust = LiveTrust {
            ca,
            crl_path: crl_path.to_owned(),
            staff_path: staff_path.to_owned(),
            crl_stamp: Mutex::new(None),
            crl_number: Mutex::new(0),
            staff_stamp: Mutex::new(None),
            staff: RwLock::new(Arc::new(Vec::new())),
        };
        trust.load_crl(hub)?;
        trust.load_staff(hub)?;
        Ok(trust)
    }

    /// Reloads whatever changed on disk since it was loaded. A file that became unreadable or
    /// invalid, or a CRL with a lower number than the one in use, is logged and the previous
    /// one stays in force.
    pub fn refresh<S: HubStorage + ?Sized>(&self, hub: &Hub<S>) {
        let crl_changed = *self
            .crl_stamp
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            != stamp(&self.crl_path);
        if crl_changed && let Err(error) = self.load_crl(hub) {
            tracing::error!(
                "the revocation list was not reloaded; the previous one stays in force: {}",
                crate::sync::error_chain(&error)
            );
        }
        let staff_changed = *self
            .staff_stamp
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            != stamp(&self.staff_path);
        if staff_changed && let Err(error) = self.load_staff(hub) {
            tracing::error!(
                "the staff file was not reloaded; the previous accounts stay in force: {}",
                crate::sync::error_chain(&error)
            );
        }
    }

    fn load_crl<S: HubStorage + ?Sized>(&self, hub: &Hub<S>) -> Result<(), TrustError> {
        let before = stamp(&self.crl_path);
        let pem = std::fs::read(&self.crl_path).map_err(|source| FileError::Read {
            path: self.crl_path.clone(),
            source,
        })?;
        let list = load_crl(&self.crl_path, &self.ca)?;
        let mut number = self
            .crl_number
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *self
            .crl_stamp
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = before;
        if list.number < *number {
            tracing::error!(
                path = %self.crl_path.display(),
                found = list.number,
                in_force = *number,
                "the revocation list on disk is older than the one in force; keeping the newer"
            );
            return Ok(());
        }
        *number = list.number;
        let serials: Vec<Vec<u8>> = list
            .revoked
            .iter()
            .map(|revoked| revoked.serial.as_bytes().to_vec())
            .collect();
        tracing::info!(
            number = list.number,
            revoked = serials.len(),
            "revocation list loaded"
        );
        hub.set_revocations(list.number, pem, serials);
        Ok(())
    }

    fn load_staff<S: HubStorage + ?Sized>(&self, hub: &Hub<S>) -> Result<(), TrustError> {
        let before = stamp(&self.staff_path);
        let bytes = std::fs::read(&self.staff_path).map_err(|source| TrustError::StaffRead {
            path: self.staff_path.clone(),
            source,
        })?;
        let text = String::from_utf8_lossy(&bytes);
        let staff = parse_staff_file(&text).map_err(|source| TrustError::Staff {
            path: self.staff_path.clone(),
            source,
        })?;
        let version = hub
            .set_staff_file(bus_staff_file(&staff).into_bytes())
            .map_err(|error| TrustError::StaffRead {
                path: self.staff_path.clone(),
                source: std::io::Error::other(crate::sync::error_chain(&error)),
            })?;
        tracing::info!(accounts = staff.len(), version, "staff file loaded");
        *self.staff.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(staff);
        *self
            .staff_stamp
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = before;
        Ok(())
    }

    /// The staff accounts in force.
    pub fn staff(&self) -> Arc<Vec<StaffEntry>> {
        self.staff
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The CRL number in force.
    pub fn crl_number(&self) -> u64 {
        *self
            .crl_number
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
