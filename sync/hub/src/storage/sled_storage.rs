//! [`HubStorage`] on sled, the embedded default.
//!
//! Trees (keys: `device` is the device id's bytes, which never hold a 0 byte; `id` the request
//! id's 16 bytes; numbers big-endian):
//! - `requests`: id → version (u64) ‖ sealed Automerge `save()` (the whole document: hub
//!   documents are small, and a whole value keeps the optimistic version check to one key).
//! - `holders`: id → postcard list of the devices that hold the request.
//! - `held`: device ‖ 0 ‖ id → empty.
//! - `confirmed`: device ‖ 0 ‖ id → postcard heads.
//! - `dirty`: device ‖ 0 ‖ id → mark (u64, from sled's id generator: unique and growing).
//! - `devices`: device → postcard [`DeviceState`].
//! - `manifests`: device ‖ 0 ‖ counter → postcard [`ArchivedManifest`].
//! - `quarantine`: device ‖ 0 ‖ sequence → postcard [`QuarantineEntry`];
//!   `quarantine_bodies`: same key → sealed bytes.
//! - `trip`: device ‖ 0 ‖ line number → postcard [`TripEntry`] (the bus's positions, no
//!   citizen's data: not sealed).
//! - `indicators`: id → sealed postcard [`IndicatorRow`] (ids are UUIDv7: a period is a range).
//! - `meta`: `key-check` (a sealed constant, so a wrong key is refused at open), `replica`,
//!   `visitor-key` (sealed), `indicators-version` (u32), `file:<name>` → digest ‖ version.
//!
//! Sealed values are bound to their tree and key (the at-rest associated data), so a value
//! copied elsewhere does not open. A commit is one sled transaction over the trees, then a
//! flush.

use std::path::{Path, PathBuf};

use busloket_sync::at_rest::AtRestKey;
use busloket_sync::protocol::Hash;
use busloket_sync::terms::{DeviceId, RequestId};
use busloket_sync::trip::TripEntry;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, Transactional, TransactionalTree,
};

use super::{
    ArchivedManifest, Commit, DeviceState, Heads, HubStorage, IndicatorRow, QuarantineEntry,
    StorageError, StoredRequest, VisitorKey,
};

const KEY_CHECK: &[u8] = b"busloket hub key check v1";

/// The hub's sled store. Share it behind an `Arc`.
pub struct SledStorage {
    path: PathBuf,
    db: sled::Db,
    key: AtRestKey,
    requests: sled::Tree,
    holders: sled::Tree,
    held: sled::Tree,
    confirmed: sled::Tree,
    dirty: sled::Tree,
    devices: sled::Tree,
    manifests: sled::Tree,
    quarantine: sled::Tree,
    quarantine_bodies: sled::Tree,
    trip: sled::Tree,
    indicators: sled::Tree,
    meta: sled::Tree,
}

impl std::fmt::Debug for SledStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStorage")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn backend(error: impl std::error::Error + Send + Sync + 'static) -> StorageError {
    StorageError::Backend(Box::new(error))
}

fn device_key(device: &DeviceId, rest: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(device.as_str().len() + 1 + rest.len());
    key.extend_from_slice(device.as_str().as_bytes());
    key.push(0);
    key.extend_from_slice(rest);
    key
}

fn device_prefix(device: &DeviceId) -> Vec<u8> {
    device_key(device, &[])
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Postcard encodes every value of these plain types; an error would be a bug here.
    postcard::to_stdvec(value).unwrap_or_default()
}

fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T, StorageError> {
    postcard::from_bytes(bytes).map_err(|_| StorageError::Corrupt { what })
}

fn request_aad(id: &RequestId) -> Vec<u8> {
    [b"requests\0".as_slice(), id.as_bytes()].concat()
}

fn indicator_aad(id: &RequestId) -> Vec<u8> {
    [b"indicators\0".as_slice(), id.as_bytes()].concat()
}

/// The smallest request id made at `at` (UUIDv7: 48 bits of Unix milliseconds first).
fn first_id_at(at: DateTime<Utc>) -> [u8; 16] {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    let mut key = [0u8; 16];
    key[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    key
}

fn body_aad(key: &[u8]) -> Vec<u8> {
    [b"quarantine_bodies\0".as_slice(), key].concat()
}

fn u64_of(bytes: &[u8], what: &'static str) -> Result<u64, StorageError> {
    bytes
        .get(..8)
        .and_then(|slice| <[u8; 8]>::try_from(slice).ok())
        .map(u64::from_be_bytes)
        .ok_or(StorageError::Corrupt { what })
}

impl SledStorage {
    /// Opens (or creates) the store in `dir`, checking that `key` is the store's.
    pub fn open(dir: &Path, key: AtRestKey) -> Result<SledStorage, StorageError> {
        std::fs::create_dir_all(dir).map_err(|source| StorageError::Open {
            path: dir.to_owned(),
            source,
        })?;
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(64 * 1024 * 1024)
            .open()
            .map_err(|error| StorageError::Open {
                path: dir.to_owned(),
                source: std::io::Error::other(error),
            })?;
        let tree = |name: &str| db.open_tree(name).map_err(backend);
        let storage = SledStorage {
            path: dir.to_owned(),
            requests: tree("requests")?,
            holders: tree("holders")?,
            held: tree("held")?,
            confirmed: tree("confirmed")?,
            dirty: tree("dirty")?,
            devices: tree("devices")?,
            manifests: tree("manifests")?,
            quarantine: tree("quarantine")?,
            quarantine_bodies: tree("quarantine_bodies")?,
            trip: tree("trip")?,
            indicators: tree("indicators")?,
            meta: tree("meta")?,
            db,
            key,
        };
        storage.check_key()?;
        Ok(storage)
    }

    fn check_key(&self) -> Result<(), StorageError> {
        let aad = b"meta\0key-check";
        match self.meta.get("key-check").map_err(backend)? {
            Some(sealed) => match self.key.open(aad, &sealed) {
                Ok(plain) if plain == KEY_CHECK => Ok(()),
                _ => Err(StorageError::WrongKey {
                    path: self.path.clone(),
                }),
            },
            None => {
                self.meta
                    .insert("key-check", self.key.seal(aad, KEY_CHECK))
                    .map_err(backend)?;
                self.flush()
            }
        }
    }

    fn flush(&self) -> Result<(), StorageError> {
        self.db.flush().map_err(backend)?;
        Ok(())
    }

    fn scan_prefix(&self, tree: &sled::Tree, prefix: &[u8]) -> sled::Iter {
        tree.scan_prefix(prefix)
    }
}

type Abort = ConflictableTransactionError<StorageError>;

fn tx<T>(result: Result<T, sled::transaction::UnabortableTransactionError>) -> Result<T, Abort> {
    result.map_err(Abort::from)
}

impl HubStorage for SledStorage {
    fn replica(&self) -> Result<[u8; 8], StorageError> {
        let mut fresh = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut fresh);
        // Set once: a concurrent first call keeps whichever was written first.
        let _ = self
            .meta
            .compare_and_swap("replica", None as Option<&[u8]>, Some(&fresh[..]))
            .map_err(backend)?;
        let stored = self
            .meta
            .get("replica")
            .map_err(backend)?
            .ok_or(StorageError::Corrupt { what: "replica" })?;
        self.flush()?;
        <[u8; 8]>::try_from(stored.as_ref()).map_err(|_| StorageError::Corrupt { what: "replica" })
    }

    fn load_request(&self, id: &RequestId) -> Result<Option<StoredRequest>, StorageError> {
        let Some(value) = self.requests.get(id.as_bytes()).map_err(backend)? else {
            return Ok(None);
        };
        let version = u64_of(&value, "request version")?;
        let bytes = self.key.open(&request_aad(id), &value[8..])?;
        Ok(Some(StoredRequest { version, bytes }))
    }

    fn device_state(&self, device: &DeviceId) -> Result<DeviceState, StorageError> {
        match self.devices.get(device.as_str()).map_err(backend)? {
            Some(bytes) => decode(&bytes, "device state"),
            None => Ok(DeviceState::default()),
        }
    }

    fn confirmed(&self, device: &DeviceId, id: &RequestId) -> Result<Heads, StorageError> {
        match self
            .confirmed
            .get(device_key(device, id.as_bytes()))
            .map_err(backend)?
        {
            Some(bytes) => decode(&bytes, "confirmed heads"),
            None => Ok(Vec::new()),
        }
    }

    fn dirty(&self, device: &DeviceId) -> Result<Vec<(RequestId, u64)>, StorageError> {
        let prefix = device_prefix(device);
        let mut dirty = self
            .scan_prefix(&self.dirty, &prefix)
            .map(|entry| {
                let (key, value) = entry.map_err(backend)?;
                let id = <[u8; 16]>::try_from(&key[prefix.len()..])
                    .map_err(|_| StorageError::Corrupt { what: "dirty key" })?;
                Ok((RequestId::from_bytes(id), u64_of(&value, "dirty mark")?))
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        dirty.sort_by_key(|(_, mark)| *mark);
        Ok(dirty)
    }

    fn holds(&self, device: &DeviceId, id: &RequestId) -> Result<bool, StorageError> {
        self.held
            .contains_key(device_key(device, id.as_bytes()))
            .map_err(backend)
    }

    fn held_count(&self, device: &DeviceId) -> Result<u64, StorageError> {
        Ok(self.scan_prefix(&self.held, &device_prefix(device)).count() as u64)
    }

    fn commit(&self, commit: Commit) -> Result<(), StorageError> {
        // Sealing is CPU work: done before the transaction, which sled may run several times.
        let sealed: Vec<Vec<u8>> = commit
            .requests
            .iter()
            .map(|write| self.key.seal(&request_aad(&write.id), &write.bytes))
            .collect();
        let indicators: Vec<(&RequestId, Vec<u8>)> = commit
            .indicators
            .iter()
            .map(|(id, row)| (id, self.key.seal(&indicator_aad(id), &encode(row))))
            .collect();
        let quarantine_ids: Vec<u64> = commit
            .quarantine
            .iter()
            .map(|_| self.db.generate_id().map_err(backend))
            .collect::<Result<_, _>>()?;
        let quarantine: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = match &commit.device {
            Some(device) => commit
                .quarantine
                .iter()
                .zip(&quarantine_ids)
                .map(|((entry, body), id)| {
                    let key = device_key(device, &id.to_be_bytes());
                    let sealed = self.key.seal(&body_aad(&key), body);
                    (key, encode(entry), sealed)
                })
                .collect(),
            None => Vec::new(),
        };
        let trees = (
            &self.requests,
            &self.holders,
            &self.held,
            &self.confirmed,
            &self.dirty,
            &self.devices,
            &self.manifests,
            &self.quarantine,
            &self.quarantine_bodies,
            &self.trip,
            &self.indicators,
        );
        let result = trees.transaction(
            |(
                requests,
                holders,
                held,
                confirmed,
                dirty,
                devices,
                manifests,
                q,
                q_bodies,
                trip,
                indicator_rows,
            )| {
                for (id, sealed) in &indicators {
                    tx(indicator_rows.insert(id.as_bytes(), sealed.as_slice()))?;
                }
                self.apply_commit(
                    &commit,
                    &sealed,
                    &quarantine,
                    Trees {
                        requests,
                        holders,
                        held,
                        confirmed,
                        dirty,
                        devices,
                        manifests,
                        quarantine: q,
                        quarantine_bodies: q_bodies,
                        trip,
                    },
                )
            },
        );
        match result {
            Ok(()) => self.flush(),
            Err(TransactionError::Abort(error)) => Err(error),
            Err(TransactionError::Storage(error)) => Err(backend(error)),
        }
    }

    fn devices(&self) -> Result<Vec<(DeviceId, DeviceState)>, StorageError> {
        self.devices
            .iter()
            .map(|entry| {
                let (key, value) = entry.map_err(backend)?;
                let device = std::str::from_utf8(&key)
                    .ok()
                    .and_then(|text| text.parse::<DeviceId>().ok())
                    .ok_or(StorageError::Corrupt { what: "device key" })?;
                Ok((device, decode(&value, "device state")?))
            })
            .collect()
    }

    fn trip_acked(&self, device: &DeviceId) -> Result<u64, StorageError> {
        match self
            .trip
            .scan_prefix(device_prefix(device))
            .next_back()
            .transpose()
            .map_err(backend)?
        {
            Some((key, _)) => trip_number(&key),
            None => Ok(0),
        }
    }

    fn trip(&self, device: &DeviceId) -> Result<Vec<(u64, TripEntry)>, StorageError> {
        self.scan_prefix(&self.trip, &device_prefix(device))
            .map(|entry| {
                let (key, value) = entry.map_err(backend)?;
                Ok((trip_number(&key)?, decode(&value, "trip log line")?))
            })
            .collect()
    }

    fn quarantine_entries(&self, device: &DeviceId) -> Result<Vec<QuarantineEntry>, StorageError> {
        self.scan_prefix(&self.quarantine, &device_prefix(device))
            .map(|entry| {
                let (_, value) = entry.map_err(backend)?;
                decode(&value, "quarantine entry")
            })
            .collect()
    }

    fn manifest(
        &self,
        device: &DeviceId,
        counter: u64,
    ) -> Result<Option<ArchivedManifest>, StorageError> {
        self.manifests
            .get(device_key(device, &counter.to_be_bytes()))
            .map_err(backend)?
            .map(|bytes| decode(&bytes, "archived manifest"))
            .transpose()
    }

    fn file_version(&self, name: &str, digest: Hash) -> Result<u64, StorageError> {
        let key = format!("file:{name}");
        let mut version = 0;
        self.meta
            .fetch_and_update(&key, |current| {
                let (known, current_version) = match current {
                    Some(value) if value.len() == 40 => (
                        &value[..32],
                        u64::from_be_bytes(value[32..40].try_into().unwrap_or([0; 8])),
                    ),
                    _ => (&[][..], 0),
                };
                version = if known == digest {
                    current_version
                } else {
                    current_version + 1
                };
                Some([&digest[..], &version.to_be_bytes()[..]].concat())
            })
            .map_err(backend)?;
        self.flush()?;
        Ok(version)
    }

    fn visitor_key(&self) -> Result<VisitorKey, StorageError> {
        let aad = b"meta\0visitor-key";
        let mut fresh = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut fresh);
        // Set once: a concurrent first call keeps whichever was written first.
        let _ = self
            .meta
            .compare_and_swap(
                "visitor-key",
                None as Option<&[u8]>,
                Some(self.key.seal(aad, &fresh)),
            )
            .map_err(backend)?;
        let sealed =
            self.meta
                .get("visitor-key")
                .map_err(backend)?
                .ok_or(StorageError::Corrupt {
                    what: "visitor key",
                })?;
        self.flush()?;
        let bytes = self.key.open(aad, &sealed)?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map(VisitorKey::from_bytes)
            .map_err(|_| StorageError::Corrupt {
                what: "visitor key",
            })
    }

    fn indicator_rows(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<IndicatorRow>, StorageError> {
        self.indicators
            .range(first_id_at(from)..first_id_at(until))
            .map(|entry| {
                let (key, sealed) = entry.map_err(backend)?;
                let id = <[u8; 16]>::try_from(key.as_ref())
                    .map(RequestId::from_bytes)
                    .map_err(|_| StorageError::Corrupt {
                        what: "indicator key",
                    })?;
                let plain = self.key.open(&indicator_aad(&id), &sealed)?;
                decode(&plain, "indicator row")
            })
            .collect()
    }

    fn indicators_version(&self) -> Result<u32, StorageError> {
        match self.meta.get("indicators-version").map_err(backend)? {
            Some(value) => <[u8; 4]>::try_from(value.as_ref())
                .map(u32::from_be_bytes)
                .map_err(|_| StorageError::Corrupt {
                    what: "indicators version",
                }),
            None => Ok(0),
        }
    }

    fn set_indicators_version(&self, version: u32) -> Result<(), StorageError> {
        self.meta
            .insert("indicators-version", &version.to_be_bytes())
            .map_err(backend)?;
        self.flush()
    }

    fn request_ids(&self) -> Result<Vec<RequestId>, StorageError> {
        self.requests
            .iter()
            .keys()
            .map(|key| {
                let key = key.map_err(backend)?;
                <[u8; 16]>::try_from(key.as_ref())
                    .map(RequestId::from_bytes)
                    .map_err(|_| StorageError::Corrupt {
                        what: "request key",
                    })
            })
            .collect()
    }

    fn check(&self) -> Result<(), StorageError> {
        self.check_key()?;
        self.meta
            .insert(
                "health",
                &chrono::Utc::now().timestamp_millis().to_be_bytes(),
            )
            .map_err(backend)?;
        self.flush()
    }
}

/// The line number at the end of a `trip` key.
fn trip_number(key: &[u8]) -> Result<u64, StorageError> {
    key.len()
        .checked_sub(8)
        .and_then(|start| key[start..].try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or(StorageError::Corrupt {
            what: "trip log key",
        })
}

struct Trees<'a> {
    requests: &'a TransactionalTree,
    holders: &'a TransactionalTree,
    held: &'a TransactionalTree,
    confirmed: &'a TransactionalTree,
    dirty: &'a TransactionalTree,
    devices: &'a TransactionalTree,
    manifests: &'a TransactionalTree,
    quarantine: &'a TransactionalTree,
    quarantine_bodies: &'a TransactionalTree,
    trip: &'a TransactionalTree,
}

impl SledStorage {
    fn apply_commit(
        &self,
        commit: &Commit,
        sealed: &[Vec<u8>],
        quarantine: &[(Vec<u8>, Vec<u8>, Vec<u8>)],
        trees: Trees<'_>,
    ) -> Result<(), Abort> {
        let fail = |error: StorageError| Abort::Abort(error);
        for (write, sealed) in commit.requests.iter().zip(sealed) {
            let key = write.id.as_bytes();
            let current = tx(trees.requests.get(key))?
                .map(|value| u64_of(&value, "request version"))
                .transpose()
                .map_err(fail)?;
            if current != write.expected_version {
                return Err(fail(StorageError::Conflict));
            }
            let version = write.expected_version.map_or(1, |version| version + 1);
            let value = [&version.to_be_bytes()[..], sealed].concat();
            tx(trees.requests.insert(key, value))?;
            let holders: Vec<String> = match tx(trees.holders.get(key))? {
                Some(bytes) => decode(&bytes, "holders").map_err(fail)?,
                None => Vec::new(),
            };
            for holder in holders {
                if commit.device.as_ref().map(DeviceId::as_str) == Some(holder.as_str()) {
                    continue;
                }
                let Ok(holder) = holder.parse::<DeviceId>() else {
                    return Err(fail(StorageError::Corrupt { what: "holders" }));
                };
                let mark = trees
                    .dirty
                    .generate_id()
                    .map_err(|error| fail(backend(error)))?;
                tx(trees
                    .dirty
                    .insert(device_key(&holder, key), &mark.to_be_bytes()))?;
            }
        }
        let Some(device) = &commit.device else {
            return Ok(());
        };
        for id in &commit.held {
            let key = id.as_bytes();
            let mut holders: Vec<String> = match tx(trees.holders.get(key))? {
                Some(bytes) => decode(&bytes, "holders").map_err(fail)?,
                None => Vec::new(),
            };
            if !holders.iter().any(|holder| holder == device.as_str()) {
                holders.push(device.to_string());
                tx(trees.holders.insert(key, encode(&holders)))?;
            }
            tx(trees.held.insert(device_key(device, key), &[]))?;
        }
        for (id, heads) in &commit.confirmed {
            let key = device_key(device, id.as_bytes());
            if heads.is_empty() {
                tx(trees.confirmed.remove(key))?;
            } else {
                tx(trees.confirmed.insert(key, encode(heads)))?;
            }
        }
        for (id, mark) in &commit.clear_dirty {
            let key = device_key(device, id.as_bytes());
            let current = tx(trees.dirty.get(&key))?;
            if current.as_deref() == Some(&mark.to_be_bytes()[..]) {
                tx(trees.dirty.remove(key))?;
            }
        }
        if let Some(state) = &commit.state {
            tx(trees.devices.insert(device.as_str(), encode(state)))?;
        }
        if let Some(manifest) = &commit.manifest {
            tx(trees.manifests.insert(
                device_key(device, &manifest.counter.to_be_bytes()),
                encode(manifest),
            ))?;
        }
        for (key, entry, body) in quarantine {
            tx(trees.quarantine.insert(key.as_slice(), entry.as_slice()))?;
            tx(trees
                .quarantine_bodies
                .insert(key.as_slice(), body.as_slice()))?;
        }
        for (number, entry) in &commit.trip {
            tx(trees
                .trip
                .insert(device_key(device, &number.to_be_bytes()), encode(entry)))?;
        }
        Ok(())
    }
}
