//! The node's enrolment: the device bundle from `busloket-provision device enroll`, loaded and
//! checked at start, and the TLS configurations made from it — the client towards the hub
//! (mutual TLS, the city's CA as the only root) and the HTTPS server on the bus Wi-Fi.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use busloket_provisioning::bundle::{BUNDLE_FILE, BundleError, DeviceBundle, load_bundle};
use busloket_sync::terms::DeviceId;
use rustls::pki_types::PrivateKeyDer;
use thiserror::Error;

use crate::config::{Config, SyncConfig};

/// Why the node cannot start with its `[sync]` section.
#[derive(Debug, Error)]
pub enum EnrolmentError {
    /// The bundle or a key is wrong; the message names the file.
    #[error("the device bundle is refused: {0}")]
    Bundle(#[from] BundleError),
    #[error(
        "{path}: the bundle is for device \"{bundle}\", but the configuration's device_id is \"{config}\""
    )]
    OtherDevice {
        path: PathBuf,
        bundle: DeviceId,
        config: DeviceId,
    },
    #[error("cannot make a TLS configuration from the bundle ({what})")]
    Tls {
        what: &'static str,
        #[source]
        source: rustls::Error,
    },
}

/// A checked bundle with the `[sync]` settings it came with.
#[derive(Debug)]
pub struct Enrolment {
    pub bundle: DeviceBundle,
    pub settings: SyncConfig,
}

impl Enrolment {
    /// Loads `[sync]`'s bundle, if the configuration has one; checked at `now`.
    pub fn load(config: &Config, now: SystemTime) -> Result<Option<Enrolment>, EnrolmentError> {
        let Some(settings) = &config.sync else {
            return Ok(None);
        };
        let bundle = load_bundle(&settings.bundle_dir, &settings.key_dir, now)?;
        if bundle.device_id() != &config.device_id {
            return Err(EnrolmentError::OtherDevice {
                path: settings.bundle_dir.join(BUNDLE_FILE),
                bundle: bundle.device_id().clone(),
                config: config.device_id.clone(),
            });
        }
        Ok(Some(Enrolment {
            bundle,
            settings: settings.clone(),
        }))
    }

    /// The device's raw Ed25519 public key: what its Automerge actor is bound to.
    pub fn device_public_key(&self) -> [u8; 32] {
        self.bundle.device_signing_key().verifying_key().to_bytes()
    }

    /// Whether the bus Wi-Fi is served over HTTPS.
    pub fn serves_tls(&self) -> bool {
        self.settings.wifi_tls
    }

    /// The TLS client towards the hub: trusts the city's CA only (never the system's roots) and
    /// authenticates with the device certificate and its Ed25519 key.
    pub fn hub_client_tls(&self) -> Result<rustls::ClientConfig, EnrolmentError> {
        let tls = |what| move |source| EnrolmentError::Tls { what, source };
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.bundle.ca_certificate().clone())
            .map_err(tls("the city CA as a root"))?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(tls("protocol versions"))?
            .with_root_certificates(roots)
            .with_client_auth_cert(
                vec![self.bundle.device_certificate().clone()],
                PrivateKeyDer::Pkcs8(self.bundle.device_key_der()),
            )
            .map_err(tls("the device certificate and key"))?;
        // reqwest is built without HTTP/2 here: one request per round, kept alive.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    /// The HTTPS server on the bus Wi-Fi, with the bundle's Wi-Fi certificate (tablets and the
    /// staff laptop trust the city's CA). HTTP/2 and HTTP/1.1.
    pub fn wifi_server_tls(&self) -> Result<Arc<rustls::ServerConfig>, EnrolmentError> {
        let tls = |what| move |source| EnrolmentError::Tls { what, source };
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(tls("protocol versions"))?
            .with_no_client_auth()
            .with_single_cert(
                vec![
                    self.bundle.wifi_certificate().clone(),
                    self.bundle.ca_certificate().clone(),
                ],
                PrivateKeyDer::Pkcs8(self.bundle.wifi_key_der()),
            )
            .map_err(tls("the Wi-Fi certificate and key"))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// rustls with ring, chosen explicitly: the process never depends on a default provider.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
