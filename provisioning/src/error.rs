//! The errors of the operator's commands (`ca init`, `device request`, `device enroll`,
//! `device revoke`): each names the file or the value that is wrong, in words for the city's
//! IT staff; the cause, when there is one, is under `#[source]`.

use std::path::PathBuf;

use thiserror::Error;

use crate::bundle::BundleError;
use crate::pki::files::FileError;

#[derive(Debug, Error)]
pub enum TrustError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Certificate(#[from] BundleError),
    #[error("the city's name must not be empty or contain control characters")]
    BadCityName,
    #[error("at least one {what} host name or IP address is needed")]
    NoHost { what: &'static str },
    #[error("\"{host}\" is not a valid host name or IP address for a certificate")]
    BadHost { host: String },
    #[error(
        "\"{value}\" is not a valid device id (lowercase letters, digits, '-' and '.', at most 64)"
    )]
    BadDeviceId { value: String },
    #[error("{0}")]
    BadHubUrl(String),
    #[error("cannot create {what}")]
    Crypto {
        what: String,
        #[source]
        source: rcgen::Error,
    },
    #[error("cannot encode {what}")]
    Encoding { what: &'static str },
    #[error("{path}: the CA key does not belong to the CA certificate {certificate}")]
    CaKeyMismatch { path: PathBuf, certificate: PathBuf },
    #[error("{path}: is not a valid certificate request")]
    NotRequest { path: PathBuf },
    #[error(
        "{path}: the request's signature does not verify: it was altered, or not made with the key it names"
    )]
    RequestSignature { path: PathBuf },
    #[error("{path}: the device's identity key must be Ed25519, but this request holds {found}")]
    IdentityKeyNotEd25519 { path: PathBuf, found: String },
    #[error(
        "{path}: the Wi-Fi key must be ECDSA P-256 (what tablets' browsers accept), but this request holds {found}"
    )]
    WifiKeyNotP256 { path: PathBuf, found: String },
    #[error("{path}: {problem}")]
    BadRequest { path: PathBuf, problem: String },
    #[error(
        "expected one identity request (device.csr.pem) and one Wi-Fi request (wifi.csr.pem); {problem}"
    )]
    RequestFiles { problem: String },
    #[error(
        "device \"{device}\" has been revoked; a revoked device is never enrolled again (enrol it under a new device id)"
    )]
    DeviceRevoked { device: String },
    #[error("device \"{device}\" was never enrolled by this CA")]
    UnknownDevice { device: String },
    #[error(
        "a certificate for {days} days would outlive the CA, which expires on {ca_expires}; issue for fewer days"
    )]
    OutlivesCa { days: u32, ca_expires: String },
    #[error("a certificate must be valid for at least one day")]
    ZeroDays,
    #[error("{path}: is not a valid list of issued certificates")]
    Registry {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
}
