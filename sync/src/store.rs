//! The store of request records on a node (and the embedded hub): one sled database, everything
//! that names a citizen sealed with the at-rest key, every write on disk before the call returns.
//!
//! Layout (after automerge-repo's storage, see `research/sync-crdt.md` §3):
//! - `chunks`: request id (16 B) ‖ kind (0 snapshot, 1 incremental) ‖ sequence (u64 BE) → sealed
//!   Automerge bytes. A record loads as its snapshot followed by its incrementals in order. When
//!   the incrementals weigh as much as the snapshot (or are more than 16), an update writes a new
//!   snapshot and deletes the chunks it supersedes in the same transaction.
//! - `summaries`: request id → sealed JSON [`RequestSummary`]. A purged request keeps a redacted
//!   one (no name, no national number, `purged: true`).
//! - `by_day` (day ‖ id), `by_status` (status code ‖ 0 ‖ id), `by_stop` (stop ‖ 0 ‖ day ‖ id):
//!   indexes with empty values. They hold no personal data and are not sealed.
//! - `queue_numbers`: day → the last ticket number given out that day (u32 BE).
//! - The sync state (see `store/sync_state.rs`), none of it personal data, not sealed unless
//!   said: `heads`: id → the record's current heads (sorted, n × 32 B); `outbox`: id → empty,
//!   changed here since the hub acknowledged it; `acked`: id → the heads the hub acknowledged
//!   (sorted, n × 32 B); `set_aside`: id → empty, refused by the hub as `invalid-record`;
//!   `synced_files`: name → sealed version (u64 BE) ‖ bytes (the staff list names clerks).
//! - `meta`: `key-check` → a sealed constant, so a wrong key is refused before anything is
//!   written; `sync-layout` → present once every record has its `heads` entry (older stores are
//!   brought up to date at open, every record into the outbox); `upload-counter`,
//!   `answer-applied` → u64 BE; `need-whole` → n × 16 B ids.
//! - `access_log`, `access_log_head`: see [`crate::access_log`].
//!
//! All writes for one record change (chunks, summary, index moves, its heads and, for a local
//! change, its place in the outbox) happen in one sled transaction across the trees, followed by
//! `flush`: when `insert_new` or `update` returns, the request is on disk and the caller may tell
//! the citizen "saved". The hub's changes ([`Store::apply_remote`]) take the same path without
//! the outbox; an answer's bookkeeping ([`Store::acknowledge`]) is one transaction of its own; a
//! purge ([`Store::purge_acknowledged`], `store/retention.rs`) is one per request. Every sealed
//! value is bound to its tree and key, so a value copied elsewhere does not open.
//!
//! The store writes no access-log entry for loading or syncing a record: reads by people are
//! logged by the node, where the person is known. It writes one for each purge.
//!
//! The store is synchronous. Async callers run it on `spawn_blocking`.

mod layout;
mod retention;
mod sync_state;
mod trip;

use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use automerge::ChangeHash;
use chrono::NaiveDate;
use sled::transaction::{TransactionError, Transactional};
use thiserror::Error;

pub use self::layout::RequestSummary;
use self::layout::{ChunkKind, ChunkSizes, IndexKeys};
pub use self::sync_state::{Acknowledgement, RemoteApply, SyncState};
use crate::access_log::{AccessLog, AccessLogError};
use crate::at_rest::{AtRestError, AtRestKey};
use crate::record::{RecordError, RequestRecord, Status};
use crate::terms::{RequestId, StopId};

/// sled's page cache. Its default (1 GiB) does not fit a bus node's memory budget; chunks are
/// small and records are read one at a time, so a small cache costs little.
const CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// The longest pause of `open_db`'s backoff (5 ms doubling: about 1.3 s in all).
const LOCK_WAIT_LAST_PAUSE: Duration = Duration::from_millis(640);

/// Why the store could not do what was asked.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot create the store directory {path}")]
    Directory {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot open the store at {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("the store at {path} is in use by another process")]
    InUse { path: PathBuf },
    #[error(
        "the key file {key} is inside the store directory {dir}; keep the key apart from the data"
    )]
    KeyInsideStore { key: PathBuf, dir: PathBuf },
    #[error("cannot use the at-rest key")]
    Key(#[from] AtRestError),
    #[error("the at-rest key does not open the store at {path} (wrong key?)")]
    WrongKey { path: PathBuf },
    #[error("the store at {path} holds data but no key check: it was not made by busloket")]
    Unrecognised { path: PathBuf },
    #[error("the store's storage failed")]
    Storage(#[from] sled::Error),
    #[error("the index `{tree}` holds a malformed key")]
    Index { tree: &'static str },
    #[error("request {id} already exists")]
    AlreadyExists { id: RequestId },
    #[error("request {id} does not exist")]
    NotFound { id: RequestId },
    #[error("the stored {what} of request {id} is unreadable")]
    Corrupt {
        id: RequestId,
        what: String,
        #[source]
        cause: Corruption,
    },
    #[error("the record to store is invalid")]
    InvalidRecord {
        #[source]
        source: RecordError,
    },
    #[error("the change to request {id} was refused")]
    Refused {
        id: RequestId,
        #[source]
        source: RecordError,
    },
    #[error("the access log failed")]
    AccessLog(#[from] AccessLogError),
    #[error("trip log entry {number} is unreadable")]
    TripEntry { number: u64 },
}

/// What is wrong with a stored value.
#[derive(Debug, Error)]
pub enum Corruption {
    #[error(transparent)]
    Sealed(#[from] AtRestError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Summary(#[from] serde_json::Error),
    #[error("{0} changes it depends on are missing")]
    MissingChanges(usize),
    #[error("a chunk key is malformed")]
    ChunkKey,
    #[error("the request has a summary but no chunks, and was not purged")]
    NoChunks,
    #[error("the stored bytes are malformed")]
    Malformed,
}

/// The store. Share it behind an `Arc`.
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    key: AtRestKey,
    chunks: sled::Tree,
    summaries: sled::Tree,
    by_day: sled::Tree,
    by_status: sled::Tree,
    by_stop: sled::Tree,
    queue_numbers: sled::Tree,
    meta: sled::Tree,
    /// Request id → its current heads (sorted, n × 32 B), written with every record change.
    heads: sled::Tree,
    /// Request id → empty: changed here since the hub last acknowledged it.
    outbox: sled::Tree,
    /// Request id → the heads the hub acknowledged (sorted, n × 32 B).
    acked: sled::Tree,
    /// Request id → empty: refused by the hub as `invalid-record`.
    set_aside: sled::Tree,
    /// File name → sealed version ‖ bytes.
    synced_files: sled::Tree,
    /// Trip log entry number → sealed entry.
    trip: sled::Tree,
    access_log: AccessLog,
    /// Serialises every read-modify-write and every multi-key read of records, so a reader
    /// never sees half a compaction. A `std` mutex: the store is synchronous and nothing
    /// `.await`s while it is held.
    lock: Mutex<()>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A record as loaded, with what an update needs to know about its chunks.
struct Loaded {
    record: RequestRecord,
    chunk_keys: Vec<sled::IVec>,
    sizes: ChunkSizes,
    next_seq: u64,
}

/// Everything one record change writes, applied in one transaction.
struct Write {
    id: RequestId,
    put_chunks: Vec<(Vec<u8>, Vec<u8>)>,
    delete_chunks: Vec<sled::IVec>,
    sealed_summary: Vec<u8>,
    old_index: Vec<IndexKeys>,
    new_index: IndexKeys,
    /// The record's heads after the change (encoded); `None` when its chunks go (a purge).
    heads: Option<Vec<u8>>,
    /// Where the change came from: a local change goes into the outbox, the hub's does not.
    origin: ChangeOrigin,
}

/// Who made the changes a write stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChangeOrigin {
    /// This node: the hub does not have them yet.
    Local,
    /// The hub's answer: the outbox is left as it is.
    Hub,
    /// No change to the record: its citizen data is deleted, and its sync state with it.
    Purge,
}

impl Store {
    /// Opens (or creates, mode 0700) the store in `dir` with `key`. Refuses a key that does not
    /// open an existing store, before writing anything.
    pub fn open(dir: &Path, key: AtRestKey) -> Result<Store, StoreError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| StoreError::Directory {
                path: dir.to_owned(),
                source,
            })?;
        let db = open_db(dir)?;
        check_key(&db, &key, dir)?;
        let store = Store {
            chunks: db.open_tree(layout::CHUNKS)?,
            summaries: db.open_tree(layout::SUMMARIES)?,
            by_day: db.open_tree(layout::BY_DAY)?,
            by_status: db.open_tree(layout::BY_STATUS)?,
            by_stop: db.open_tree(layout::BY_STOP)?,
            queue_numbers: db.open_tree(layout::QUEUE_NUMBERS)?,
            meta: db.open_tree(layout::META)?,
            heads: db.open_tree(layout::HEADS)?,
            outbox: db.open_tree(layout::OUTBOX)?,
            acked: db.open_tree(layout::ACKED)?,
            set_aside: db.open_tree(layout::SET_ASIDE)?,
            synced_files: db.open_tree(layout::SYNCED_FILES)?,
            trip: db.open_tree(layout::TRIP)?,
            access_log: AccessLog::open(&db, key.clone())?,
            db,
            key,
            lock: Mutex::new(()),
            path: dir.to_owned(),
        };
        store.migrate_to_sync_layout()?;
        Ok(store)
    }

    /// Opens the store with the key in `key_path`, which must not lie inside `dir`: the key is
    /// never stored beside the data.
    pub fn open_with_key_file(dir: &Path, key_path: &Path) -> Result<Store, StoreError> {
        if key_inside_dir(dir, key_path) {
            return Err(StoreError::KeyInsideStore {
                key: key_path.to_owned(),
                dir: dir.to_owned(),
            });
        }
        Store::open(dir, AtRestKey::load_file(key_path)?)
    }

    pub fn access_log(&self) -> &AccessLog {
        &self.access_log
    }

    /// Stores a new record (as one snapshot) and puts it in the outbox. Refuses an id the store
    /// already has (a purged one too).
    pub fn insert_new(&self, record: &mut RequestRecord) -> Result<RequestSummary, StoreError> {
        let id = record
            .id()
            .map_err(|source| StoreError::InvalidRecord { source })?;
        let _guard = self.lock();
        self.insert_locked(id, record, ChangeOrigin::Local)
    }

    /// Loads the record, lets `f` change it, and stores the new changes (or a new snapshot), the
    /// summary, the index moves, the new heads, and the request in the outbox. Nothing is written
    /// when `f` fails or changes nothing. `f` runs under the store's lock: it must not call the
    /// store.
    pub fn update<T>(
        &self,
        id: RequestId,
        f: impl FnOnce(&mut RequestRecord) -> Result<T, RecordError>,
    ) -> Result<(T, RequestSummary), StoreError> {
        let _guard = self.lock();
        let mut loaded = self.load_locked(id)?.ok_or(StoreError::NotFound { id })?;
        let (old_summary, old_index) = self.index_before(id, &loaded.record)?;
        let heads = loaded.record.heads();
        let result = f(&mut loaded.record).map_err(|source| StoreError::Refused { id, source })?;
        if loaded.record.heads() == heads {
            return Ok((result, old_summary));
        }
        let summary = self.write_changes(id, loaded, &heads, old_index, ChangeOrigin::Local)?;
        Ok((result, summary))
    }

    /// The summary of the record as loaded, and the index keys to remove before the record's
    /// new keys are written.
    fn index_before(
        &self,
        id: RequestId,
        record: &RequestRecord,
    ) -> Result<(RequestSummary, Vec<IndexKeys>), StoreError> {
        let corrupt = |cause: RecordError| StoreError::Corrupt {
            id,
            what: "record".into(),
            cause: cause.into(),
        };
        let old_summary = RequestSummary::of(&record.view().map_err(corrupt)?);
        // The index keys on disk follow the stored summary; a newer program may fold the same
        // events differently, so both its keys and the recomputed ones are removed.
        let mut old_index = vec![IndexKeys::of(&old_summary)];
        if let Ok(Some(stored)) = self.summary(id) {
            old_index.push(IndexKeys::of(&stored));
        }
        Ok((old_summary, old_index))
    }

    /// Stores a new record as one snapshot, under the lock.
    fn insert_locked(
        &self,
        id: RequestId,
        record: &mut RequestRecord,
        origin: ChangeOrigin,
    ) -> Result<RequestSummary, StoreError> {
        let view = record
            .view()
            .map_err(|source| StoreError::Refused { id, source })?;
        let summary = RequestSummary::of(&view);
        let snapshot = record.save();
        if self.summaries.contains_key(id.as_bytes())?
            || self.chunks.scan_prefix(id.as_bytes()).next().is_some()
        {
            return Err(StoreError::AlreadyExists { id });
        }
        let chunk_key = layout::chunk_key(id, ChunkKind::Snapshot, 0).to_vec();
        let sealed_chunk = self
            .key
            .seal(&layout::place(layout::CHUNKS, &chunk_key), &snapshot);
        self.commit(Write {
            id,
            put_chunks: vec![(chunk_key, sealed_chunk)],
            delete_chunks: Vec::new(),
            sealed_summary: self.seal_summary(&summary),
            old_index: Vec::new(),
            new_index: IndexKeys::of(&summary),
            heads: Some(layout::encode_heads(&record.heads())),
            origin,
        })?;
        Ok(summary)
    }

    /// Stores the changes `loaded.record` has beyond `heads` (or a new snapshot), its summary,
    /// index moves and new heads, under the lock. Refuses a record that no longer reads.
    fn write_changes(
        &self,
        id: RequestId,
        loaded: Loaded,
        heads: &[ChangeHash],
        old_index: Vec<IndexKeys>,
        origin: ChangeOrigin,
    ) -> Result<RequestSummary, StoreError> {
        let Loaded {
            mut record,
            chunk_keys,
            sizes,
            next_seq,
        } = loaded;
        let view = record
            .view()
            .map_err(|source| StoreError::Refused { id, source })?;
        if view.fields.id != id {
            let source = RecordError::DifferentRequest {
                ours: id,
                theirs: view.fields.id,
            };
            return Err(StoreError::Refused { id, source });
        }
        let summary = RequestSummary::of(&view);
        let delta = record.save_after(heads);
        let incremental_key = layout::chunk_key(id, ChunkKind::Incremental, next_seq).to_vec();
        let sealed_delta = self
            .key
            .seal(&layout::place(layout::CHUNKS, &incremental_key), &delta);
        let (put_chunks, delete_chunks) = if sizes.should_compact(sealed_delta.len()) {
            let snapshot_key = layout::chunk_key(id, ChunkKind::Snapshot, next_seq).to_vec();
            let sealed = self.key.seal(
                &layout::place(layout::CHUNKS, &snapshot_key),
                &record.save(),
            );
            tracing::debug!(%id, superseded = chunk_keys.len(), "compacting request record");
            (vec![(snapshot_key, sealed)], chunk_keys)
        } else {
            (vec![(incremental_key, sealed_delta)], Vec::new())
        };
        self.commit(Write {
            id,
            put_chunks,
            delete_chunks,
            sealed_summary: self.seal_summary(&summary),
            old_index,
            new_index: IndexKeys::of(&summary),
            heads: Some(layout::encode_heads(&record.heads())),
            origin,
        })?;
        Ok(summary)
    }

    /// The record, `None` when the store does not have it or purged it (its summary, marked
    /// `purged`, tells the two apart).
    pub fn load(&self, id: RequestId) -> Result<Option<RequestRecord>, StoreError> {
        let _guard = self.lock();
        Ok(self.load_locked(id)?.map(|loaded| loaded.record))
    }

    pub fn summary(&self, id: RequestId) -> Result<Option<RequestSummary>, StoreError> {
        let Some(sealed) = self.summaries.get(id.as_bytes())? else {
            return Ok(None);
        };
        let corrupt = |cause: Corruption| StoreError::Corrupt {
            id,
            what: "summary".into(),
            cause,
        };
        let json = self
            .key
            .open(&layout::place(layout::SUMMARIES, id.as_bytes()), &sealed)
            .map_err(|error| corrupt(error.into()))?;
        serde_json::from_slice(&json)
            .map(Some)
            .map_err(|error| corrupt(error.into()))
    }

    /// The requests made on `day` (UTC), by creation time.
    pub fn summaries_by_day(&self, day: NaiveDate) -> Result<Vec<RequestSummary>, StoreError> {
        self.summaries_under(&self.by_day, layout::BY_DAY, &layout::day_key(day))
    }

    /// The requests made at `stop` on `day` (UTC), by creation time.
    pub fn summaries_by_stop(
        &self,
        stop: &StopId,
        day: NaiveDate,
    ) -> Result<Vec<RequestSummary>, StoreError> {
        self.summaries_under(
            &self.by_stop,
            layout::BY_STOP,
            &layout::stop_day_prefix(stop, day),
        )
    }

    /// The ids of the requests with `status`, in id (creation) order.
    pub fn ids_by_status(&self, status: Status) -> Result<Vec<RequestId>, StoreError> {
        let _guard = self.lock();
        self.ids_under(
            &self.by_status,
            layout::BY_STATUS,
            &layout::status_prefix(status),
        )
    }

    /// How many requests the store holds.
    pub fn count(&self) -> usize {
        self.summaries.len()
    }

    /// The next ticket number of `day`, starting at 1; on disk before it is returned, so no
    /// number is given out twice, even after a crash.
    pub fn next_queue_number(&self, day: NaiveDate) -> Result<u32, StoreError> {
        let _guard = self.lock();
        let key = layout::day_key(day);
        let last = match self.queue_numbers.get(&key)? {
            Some(bytes) => {
                u32::from_be_bytes(bytes.as_ref().try_into().map_err(|_| StoreError::Index {
                    tree: layout::QUEUE_NUMBERS,
                })?)
            }
            None => 0,
        };
        let next = last + 1;
        self.queue_numbers.insert(key, &next.to_be_bytes())?;
        self.db.flush()?;
        Ok(next)
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // The mutex guards no data of its own and sled's state stays consistent through a panic
        // (transactions), so a poisoned lock is safe to take over.
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn seal_summary(&self, summary: &RequestSummary) -> Vec<u8> {
        let json = serde_json::to_vec(summary).unwrap_or_default();
        self.key.seal(
            &layout::place(layout::SUMMARIES, summary.id.as_bytes()),
            &json,
        )
    }

    fn load_locked(&self, id: RequestId) -> Result<Option<Loaded>, StoreError> {
        let corrupt = |what: String, cause: Corruption| StoreError::Corrupt { id, what, cause };
        let mut record: Option<RequestRecord> = None;
        let mut chunk_keys = Vec::new();
        let mut sizes = ChunkSizes::default();
        let mut next_seq = 0;
        for item in self.chunks.scan_prefix(id.as_bytes()) {
            let (key, sealed) = item?;
            let (kind, seq) = layout::parse_chunk_key(&key)
                .ok_or(corrupt("chunk key".into(), Corruption::ChunkKey))?;
            let what = || format!("chunk {seq}");
            let bytes = self
                .key
                .open(&layout::place(layout::CHUNKS, &key), &sealed)
                .map_err(|error| corrupt(what(), error.into()))?;
            match record.as_mut() {
                None => {
                    record = Some(
                        RequestRecord::load(&bytes)
                            .map_err(|error| corrupt(what(), error.into()))?,
                    )
                }
                Some(record) => record
                    .load_incremental(&bytes)
                    .map_err(|error| corrupt(what(), error.into()))?,
            }
            match kind {
                ChunkKind::Snapshot => sizes.snapshot_bytes += sealed.len(),
                ChunkKind::Incremental => {
                    sizes.incremental_bytes += sealed.len();
                    sizes.incrementals += 1;
                }
            }
            next_seq = next_seq.max(seq + 1);
            chunk_keys.push(key);
        }
        let Some(mut record) = record else {
            return Ok(None);
        };
        let missing = record.missing_dependencies();
        if !missing.is_empty() {
            return Err(corrupt(
                "chunks".into(),
                Corruption::MissingChanges(missing.len()),
            ));
        }
        Ok(Some(Loaded {
            record,
            chunk_keys,
            sizes,
            next_seq,
        }))
    }

    fn ids_under(
        &self,
        index: &sled::Tree,
        tree: &'static str,
        prefix: &[u8],
    ) -> Result<Vec<RequestId>, StoreError> {
        let mut ids = Vec::new();
        for item in index.scan_prefix(prefix) {
            let (key, _) = item?;
            ids.push(layout::id_from_index_key(&key).ok_or(StoreError::Index { tree })?);
        }
        Ok(ids)
    }

    fn summaries_under(
        &self,
        index: &sled::Tree,
        tree: &'static str,
        prefix: &[u8],
    ) -> Result<Vec<RequestSummary>, StoreError> {
        let ids = {
            let _guard = self.lock();
            self.ids_under(index, tree, prefix)?
        };
        let mut summaries = Vec::with_capacity(ids.len());
        for id in ids {
            summaries.extend(self.summary(id)?);
        }
        summaries.sort_by_key(|summary| (summary.created_at, summary.id));
        Ok(summaries)
    }

    /// Applies one record change in one transaction across the trees, then flushes.
    fn commit(&self, write: Write) -> Result<(), StoreError> {
        let trees = (
            &self.chunks,
            &self.summaries,
            &self.by_day,
            &self.by_status,
            &self.by_stop,
            &self.heads,
            &self.outbox,
            &self.acked,
        );
        trees
            .transaction(
                |(chunks, summaries, by_day, by_status, by_stop, heads, outbox, acked)| {
                    for key in &write.delete_chunks {
                        chunks.remove(key)?;
                    }
                    for (key, value) in &write.put_chunks {
                        chunks.insert(key.as_slice(), value.as_slice())?;
                    }
                    summaries.insert(write.id.as_bytes(), write.sealed_summary.as_slice())?;
                    for old in &write.old_index {
                        by_day.remove(old.by_day.as_slice())?;
                        by_status.remove(old.by_status.as_slice())?;
                        if let Some(key) = &old.by_stop {
                            by_stop.remove(key.as_slice())?;
                        }
                    }
                    let new = &write.new_index;
                    by_day.insert(new.by_day.as_slice(), &[])?;
                    by_status.insert(new.by_status.as_slice(), &[])?;
                    if let Some(key) = &new.by_stop {
                        by_stop.insert(key.as_slice(), &[])?;
                    }
                    let id = write.id.as_bytes();
                    match &write.heads {
                        Some(encoded) => heads.insert(id, encoded.as_slice())?,
                        None => heads.remove(id)?,
                    };
                    match write.origin {
                        ChangeOrigin::Local => {
                            outbox.insert(id, &[])?;
                        }
                        ChangeOrigin::Hub => {}
                        ChangeOrigin::Purge => {
                            acked.remove(id)?;
                        }
                    }
                    Ok::<
                        (),
                        sled::transaction::ConflictableTransactionError<std::convert::Infallible>,
                    >(())
                },
            )
            .map_err(|error| match error {
                TransactionError::Storage(error) => StoreError::Storage(error),
                TransactionError::Abort(never) => match never {},
            })?;
        self.db.flush()?;
        Ok(())
    }
}

/// Opens the sled database, waiting a little for a lock that is being released.
///
/// sled 0.34 releases its file lock lazily: after the last handle is dropped its IO threads may
/// hold the lock for some milliseconds (spacejam/sled#1234), and it offers nothing to wait on.
/// So a reopen right after a close (a restart, a test) retries with a bounded backoff; a store
/// another live process holds stays locked past the budget and gets a clear error.
fn open_db(dir: &Path) -> Result<sled::Db, StoreError> {
    let config = sled::Config::new().path(dir).cache_capacity(CACHE_BYTES);
    let mut pause = Duration::from_millis(5);
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(error)) if error.to_string().contains("could not acquire lock") => {
                if pause > LOCK_WAIT_LAST_PAUSE {
                    return Err(StoreError::InUse {
                        path: dir.to_owned(),
                    });
                }
                std::thread::sleep(pause);
                pause *= 2;
            }
            Err(source) => {
                return Err(StoreError::Open {
                    path: dir.to_owned(),
                    source,
                });
            }
        }
    }
}

/// Checks the key against the store's key check, or writes the check into a new, empty store.
fn check_key(db: &sled::Db, key: &AtRestKey, dir: &Path) -> Result<(), StoreError> {
    let place = layout::place(layout::META, layout::KEY_CHECK);
    let existing = db.tree_names();
    let meta = db.open_tree(layout::META)?;
    if let Some(sealed) = meta.get(layout::KEY_CHECK)? {
        return match key.open(&place, &sealed) {
            Ok(plaintext) if plaintext == layout::KEY_CHECK_PLAINTEXT => Ok(()),
            _ => Err(StoreError::WrongKey {
                path: dir.to_owned(),
            }),
        };
    }
    for name in existing {
        if !db.open_tree(&name)?.is_empty() {
            return Err(StoreError::Unrecognised {
                path: dir.to_owned(),
            });
        }
    }
    meta.insert(
        layout::KEY_CHECK,
        key.seal(&place, layout::KEY_CHECK_PLAINTEXT),
    )?;
    db.flush()?;
    Ok(())
}

/// Whether `key_path` lies inside `dir`, symbolic links resolved where the paths exist.
fn key_inside_dir(dir: &Path, key_path: &Path) -> bool {
    let resolve = |path: &Path| {
        path.canonicalize()
            .or_else(|_| std::path::absolute(path))
            .unwrap_or_else(|_| path.to_owned())
    };
    // Where the key's bytes live: through a link when the file exists, else beside its parent.
    let key = match (
        key_path.canonicalize(),
        key_path.parent(),
        key_path.file_name(),
    ) {
        (Ok(resolved), _, _) => resolved,
        (Err(_), Some(parent), Some(name)) if !parent.as_os_str().is_empty() => {
            resolve(parent).join(name)
        }
        _ => resolve(key_path),
    };
    key.starts_with(resolve(dir))
}
