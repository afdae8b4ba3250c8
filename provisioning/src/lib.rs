//! The city's trust for busloket:
//! - the city CA ([`ca`]): `ca init` makes the CA, the hub's TLS certificate, the city's
//!   document-issuing key and an empty CRL; [`ca::revoke_device`] revokes a device;
//! - device enrolment: the bus makes its own keys and requests ([`request`]), the city certifies
//!   them into a bundle ([`enroll`]), the node loads and checks the bundle ([`bundle`]);
//! - the revocation list ([`crl`]) the hub loads and sends to the buses;
//! - the at-rest key of a node and the password hashes of local staff accounts (here).
//!
//! The operator's commands take `now` as an argument (the binary passes the clock), so tests can
//! issue and check at any date. Private keys are files of mode 0600 and are refused when group or
//! others can read them; nothing here overwrites an existing key or certificate.
//!
//! This crate may depend on `busloket-sync` (for the key format and the device id); it never
//! depends on the node, on HTTP or on devices.

pub mod bundle;
pub mod ca;
pub mod crl;
pub mod enroll;
pub mod error;
pub mod pki;
pub mod registry;
pub mod request;
pub mod staff_password;

pub use bundle::{BundleError, DeviceBundle, load_bundle};
pub use ca::{init_ca, revoke_device};
pub use crl::{RevocationList, load_crl};
pub use enroll::{RequestFiles, enroll_device};
pub use error::TrustError;
pub use request::request_device;
pub use staff_password::verify_staff_password;

use std::path::Path;

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHasher};
use busloket_sync::at_rest::{AtRestError, AtRestKey};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ProvisionError {
    #[error("a staff password must have at least {min} characters")]
    PasswordTooShort { min: usize },
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error(transparent)]
    Key(#[from] AtRestError),
}

pub const MIN_PASSWORD_LENGTH: usize = 8;

/// An argon2id hash (PHC string) of a staff password, for the node's configuration.
pub fn hash_staff_password(password: &str) -> Result<String, ProvisionError> {
    if password.chars().count() < MIN_PASSWORD_LENGTH {
        return Err(ProvisionError::PasswordTooShort {
            min: MIN_PASSWORD_LENGTH,
        });
    }
    let salt = SaltString::generate(&mut rand::thread_rng());
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| ProvisionError::Hash(err.to_string()))
}

/// Creates a node's at-rest key file (mode 0600); refuses to overwrite an existing key.
pub fn generate_at_rest_key(path: &Path) -> Result<(), ProvisionError> {
    AtRestKey::generate_file(path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{PasswordHash, PasswordVerifier};

    #[test]
    fn hashes_verify_and_short_passwords_are_refused() {
        let hash = hash_staff_password("bus-demo-2026").unwrap();
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"bus-demo-2026", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"other", &parsed)
                .is_err()
        );
        assert!(matches!(
            hash_staff_password("short"),
            Err(ProvisionError::PasswordTooShort { min: 8 })
        ));
    }

    #[test]
    fn key_files_are_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("at-rest.key");
        generate_at_rest_key(&path).unwrap();
        assert!(AtRestKey::load_file(&path).is_ok());
        assert!(generate_at_rest_key(&path).is_err());
    }
}
