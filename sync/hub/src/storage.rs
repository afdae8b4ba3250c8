//! What the hub keeps, behind a small trait: the sync engine ([`crate::sync`]) is written against
//! [`HubStorage`] only, so a replicated database (PostgreSQL) can replace the embedded sled store
//! ([`SledStorage`]) without touching it.
//!
//! The contract every implementation keeps:
//! - [`HubStorage::commit`] is atomic and durable: when it returns `Ok`, everything in the
//!   [`Commit`] is on disk, and nothing of it is when it returns an error. The engine answers a
//!   bus only after its commit returned (PROTOCOL.md "Durable").
//! - Request documents are versioned: a commit names the version it read of every request it
//!   writes and fails with [`StorageError::Conflict`] when another writer got there first; the
//!   engine then reads again and redoes its work (applying changes twice is harmless). This is
//!   optimistic locking, as a `version` column would do in SQL.
//! - Writing a request marks it *dirty* for every device that holds it, except the device the
//!   commit is for: the next answer to those buses carries the change. A dirty mark carries a
//!   fresh, unique number, so the engine clears a mark only if it is still the one it sent
//!   ([`Commit::clear_dirty`]): a change that lands while an answer is in flight is sent again.
//! - Citizen data (request documents, the bodies of quarantined uploads, the indicator rows with
//!   their pseudonyms and postcodes) is sealed at rest; the bookkeeping (counters, heads, ids,
//!   times) names no citizen and is not.
//!
//! The trait is synchronous; async callers run it on `spawn_blocking`.

mod sled_storage;

use busloket_sync::at_rest::AtRestError;
use busloket_sync::protocol::Hash;
use busloket_sync::terms::{DeviceId, RequestId};
use busloket_sync::trip::TripEntry;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use self::sled_storage::SledStorage;
use crate::indicators::{IndicatorRow, VisitorKey};

/// Heads as stored: raw change hashes.
pub type Heads = Vec<Hash>;

/// Why the store could not do what was asked.
#[derive(Debug, Error)]
pub enum StorageError {
    #[error("a request changed while this commit was prepared; read it again")]
    Conflict,
    #[error("cannot open the hub's store at {path}")]
    Open {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the at-rest key does not open the hub's store at {path} (wrong key?)")]
    WrongKey { path: std::path::PathBuf },
    #[error("the hub's store failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("a sealed value of the hub's store does not open")]
    Sealed(#[from] AtRestError),
    #[error("the hub's store holds a malformed {what}")]
    Corrupt { what: &'static str },
}

/// A request document as stored: its bytes (an Automerge `save()`) and the version a commit
/// must name to replace it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRequest {
    pub version: u64,
    pub bytes: Vec<u8>,
}

/// The hub's bookkeeping per device (PROTOCOL.md "The hub's bookkeeping per device"), besides the
/// per-request parts (`confirmed`, `dirty`, which requests it holds) kept apart so that a device
/// holding thousands of requests does not rewrite them all on every upload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceState {
    /// The counter of the last accepted upload.
    pub last_counter: Option<u64>,
    /// SHA-256 of the last accepted manifest's bytes (an equal counter with this digest is a
    /// resend).
    pub manifest_digest: Option<Hash>,
    /// The `answer_seq` of the last answer sent (0: none yet).
    pub answer_seq: u64,
    /// The last answer sent, until the bus confirms it.
    pub pending: Option<PendingAnswer>,
    /// Unix milliseconds of the last upload of any kind, refused ones too.
    pub last_seen_ms: Option<i64>,
    /// Unix milliseconds of the last accepted upload.
    pub last_sync_ms: Option<i64>,
}

/// The last answer sent to a device: what it carried per request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAnswer {
    pub answer_seq: u64,
    pub docs: Vec<PendingDoc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingDoc {
    pub id: [u8; 16],
    pub heads: Heads,
    /// The dirty mark the request had when the answer was built: cleared on confirmation if it
    /// is still the same.
    pub dirty_mark: Option<u64>,
}

/// An upload or a request kept aside for central IT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineEntry {
    /// Unix milliseconds.
    pub at_ms: i64,
    /// The refusal's code (`device-revoked`, `bad-signature`, `invalid-record`…).
    pub code: String,
    /// The refusal's message; it names requests by id only, never a citizen.
    pub message: String,
    /// The upload's counter, when the manifest could be read and was signed.
    pub counter: Option<u64>,
    /// The request, for `invalid-record`.
    pub request: Option<[u8; 16]>,
    /// The size in bytes of what was kept (the body, sealed apart).
    pub size: u64,
}

/// A request document to write.
#[derive(Debug, Clone)]
pub struct RequestWrite {
    pub id: RequestId,
    /// The version read (`None`: the hub did not have the request).
    pub expected_version: Option<u64>,
    pub bytes: Vec<u8>,
}

/// A manifest with its signature, kept as the proof of who sent what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedManifest {
    pub counter: u64,
    pub received_ms: i64,
    pub manifest: Vec<u8>,
    pub signature: Vec<u8>,
}

/// Everything one step of the engine writes, atomically and durably.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    /// The device the commit is for (`None`: a change made at the hub). Its requests are not
    /// marked dirty for it.
    pub device: Option<DeviceId>,
    /// The device's new state.
    pub state: Option<DeviceState>,
    pub requests: Vec<RequestWrite>,
    /// Requests the device now holds.
    pub held: Vec<RequestId>,
    /// The device's `confirmed` heads per request; empty heads remove the entry.
    pub confirmed: Vec<(RequestId, Heads)>,
    /// Dirty marks of the device to remove if they still have these numbers.
    pub clear_dirty: Vec<(RequestId, u64)>,
    pub manifest: Option<ArchivedManifest>,
    /// Entries for the device's quarantine, each with the bytes kept aside (sealed).
    pub quarantine: Vec<(QuarantineEntry, Vec<u8>)>,
    /// Lines of the device's trip log, numbered as on the bus, following the ones stored.
    pub trip: Vec<(u64, TripEntry)>,
    /// The indicator rows of the requests written (or of requests indexed again).
    pub indicators: Vec<(RequestId, IndicatorRow)>,
}

/// The hub's storage. Every method is blocking.
pub trait HubStorage: Send + Sync + 'static {
    /// The random half of the hub's Automerge actor, drawn once per store and kept.
    fn replica(&self) -> Result<[u8; 8], StorageError>;
    fn load_request(&self, id: &RequestId) -> Result<Option<StoredRequest>, StorageError>;
    /// The device's state; the default for a device never seen.
    fn device_state(&self, device: &DeviceId) -> Result<DeviceState, StorageError>;
    /// The heads the hub knows the device has of a request (empty: none).
    fn confirmed(&self, device: &DeviceId, id: &RequestId) -> Result<Heads, StorageError>;
    /// The device's dirty requests with their marks, oldest mark first.
    fn dirty(&self, device: &DeviceId) -> Result<Vec<(RequestId, u64)>, StorageError>;
    /// Whether the device holds the request (uploaded it, or was answered it).
    fn holds(&self, device: &DeviceId, id: &RequestId) -> Result<bool, StorageError>;
    /// How many requests the device holds.
    fn held_count(&self, device: &DeviceId) -> Result<u64, StorageError>;
    /// Writes `commit` atomically and durably (see the module documentation).
    fn commit(&self, commit: Commit) -> Result<(), StorageError>;
    /// Every device the hub has seen, with its state.
    fn devices(&self) -> Result<Vec<(DeviceId, DeviceState)>, StorageError>;
    /// The number of the last trip log line stored for the device (0: none); every one before
    /// it is stored too.
    fn trip_acked(&self, device: &DeviceId) -> Result<u64, StorageError>;
    /// The device's trip log lines, in order.
    fn trip(&self, device: &DeviceId) -> Result<Vec<(u64, TripEntry)>, StorageError>;
    /// The device's quarantine entries, oldest first (without the bodies).
    fn quarantine_entries(&self, device: &DeviceId) -> Result<Vec<QuarantineEntry>, StorageError>;
    /// The archived manifest of `device` with `counter`.
    fn manifest(
        &self,
        device: &DeviceId,
        counter: u64,
    ) -> Result<Option<ArchivedManifest>, StorageError>;
    /// The version of a synced file whose content hashes to `digest`: the hub's counter of
    /// edits, raised (durably) whenever the digest differs from the last one recorded for `name`.
    fn file_version(&self, name: &str, digest: Hash) -> Result<u64, StorageError>;
    /// The key of visitor pseudonyms ([`VisitorKey`]), drawn once per store and kept sealed.
    fn visitor_key(&self) -> Result<VisitorKey, StorageError>;
    /// The indicator rows of the requests made from `from` until `until` (by the bus's clock,
    /// which also made the request's id).
    fn indicator_rows(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<IndicatorRow>, StorageError>;
    /// The layout version of the indicator rows stored (0: none indexed yet).
    fn indicators_version(&self) -> Result<u32, StorageError>;
    /// Records that every request has a row of `version` (durably).
    fn set_indicators_version(&self, version: u32) -> Result<(), StorageError>;
    /// The ids of every request the hub has.
    fn request_ids(&self) -> Result<Vec<RequestId>, StorageError>;
    /// A cheap read and write check, for `/health`.
    fn check(&self) -> Result<(), StorageError>;
}
