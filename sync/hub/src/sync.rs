//! The hub's sync engine: what PROTOCOL.md "What the hub checks, in order" (steps 2–9) and "The
//! hub's bookkeeping per device" say, with no HTTP in sight. The server hands it the device's
//! identity from the TLS handshake (step 1) and the body; it answers with the answer's bytes or a
//! [`Refusal`].
//!
//! Concurrency: two uploads of one device never interleave (a lock per device, held for the
//! whole of [`Hub::receive`]); different devices proceed in parallel. Nothing CPU-heavy happens
//! under a lock shared by devices: Automerge work runs outside every shared lock, and request
//! documents are written with optimistic versions ([`crate::storage`]), so a device whose
//! commit lost a race with another writer of the same request reads again and redoes its work.
//!
//! Blocking: call it from `spawn_blocking`.

mod answer;
mod apply;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use automerge::{ActorId, ChangeHash};
use busloket_sync::protocol::{
    self, CRL_FILE, FileVersion, ProtocolError, STAFF_FILE, STOPS_FILE, SyncedFile, VerifiedUpload,
    bound_actor, open_upload,
};
use busloket_sync::record::{NewEvent, RecordError, RequestRecord, RequestView};
use busloket_sync::terms::{DeviceId, RequestId};
use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::indicators::{IndicatorRow, ROW_VERSION, VisitorKey};
use crate::storage::{
    ArchivedManifest, Commit, DeviceState, HubStorage, QuarantineEntry, RequestWrite, StorageError,
};

/// How often a commit that lost a race is redone before the hub gives up with `unavailable`.
const ATTEMPTS: usize = 16;

/// Who is uploading, from the client certificate the TLS handshake verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentity {
    pub id: DeviceId,
    /// The certificate's raw Ed25519 key: it signs the manifests.
    pub public_key: [u8; 32],
    /// The certificate's serial number (DER content octets), checked against the CRL.
    pub serial: Vec<u8>,
}

/// A refused upload: the HTTP status and the stable code of PROTOCOL.md "Errors".
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{code} ({status}): {message}")]
pub struct Refusal {
    pub code: &'static str,
    pub status: u16,
    pub message: String,
}

impl Refusal {
    pub fn new(code: &'static str, status: u16, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            status,
            message: message.into(),
        }
    }

    fn revoked() -> Refusal {
        Refusal::new(
            "device-revoked",
            403,
            "this device's certificate is revoked; the upload is kept in quarantine",
        )
    }

    pub fn unavailable() -> Refusal {
        Refusal::new(
            "unavailable",
            503,
            "the hub cannot write now; try again later",
        )
    }

    fn from_protocol(error: &ProtocolError) -> Refusal {
        let status = match error {
            ProtocolError::TooLarge { .. } => 413,
            ProtocolError::BadSignature
            | ProtocolError::WrongDevice { .. }
            | ProtocolError::ForeignActor { .. } => 403,
            _ => 400,
        };
        Refusal::new(error.code(), status, error.to_string())
    }
}

/// Whether PROTOCOL.md keeps an upload refused with `error` in quarantine (steps 4, 6 and 7).
fn quarantined(error: &ProtocolError) -> bool {
    !matches!(
        error,
        ProtocolError::TooLarge { .. } | ProtocolError::BadEncoding(_)
    )
}

/// Why a change made at the hub was not recorded.
#[derive(Debug, Error)]
pub enum HubError {
    #[error("request {0} is not at the hub")]
    NotFound(RequestId),
    #[error("the event was refused")]
    Refused(#[source] RecordError),
    #[error("the stored request {id} does not load")]
    Corrupt {
        id: RequestId,
        #[source]
        source: RecordError,
    },
    #[error("the hub's store failed")]
    Storage(#[from] StorageError),
}

/// The hub: storage, its own Automerge actor, what it syncs to the buses.
pub struct Hub<S: HubStorage + ?Sized> {
    storage: Arc<S>,
    actor: ActorId,
    /// One lock per device that ever uploaded. A std mutex: only map operations under it.
    device_locks: Mutex<HashMap<DeviceId, Arc<Mutex<()>>>>,
    /// Revoked certificate serials and the synced files (`crl`, `staff`), replaced whole when
    /// the server reloads them. std locks: read or swapped, never held across work.
    revoked: RwLock<HashSet<Vec<u8>>>,
    files: RwLock<BTreeMap<String, SyncedFile>>,
    /// The key of the indicators' visitor pseudonyms, from the store.
    visitor_key: VisitorKey,
}

impl<S: HubStorage + ?Sized> std::fmt::Debug for Hub<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("actor", &self.actor.to_hex_string())
            .finish_non_exhaustive()
    }
}

impl<S: HubStorage + ?Sized> Hub<S> {
    /// The hub over `storage`; `hub_public_key` is the DER SubjectPublicKeyInfo of the hub's TLS
    /// certificate, to which its actor is bound.
    pub fn new(storage: Arc<S>, hub_public_key: &[u8]) -> Result<Hub<S>, StorageError> {
        let actor = bound_actor(hub_public_key, storage.replica()?);
        let visitor_key = storage.visitor_key()?;
        Ok(Hub {
            storage,
            actor,
            device_locks: Mutex::default(),
            revoked: RwLock::default(),
            files: RwLock::default(),
            visitor_key,
        })
    }

    pub fn storage(&self) -> &Arc<S> {
        &self.storage
    }

    /// The hub's own Automerge actor.
    pub fn actor(&self) -> &ActorId {
        &self.actor
    }

    /// Takes a newly loaded revocation list: the serials it revokes, and the file itself (PEM)
    /// to send to the buses as synced file `crl`, version = its CRL number.
    pub fn set_revocations(&self, number: u64, pem: Vec<u8>, serials: Vec<Vec<u8>>) {
        *self.revoked.write().unwrap_or_else(PoisonError::into_inner) =
            serials.into_iter().collect();
        self.set_file(SyncedFile {
            name: CRL_FILE.into(),
            version: number,
            bytes: pem,
        });
    }

    /// Takes the staff file as the buses get it ([`crate::trust::bus_staff_file`]: bus clerks
    /// only) to send as synced file `staff`; its version is the hub's
    /// counter of edits, raised whenever the content changes (kept in the store).
    pub fn set_staff_file(&self, bytes: Vec<u8>) -> Result<u64, StorageError> {
        self.set_counted_file(STAFF_FILE, bytes)
    }

    /// Takes the stop schedule to send as synced file `stops`, versioned as the staff file.
    pub fn set_stops_file(&self, bytes: Vec<u8>) -> Result<u64, StorageError> {
        self.set_counted_file(STOPS_FILE, bytes)
    }

    fn set_counted_file(&self, name: &str, bytes: Vec<u8>) -> Result<u64, StorageError> {
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        let version = self.storage.file_version(name, digest)?;
        self.set_file(SyncedFile {
            name: name.into(),
            version,
            bytes,
        });
        Ok(version)
    }

    fn set_file(&self, file: SyncedFile) {
        self.files
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(file.name.clone(), file);
    }

    pub fn is_revoked(&self, serial: &[u8]) -> bool {
        self.revoked
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(serial)
    }

    /// The synced files the bus lacks or has older versions of.
    pub(crate) fn files_for(&self, has: &[FileVersion]) -> Vec<SyncedFile> {
        self.files
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|file| {
                !has.iter()
                    .any(|known| known.name == file.name && known.version >= file.version)
            })
            .cloned()
            .collect()
    }

    fn device_lock(&self, device: &DeviceId) -> Arc<Mutex<()>> {
        self.device_locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(device.clone())
            .or_default()
            .clone()
    }

    /// Refuses an upload of a revoked device (PROTOCOL.md step 2) before anything else is looked
    /// at: keeps `body` (what the server read of it, at most the size limit) in quarantine.
    pub fn refuse_revoked(
        &self,
        device: &DeviceIdentity,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Refusal {
        let lock = self.device_lock(&device.id);
        let _serialised = lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.refuse(device, None, Refusal::revoked(), Some(body), now)
    }

    /// Receives one upload of `device` (PROTOCOL.md steps 2–9) and returns the answer's body.
    pub fn receive(
        &self,
        device: &DeviceIdentity,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>, Refusal> {
        let lock = self.device_lock(&device.id);
        let _serialised = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let span = tracing::info_span!("upload", device = %device.id, bytes = body.len());
        let _entered = span.enter();

        if self.is_revoked(&device.serial) {
            return Err(self.refuse(device, None, Refusal::revoked(), Some(body), now));
        }
        let upload = match VerifyingKey::from_bytes(&device.public_key) {
            Ok(key) => open_upload(body, &device.id, &key),
            Err(_) => Err(ProtocolError::BadSignature),
        };
        let upload = match upload {
            Ok(upload) => upload,
            Err(error) => {
                let keep = quarantined(&error).then_some(body);
                return Err(self.refuse(device, None, Refusal::from_protocol(&error), keep, now));
            }
        };
        let counter = upload.manifest.counter;
        if let Some(refusal) = duplicate_request(&upload) {
            return Err(self.refuse(device, Some(counter), refusal, None, now));
        }
        let digest: [u8; 32] = Sha256::digest(&upload.manifest_bytes).into();
        for _ in 0..ATTEMPTS {
            let state = match self.storage.device_state(&device.id) {
                Ok(state) => state,
                Err(error) => return Err(unavailable(&error)),
            };
            if let Some(refusal) = check_counter(&state, counter, &digest) {
                return Err(self.refuse(device, Some(counter), refusal, None, now));
            }
            match self.apply_upload(device, &upload, state, digest, now) {
                Ok(Step::Answered(answer)) => return Ok(answer),
                Ok(Step::Refused(refusal)) => {
                    return Err(self.refuse(device, Some(counter), refusal, Some(body), now));
                }
                Err(StorageError::Conflict) => {
                    tracing::debug!(counter, "a request changed meanwhile; applying again");
                }
                Err(error) => return Err(unavailable(&error)),
            }
        }
        Err(Refusal::unavailable())
    }

    /// Logs a refusal, keeps the body in quarantine when asked, notes the device was seen.
    fn refuse(
        &self,
        device: &DeviceIdentity,
        counter: Option<u64>,
        refusal: Refusal,
        quarantine: Option<&[u8]>,
        now: DateTime<Utc>,
    ) -> Refusal {
        tracing::warn!(
            device = %device.id,
            counter,
            code = refusal.code,
            quarantined = quarantine.is_some(),
            "upload refused: {}",
            refusal.message
        );
        let mut state = match self.storage.device_state(&device.id) {
            Ok(state) => state,
            Err(error) => return unavailable(&error),
        };
        state.last_seen_ms = Some(now.timestamp_millis());
        let commit = Commit {
            device: Some(device.id.clone()),
            state: Some(state),
            quarantine: quarantine
                .map(|body| {
                    vec![(
                        QuarantineEntry {
                            at_ms: now.timestamp_millis(),
                            code: refusal.code.to_owned(),
                            message: refusal.message.clone(),
                            counter,
                            request: None,
                            size: body.len() as u64,
                        },
                        body.to_vec(),
                    )]
                })
                .unwrap_or_default(),
            ..Commit::default()
        };
        match self.storage.commit(commit) {
            Ok(()) => refusal,
            Err(error) => unavailable(&error),
        }
    }

    /// Appends an event made at the hub (by central IT, a city clerk, the hub's rules) to a
    /// request, with the hub's own actor, and marks the request dirty for every bus that holds
    /// it: their next answer carries it. Returns the request as it now reads.
    pub fn append_event(&self, id: RequestId, event: NewEvent) -> Result<RequestView, HubError> {
        for _ in 0..ATTEMPTS {
            let stored = self
                .storage
                .load_request(&id)?
                .ok_or(HubError::NotFound(id))?;
            let mut record = RequestRecord::load(&stored.bytes)
                .map_err(|source| HubError::Corrupt { id, source })?;
            record
                .append(&self.actor, event.clone())
                .map_err(HubError::Refused)?;
            let view = record
                .view()
                .map_err(|source| HubError::Corrupt { id, source })?;
            let commit = Commit {
                requests: vec![RequestWrite {
                    id,
                    expected_version: Some(stored.version),
                    bytes: record.save(),
                }],
                indicators: vec![(id, IndicatorRow::of(&view, &self.visitor_key))],
                ..Commit::default()
            };
            match self.storage.commit(commit) {
                Ok(()) => {
                    tracing::info!(request = %id, event = event.kind.code(), "event recorded at the hub");
                    return Ok(view);
                }
                Err(StorageError::Conflict) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(HubError::Storage(StorageError::Conflict))
    }

    /// Writes the indicator row of every request the hub has, when the rows stored are of an
    /// older layout (or none were: a store from before the indicators). Run at start, before
    /// the hub serves: an upload meanwhile could have its row overwritten by an older one. A
    /// request that does not read is logged and left out. Returns the number of requests.
    pub fn index_indicators(&self) -> Result<usize, HubError> {
        if self.storage.indicators_version()? == ROW_VERSION {
            return Ok(0);
        }
        let ids = self.storage.request_ids()?;
        for chunk in ids.chunks(500) {
            let mut rows = Vec::with_capacity(chunk.len());
            for id in chunk {
                // A request that does not read is left out of the indicators, not the hub's
                // start: the error is logged, the rest is indexed.
                match self.request(*id).and_then(|record| {
                    record
                        .map(|record| record.view())
                        .transpose()
                        .map_err(|source| HubError::Corrupt { id: *id, source })
                }) {
                    Ok(Some(view)) => rows.push((*id, IndicatorRow::of(&view, &self.visitor_key))),
                    Ok(None) => {}
                    Err(HubError::Storage(error)) => return Err(HubError::Storage(error)),
                    Err(error) => {
                        tracing::error!(request = %id, "left out of the indicators: {}", error_chain(&error));
                    }
                }
            }
            self.storage.commit(Commit {
                indicators: rows,
                ..Commit::default()
            })?;
        }
        self.storage.set_indicators_version(ROW_VERSION)?;
        tracing::info!(requests = ids.len(), "indicator rows written");
        Ok(ids.len())
    }

    /// The request as the hub has it.
    pub fn request(&self, id: RequestId) -> Result<Option<RequestRecord>, HubError> {
        self.storage
            .load_request(&id)?
            .map(|stored| {
                RequestRecord::load(&stored.bytes)
                    .map_err(|source| HubError::Corrupt { id, source })
            })
            .transpose()
    }
}

enum Step {
    Answered(Vec<u8>),
    Refused(Refusal),
}

fn unavailable(error: &StorageError) -> Refusal {
    tracing::error!(error = %error_chain(error), "the hub's store failed");
    Refusal::unavailable()
}

pub(crate) use busloket_sync::error_chain;

/// PROTOCOL.md step 5.
fn check_counter(state: &DeviceState, counter: u64, digest: &[u8; 32]) -> Option<Refusal> {
    let last = state.last_counter?;
    let resend = counter == last && state.manifest_digest.as_ref() == Some(digest);
    (counter <= last && !resend).then(|| {
        Refusal::new(
            "replayed",
            409,
            format!("counter {counter} is not larger than the last accepted one, {last}"),
        )
    })
}

/// A manifest that lists one request twice is not one the protocol builds.
fn duplicate_request(upload: &VerifiedUpload) -> Option<Refusal> {
    let mut seen = HashSet::new();
    upload
        .docs
        .iter()
        .find(|doc| !seen.insert(doc.id))
        .map(|doc| {
            Refusal::new(
                "bad-encoding",
                400,
                format!("request {} is listed twice in the manifest", doc.id),
            )
        })
}

fn heads_of(hashes: &[ChangeHash]) -> Vec<protocol::Hash> {
    protocol::to_wire(hashes)
}

fn manifest_archive(upload: &VerifiedUpload, now: DateTime<Utc>) -> ArchivedManifest {
    ArchivedManifest {
        counter: upload.manifest.counter,
        received_ms: now.timestamp_millis(),
        manifest: upload.manifest_bytes.clone(),
        signature: upload.signature.clone(),
    }
}
