//! The access log: who read whose citizen data, which data, why, for which request, on which
//! device and when (DESIGN §5). Append-only and hash-chained, in the store's sled database.
//!
//! Layout: tree `access_log`, key = sequence number (u64 big-endian, from 1), value =
//! chain hash (32 B, in clear) ‖ the entry's canonical bytes sealed with the at-rest key for the
//! place `access_log/<seq>`. The chain hash of entry n is SHA-256(chain hash of n-1 ‖ canonical
//! bytes of n), starting from SHA-256 of a domain tag. Tree `access_log_head` holds the last
//! sequence number and chain hash; entry and head are written in one transaction and flushed
//! before `append` returns.
//!
//! [`AccessLog::verify`] finds an edited, removed, reordered or re-sealed entry and a cut-off
//! tail. Someone holding the key can still rewrite every entry from some point on together with
//! the head; anchoring [`AccessLog::head`] outside the bus (at the hub) catches that too.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use thiserror::Error;

use crate::at_rest::AtRestKey;
use crate::national_number::NationalNumber;
use crate::terms::{DeviceId, RequestId};

const ENTRIES_TREE: &str = "access_log";
const HEAD_TREE: &str = "access_log_head";
const HEAD_KEY: &[u8] = b"head";
const DOMAIN: &[u8] = b"busloket access log v1\n";
const HASH_LEN: usize = 32;

/// The categories of citizen data an entry may name.
pub const DATA_CATEGORIES: &[&str] = &[
    "identity",
    "address",
    "photo",
    "request",
    "household",
    "civil-status",
    "criminal-record",
];

/// One read of citizen data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    pub at: DateTime<Utc>,
    /// Who read: `staff:jan`, `kiosk:station-1`, `hub:issuer`.
    pub who: String,
    /// Whose data.
    pub subject: NationalNumber,
    /// Which data, from [`DATA_CATEGORIES`].
    pub data: Vec<String>,
    pub purpose: String,
    pub request: Option<RequestId>,
    pub device: DeviceId,
}

/// An entry as stored, with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoggedAccess {
    pub seq: u64,
    #[serde(serialize_with = "as_hex")]
    pub chain: [u8; HASH_LEN],
    pub entry: AccessEntry,
}

/// The end of the chain: worth keeping somewhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChainHead {
    pub seq: u64,
    #[serde(serialize_with = "as_hex")]
    pub hash: [u8; HASH_LEN],
}

/// What is wrong at a place of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Breach {
    #[error("the entry is missing")]
    Missing,
    #[error("the entry does not decrypt (altered bytes, or moved from another place)")]
    Unreadable,
    #[error("the entry's content does not match the chain")]
    Altered,
    #[error("the stored bytes are not an access-log entry")]
    Malformed,
    #[error("the head of the chain does not match the last entry")]
    HeadMismatch,
}

/// Why the access log refused an entry or failed to read or verify.
#[derive(Debug, Error)]
pub enum AccessLogError {
    #[error("the access log's storage failed")]
    Storage(#[from] sled::Error),
    #[error("access-log entry {seq} is broken: {breach}")]
    Broken { seq: u64, breach: Breach },
    #[error("access-log entry refused: {0}")]
    Invalid(String),
}

/// The access log of one sled database.
pub struct AccessLog {
    db: sled::Db,
    entries: sled::Tree,
    head: sled::Tree,
    key: AtRestKey,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog")
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl AccessLog {
    /// Opens (or starts) the access log in `db`.
    pub fn open(db: &sled::Db, key: AtRestKey) -> Result<AccessLog, AccessLogError> {
        Ok(AccessLog {
            db: db.clone(),
            entries: db.open_tree(ENTRIES_TREE)?,
            head: db.open_tree(HEAD_TREE)?,
            key,
        })
    }

    /// Appends an entry and returns its sequence number, once it is on disk.
    pub fn append(&self, entry: &AccessEntry) -> Result<u64, AccessLogError> {
        check(entry)?;
        let canonical = canonical_bytes(entry);
        let seq = (&self.entries, &self.head)
            .transaction(|(entries, head)| {
                let last = match head.get(HEAD_KEY)? {
                    Some(bytes) => {
                        decode_head(&bytes).ok_or(ConflictableTransactionError::Abort(()))?
                    }
                    None => ChainHead {
                        seq: 0,
                        hash: genesis(),
                    },
                };
                let seq = last.seq + 1;
                let hash = chain(&last.hash, &canonical);
                let mut value = hash.to_vec();
                value.extend_from_slice(&self.key.seal(&aad(seq), &canonical));
                entries.insert(&seq.to_be_bytes(), value)?;
                head.insert(HEAD_KEY, encode_head(&ChainHead { seq, hash }))?;
                Ok(seq)
            })
            .map_err(|error| match error {
                TransactionError::Abort(()) => AccessLogError::Broken {
                    seq: 0,
                    breach: Breach::HeadMismatch,
                },
                TransactionError::Storage(error) => AccessLogError::Storage(error),
            })?;
        self.db.flush()?;
        Ok(seq)
    }

    /// The last sequence number and chain hash, `None` while the log is empty.
    pub fn head(&self) -> Result<Option<ChainHead>, AccessLogError> {
        match self.head.get(HEAD_KEY)? {
            Some(bytes) => decode_head(&bytes).map(Some).ok_or(AccessLogError::Broken {
                seq: 0,
                breach: Breach::HeadMismatch,
            }),
            None => Ok(None),
        }
    }

    /// Up to `limit` entries from sequence number `from` on, each decrypted and checked
    /// against the hash stored beside it.
    pub fn entries(&self, from: u64, limit: usize) -> Result<Vec<LoggedAccess>, AccessLogError> {
        let mut found = Vec::new();
        for item in self.entries.range(from.to_be_bytes()..).take(limit) {
            let (key, value) = item?;
            let seq = decode_seq(&key).ok_or(AccessLogError::Broken {
                seq: from,
                breach: Breach::Malformed,
            })?;
            let (stored, canonical) = self.open_entry(seq, &value)?;
            let entry = parse(&canonical).ok_or(AccessLogError::Broken {
                seq,
                breach: Breach::Malformed,
            })?;
            found.push(LoggedAccess {
                seq,
                chain: stored,
                entry,
            });
        }
        Ok(found)
    }

    /// Walks the whole chain and returns how many entries it checked, or the first broken place.
    pub fn verify(&self) -> Result<u64, AccessLogError> {
        let broken = |seq, breach| AccessLogError::Broken { seq, breach };
        let mut previous = genesis();
        let mut expected = 1u64;
        for item in self.entries.iter() {
            let (key, value) = item?;
            let seq = decode_seq(&key).ok_or(broken(expected, Breach::Malformed))?;
            if seq != expected {
                return Err(broken(expected, Breach::Missing));
            }
            let (stored, canonical) = self.open_entry(seq, &value)?;
            let hash = chain(&previous, &canonical);
            if hash != stored {
                return Err(broken(seq, Breach::Altered));
            }
            parse(&canonical).ok_or(broken(seq, Breach::Malformed))?;
            previous = hash;
            expected += 1;
        }
        let checked = expected - 1;
        match self.head.get(HEAD_KEY)? {
            None if checked == 0 => Ok(0),
            None => Err(broken(checked, Breach::HeadMismatch)),
            Some(bytes) => match decode_head(&bytes) {
                Some(head) if head.seq == checked && head.hash == previous => Ok(checked),
                Some(head) if head.seq > checked => Err(broken(checked + 1, Breach::Missing)),
                _ => Err(broken(checked, Breach::HeadMismatch)),
            },
        }
    }

    /// Splits a stored value and decrypts the entry: (stored chain hash, canonical bytes).
    fn open_entry(
        &self,
        seq: u64,
        value: &[u8],
    ) -> Result<([u8; HASH_LEN], Vec<u8>), AccessLogError> {
        let broken = |breach| AccessLogError::Broken { seq, breach };
        if value.len() < HASH_LEN {
            return Err(broken(Breach::Malformed));
        }
        let (stored, sealed) = value.split_at(HASH_LEN);
        let canonical = self
            .key
            .open(&aad(seq), sealed)
            .map_err(|_| broken(Breach::Unreadable))?;
        let stored: [u8; HASH_LEN] = stored.try_into().map_err(|_| broken(Breach::Malformed))?;
        Ok((stored, canonical))
    }
}

fn check(entry: &AccessEntry) -> Result<(), AccessLogError> {
    let invalid = |reason: String| Err(AccessLogError::Invalid(reason));
    if entry.who.trim().is_empty() {
        return invalid("it must say who read the data".into());
    }
    if entry.purpose.trim().is_empty() {
        return invalid("it must say why the data was read".into());
    }
    if entry.data.is_empty() {
        return invalid("it must name the data that was read".into());
    }
    match entry
        .data
        .iter()
        .find(|category| !DATA_CATEGORIES.contains(&category.as_str()))
    {
        Some(unknown) => invalid(format!("unknown data category `{unknown}`")),
        None => Ok(()),
    }
}

/// The bytes that are hashed and sealed: a domain tag, then the entry as JSON. The struct's
/// fields serialise in declaration order and every field has a single writing, so the same entry
/// always gives the same bytes; `verify` hashes the stored bytes, never a re-serialisation.
fn canonical_bytes(entry: &AccessEntry) -> Vec<u8> {
    let mut bytes = DOMAIN.to_vec();
    bytes.extend(serde_json::to_vec(entry).unwrap_or_default());
    bytes
}

fn parse(canonical: &[u8]) -> Option<AccessEntry> {
    serde_json::from_slice(canonical.strip_prefix(DOMAIN)?).ok()
}

fn as_hex<S: serde::Serializer>(hash: &[u8; HASH_LEN], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&hex::encode(hash))
}

fn genesis() -> [u8; HASH_LEN] {
    Sha256::digest(DOMAIN).into()
}

fn chain(previous: &[u8; HASH_LEN], canonical: &[u8]) -> [u8; HASH_LEN] {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(canonical);
    hasher.finalize().into()
}

fn aad(seq: u64) -> Vec<u8> {
    let mut aad = b"access_log/".to_vec();
    aad.extend_from_slice(&seq.to_be_bytes());
    aad
}

fn decode_seq(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

fn encode_head(head: &ChainHead) -> Vec<u8> {
    let mut bytes = head.seq.to_be_bytes().to_vec();
    bytes.extend_from_slice(&head.hash);
    bytes
}

fn decode_head(bytes: &[u8]) -> Option<ChainHead> {
    let (seq, hash) = bytes.split_at_checked(8)?;
    Some(ChainHead {
        seq: decode_seq(seq)?,
        hash: hash.try_into().ok()?,
    })
}
