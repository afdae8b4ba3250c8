//! Files of the city's trust material: keys written once with mode 0600, public files written
//! once with mode 0644, state files replaced atomically, PEM read with the file named in every
//! error.
//!
//! Invariants: nothing here overwrites a key; a key file that group or others can read is
//! refused before its content is looked at.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Mode of private keys: the owner only.
pub const KEY_MODE: u32 = 0o600;
/// Mode of certificates, requests, revocation lists and bundle descriptions.
pub const PUBLIC_MODE: u32 = 0o644;

/// What can go wrong with one file, always naming it.
#[derive(Debug, Error)]
pub enum FileError {
    #[error("{path}: cannot read it")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: cannot write it")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: already exists; refusing to overwrite it")]
    Exists { path: PathBuf },
    #[error("{path}: is not a PEM file ({expected} expected)")]
    NotPem {
        path: PathBuf,
        expected: &'static str,
    },
    #[error("{path}: holds a {found}, not a {expected}")]
    WrongPem {
        path: PathBuf,
        found: String,
        expected: &'static str,
    },
    #[error(
        "{path}: the key can be read by other users (mode {mode:04o}); it must be readable by its owner only (chmod 600)"
    )]
    KeyReadableByOthers { path: PathBuf, mode: u32 },
}

/// Creates `path` with `contents` and `mode`; refuses if it exists (checked by the kernel with
/// `O_EXCL`, so two runs cannot both write).
pub fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), FileError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| match source.kind() {
            io::ErrorKind::AlreadyExists => FileError::Exists {
                path: path.to_owned(),
            },
            _ => FileError::Write {
                path: path.to_owned(),
                source,
            },
        })?;
    // The umask may have removed bits from `mode` (never added any): set it exactly.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .and_then(|()| file.write_all(contents))
        .and_then(|()| file.sync_all())
        .map_err(|source| FileError::Write {
            path: path.to_owned(),
            source,
        })
}

/// Replaces `path` atomically (a temporary file beside it, then a rename), so a reader sees the
/// old or the new content, never half of one. For state that changes: the CRL, `issued.toml`.
pub fn replace(path: &Path, contents: &[u8], mode: u32) -> Result<(), FileError> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".new");
    let temporary = PathBuf::from(temporary);
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&temporary)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temporary, path)?;
        if let Some(parent) = path.parent() {
            File::open(parent)?.sync_all()?;
        }
        Ok(())
    })();
    written.map_err(|source| FileError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Refuses a path that exists (for checking every output before writing the first one).
pub fn ensure_absent(path: &Path) -> Result<(), FileError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Err(FileError::Exists {
            path: path.to_owned(),
        }),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(FileError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

pub fn read(path: &Path) -> Result<Vec<u8>, FileError> {
    fs::read(path).map_err(|source| FileError::Read {
        path: path.to_owned(),
        source,
    })
}

pub fn read_text(path: &Path) -> Result<String, FileError> {
    fs::read_to_string(path).map_err(|source| FileError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The DER inside a PEM file whose label is `label` ("CERTIFICATE", "PRIVATE KEY", …).
pub fn read_pem(path: &Path, label: &'static str) -> Result<Vec<u8>, FileError> {
    let text = read(path)?;
    pem_contents(path, &text, label)
}

/// The DER of PEM `text` read from `path` (named in errors only).
pub fn pem_contents(path: &Path, text: &[u8], label: &'static str) -> Result<Vec<u8>, FileError> {
    let parsed = pem::parse(text).map_err(|_| FileError::NotPem {
        path: path.to_owned(),
        expected: label,
    })?;
    if parsed.tag() != label {
        return Err(FileError::WrongPem {
            path: path.to_owned(),
            found: parsed.tag().to_owned(),
            expected: label,
        });
    }
    Ok(parsed.into_contents())
}

/// The PEM text of a private key file, after checking that only its owner can read it.
pub fn read_private_key_pem(path: &Path) -> Result<String, FileError> {
    let metadata = fs::metadata(path).map_err(|source| FileError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(FileError::KeyReadableByOthers {
            path: path.to_owned(),
            mode,
        });
    }
    read_text(path)
}

/// PEM text with Unix line endings, as every other file on the bus and at the city.
pub fn pem_text(label: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(label, der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}
