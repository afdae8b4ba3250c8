//! Encryption of citizen data at rest: one 32-byte key, XChaCha20-Poly1305 with a random 24-byte
//! nonce per sealed value, and associated data that binds each ciphertext to its place (tree and
//! key), so that a value copied or moved to another place does not open.
//!
//! The key never lives beside the data (DESIGN §5): in deployment it comes from a systemd
//! credential or a TPM; in development from a key file that only its owner may read. This module
//! never prints the key: `AtRestKey` has no `Debug` of its bytes and no way to get them back. The
//! cipher wipes its copy of the key when dropped.
//!
//! Sealed format, version 1: `0x01 ‖ nonce (24 B) ‖ ciphertext ‖ tag (16 B)`.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use rand::rngs::OsRng;
use thiserror::Error;

/// The length of an at-rest key in bytes.
pub const KEY_LEN: usize = 32;
const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// How many bytes sealing adds to a plaintext.
pub const SEAL_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// The key that seals citizen data at rest.
#[derive(Clone)]
pub struct AtRestKey {
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for AtRestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AtRestKey(<secret>)")
    }
}

/// Why a key file could not be made or read, or a sealed value could not be opened.
#[derive(Debug, Error)]
pub enum AtRestError {
    #[error("the key file {path} already exists; refusing to overwrite it")]
    Exists { path: PathBuf },
    #[error("cannot write the key file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the key file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the key file {path} has mode {mode:04o}; it must be readable by its owner only (chmod 600)"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("the key file {path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error("the key file {path} holds {found} bytes; an at-rest key is exactly {KEY_LEN} bytes")]
    Length { path: PathBuf, found: usize },
    #[error("the sealed value is too short ({found} bytes)")]
    TooShort { found: usize },
    #[error("the sealed value has unknown format {0}")]
    Format(u8),
    #[error(
        "the sealed value does not open: wrong key, altered bytes, or moved from another place"
    )]
    Open,
}

impl AtRestKey {
    /// A key from raw bytes (tests, and keys handed over by systemd or a TPM).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> AtRestKey {
        AtRestKey {
            cipher: XChaCha20Poly1305::new(&bytes.into()),
        }
    }

    /// Makes a new random key and writes it to `path` with mode 0600. Refuses to overwrite an
    /// existing file: a lost key makes the store unreadable.
    pub fn generate_file(path: &Path) -> Result<AtRestKey, AtRestError> {
        let mut bytes = [0u8; KEY_LEN];
        OsRng.fill_bytes(&mut bytes);
        let write_error = |source| AtRestError::Write {
            path: path.to_owned(),
            source,
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| match source.kind() {
                io::ErrorKind::AlreadyExists => AtRestError::Exists {
                    path: path.to_owned(),
                },
                _ => write_error(source),
            })?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .map_err(write_error)?;
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            File::open(parent)
                .and_then(|dir| dir.sync_all())
                .map_err(write_error)?;
        }
        Ok(AtRestKey::from_bytes(bytes))
    }

    /// Reads a key file. Refuses a file that its group or others may read or write, and a file
    /// that is not exactly [`KEY_LEN`] bytes.
    pub fn load_file(path: &Path) -> Result<AtRestKey, AtRestError> {
        let read_error = |source| AtRestError::Read {
            path: path.to_owned(),
            source,
        };
        let mut file = File::open(path).map_err(read_error)?;
        // The checks look at the opened file, so a swap between check and read changes nothing.
        let metadata = file.metadata().map_err(read_error)?;
        if !metadata.is_file() {
            return Err(AtRestError::NotAFile {
                path: path.to_owned(),
            });
        }
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(AtRestError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
        let mut bytes = Vec::with_capacity(KEY_LEN + 1);
        Read::by_ref(&mut file)
            .take(KEY_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
        let key: [u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| AtRestError::Length {
                path: path.to_owned(),
                found: usize::try_from(metadata.len()).unwrap_or(usize::MAX),
            })?;
        bytes.fill(0);
        Ok(AtRestKey::from_bytes(key))
    }

    /// Seals `plaintext` for the place named by `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("XChaCha20-Poly1305 seals any message shorter than 256 GiB");
        let mut sealed = Vec::with_capacity(SEAL_OVERHEAD + plaintext.len());
        sealed.push(FORMAT_V1);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// Opens a value sealed for the place named by `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, AtRestError> {
        if sealed.len() < SEAL_OVERHEAD {
            return Err(AtRestError::TooShort {
                found: sealed.len(),
            });
        }
        let (format, rest) = (sealed[0], &sealed[1..]);
        if format != FORMAT_V1 {
            return Err(AtRestError::Format(format));
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| AtRestError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_in_its_place() {
        let key = AtRestKey::from_bytes([7; KEY_LEN]);
        let sealed = key.seal(b"chunks/1", b"citizen data");
        assert_eq!(sealed.len(), SEAL_OVERHEAD + 12);
        assert_eq!(key.open(b"chunks/1", &sealed).unwrap(), b"citizen data");
        assert!(matches!(
            key.open(b"chunks/2", &sealed),
            Err(AtRestError::Open)
        ));
        let other = AtRestKey::from_bytes([8; KEY_LEN]);
        assert!(matches!(
            other.open(b"chunks/1", &sealed),
            Err(AtRestError::Open)
        ));
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(matches!(
            key.open(b"chunks/1", &altered),
            Err(AtRestError::Open)
        ));
        assert!(matches!(
            key.open(b"", &sealed[..10]),
            Err(AtRestError::TooShort { found: 10 })
        ));
        let mut future = sealed;
        future[0] = 2;
        assert!(matches!(
            key.open(b"chunks/1", &future),
            Err(AtRestError::Format(2))
        ));
    }

    #[test]
    fn nonces_differ_and_debug_hides_the_key() {
        let key = AtRestKey::from_bytes([7; KEY_LEN]);
        assert_ne!(key.seal(b"", b"same"), key.seal(b"", b"same"));
        assert_eq!(format!("{key:?}"), "AtRestKey(<secret>)");
    }
}
