//! `device request`, run on the bus: the device makes its own keys and asks the city to certify
//! them. The keys never leave the bus; only the two requests (`*.csr.pem`) go to the city.
//!
//! Files written in the device's key directory (created with mode 0700 if missing):
//! - `device.key` (0600): the device's identity, Ed25519 PKCS#8 PEM. It signs sync manifests
//!   and is the TLS client key towards the hub.
//! - `device.csr.pem`: its request; common name = the device id, one subject alternative name,
//!   the URI `busloket:device:<id>`.
//! - `wifi.key` (0600): ECDSA P-256 PKCS#8 PEM, the key of the node's HTTPS on the bus Wi-Fi
//!   (P-256 because tablets' browsers do not accept Ed25519 certificates).
//! - `wifi.csr.pem`: its request; common name = the device id (so the city can tell the two
//!   requests belong together), subject alternative names = the Wi-Fi host names/addresses.
//!
//! Invariant: nothing existing is overwritten; every output is checked absent before the first
//! is written, and each is created with `O_EXCL`.

use std::path::{Path, PathBuf};

use busloket_sync::terms::DeviceId;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use rcgen::{CertificateParams, DnType, KeyPair, SanType};

use crate::bundle::{DEVICE_KEY_FILE, WIFI_KEY_FILE};
use crate::ca::{self, crypto};
use crate::error::TrustError;
use crate::pki::DEVICE_URI_PREFIX;
use crate::pki::files::{self, KEY_MODE, PUBLIC_MODE};

pub const DEVICE_REQUEST_FILE: &str = "device.csr.pem";
pub const WIFI_REQUEST_FILE: &str = "wifi.csr.pem";

/// What `device request` wrote.
#[derive(Debug, Clone)]
pub struct RequestCreated {
    pub device_request: PathBuf,
    pub wifi_request: PathBuf,
}

/// Makes the device's keys and requests in `dir` (see the module documentation).
pub fn request_device(
    dir: &Path,
    device: &str,
    wifi_hosts: &[String],
) -> Result<RequestCreated, TrustError> {
    let device: DeviceId = device.parse().map_err(|_| TrustError::BadDeviceId {
        value: device.to_owned(),
    })?;
    let wifi_names = ca::subject_alt_names(wifi_hosts, "Wi-Fi")?;
    let outputs = [
        DEVICE_KEY_FILE,
        DEVICE_REQUEST_FILE,
        WIFI_KEY_FILE,
        WIFI_REQUEST_FILE,
    ]
    .map(|file| dir.join(file));
    ca::create_private_dir(dir)?;
    for path in &outputs {
        files::ensure_absent(path)?;
    }

    let identity = SigningKey::generate(&mut rand::rngs::OsRng);
    let identity_pem = identity
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|_| TrustError::Encoding {
            what: "the device key",
        })?;
    let identity_key = KeyPair::from_pem(&identity_pem).map_err(crypto("the device key"))?;
    let uri = format!("{DEVICE_URI_PREFIX}{device}")
        .try_into()
        .map_err(crypto("the device's name"))?;
    let mut identity_params = named(&device);
    identity_params.subject_alt_names = vec![SanType::URI(uri)];
    let identity_request = identity_params
        .serialize_request(&identity_key)
        .and_then(|request| request.pem())
        .map_err(crypto("the device's request"))?;

    let wifi_key = ca::new_p256_key("the Wi-Fi key")?;
    let mut wifi_params = named(&device);
    wifi_params.subject_alt_names = wifi_names;
    let wifi_request = wifi_params
        .serialize_request(&wifi_key)
        .and_then(|request| request.pem())
        .map_err(crypto("the Wi-Fi request"))?;

    let wifi_key_pem = wifi_key.serialize_pem();
    let contents: [(&[u8], u32); 4] = [
        (identity_pem.as_bytes(), KEY_MODE),
        (identity_request.as_bytes(), PUBLIC_MODE),
        (wifi_key_pem.as_bytes(), KEY_MODE),
        (wifi_request.as_bytes(), PUBLIC_MODE),
    ];
    for (path, (bytes, mode)) in outputs.iter().zip(contents) {
        files::write_new(path, bytes, mode)?;
    }
    let [_, device_request, _, wifi_request] = outputs;
    Ok(RequestCreated {
        device_request,
        wifi_request,
    })
}

fn named(device: &DeviceId) -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, device.as_str());
    params
}
