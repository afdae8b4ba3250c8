//! `issued.toml` in the CA directory: every certificate the CA issued, per device, and which
//! devices are revoked. `device revoke` reads the serials from here; `device enroll` refuses a
//! revoked device.
//!
//! Invariants: a serial is recorded before its certificate is written to a bundle, so no
//! certificate exists that a revocation would miss; a device once revoked stays revoked. The
//! file is replaced atomically; one operator works on a CA directory at a time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use busloket_sync::terms::DeviceId;
use serde::{Deserialize, Serialize};

use crate::error::TrustError;
use crate::pki::files::{self, PUBLIC_MODE};

pub const REGISTRY_FILE: &str = "issued.toml";

const HEADER: &str =
    "# Certificates issued by this CA, per device. Written by busloket-provision; do not edit.\n\n";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    #[serde(default)]
    pub devices: BTreeMap<DeviceId, DeviceRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRecord {
    /// When the device was revoked (for people; the CRL carries the exact time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    #[serde(default)]
    pub certificates: Vec<IssuedCertificate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuedCertificate {
    /// The serial number, in hexadecimal.
    pub serial: String,
    /// `device` (identity, TLS client) or `wifi` (HTTPS on the bus Wi-Fi).
    pub kind: String,
    pub issued_at: String,
    pub expires: String,
}

pub fn path(ca_dir: &Path) -> PathBuf {
    ca_dir.join(REGISTRY_FILE)
}

pub fn load(ca_dir: &Path) -> Result<Registry, TrustError> {
    let path = path(ca_dir);
    let text = files::read_text(&path)?;
    toml::from_str(&text).map_err(|source| TrustError::Registry { path, source })
}

pub fn text(registry: &Registry) -> Result<String, TrustError> {
    let body = toml::to_string(registry).map_err(|_| TrustError::Encoding {
        what: "the list of issued certificates",
    })?;
    Ok(format!("{HEADER}{body}"))
}

pub fn save(ca_dir: &Path, registry: &Registry) -> Result<(), TrustError> {
    files::replace(&path(ca_dir), text(registry)?.as_bytes(), PUBLIC_MODE)?;
    Ok(())
}
