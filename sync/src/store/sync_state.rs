//! The bus's side of the sync state (sync/PROTOCOL.md, "What the bus does"): the outbox of
//! requests changed here since the hub last acknowledged them, the heads the hub acknowledged,
//! the upload counter, the last answer applied, the requests to ask for whole, the requests the
//! hub set aside, and the synced files.
//!
//! The invariant the node's sync client relies on: a request leaves the outbox only when the hub
//! acknowledged exactly its current heads (or set it aside as invalid). Every local write puts
//! the request in the outbox in the transaction that stores the change; changes from the hub
//! never do; [`Store::acknowledge`] compares the acknowledged heads with the `heads` tree inside
//! its own transaction, under the store's lock, so a change made after the upload keeps its
//! request in the outbox.
//!
//! Applying the hub's changes is not a read by a person, and the store writes no access-log
//! entry for it: the access log records who *looked at* citizen data (the node's handlers log
//! their reads), and the sync client only moves records between replicas.

use automerge::{AutoCommit, Automerge, Change, ChangeHash};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use super::{ChangeOrigin, Corruption, Store, StoreError, layout};
use crate::protocol::{FileVersion, OutgoingDoc, Payload, SyncedFile};
use crate::record::{RecordError, RequestRecord};
use crate::terms::RequestId;

/// What [`Store::apply_remote`] did with the hub's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteApply {
    /// The store lacked the request and made it from the payload.
    Created,
    /// The payload brought changes the store did not have.
    Updated,
    /// The store had every change already; also the answer for a purged request, whose citizen
    /// data the bus no longer keeps (nothing of the payload is stored).
    Unchanged,
    /// Some changes wait for changes the store does not have: nothing was stored. Ask the hub
    /// for the whole request (`need_whole`).
    MissingDependencies,
}

/// What one answer of the hub settles, written by [`Store::acknowledge`] in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acknowledgement {
    /// Per request, the hub's heads, which the bus now has (it applied the answer's payload).
    /// They become the acknowledged heads; a request whose own heads equal them leaves the
    /// outbox. Requests the store does not hold (never created, or purged) are skipped.
    pub acked: Vec<(RequestId, Vec<ChangeHash>)>,
    /// `missing-base`: the hub lacks the base. The acknowledged heads become empty (the next
    /// upload sends the whole document) and the request stays in (or goes back to) the outbox.
    pub reset: Vec<RequestId>,
    /// `invalid-record`: the request leaves the outbox and is remembered as set aside, for
    /// staff to see, until a later acknowledgement of it.
    pub set_aside: Vec<RequestId>,
    /// The requests the bus could not apply: replaces the previous list.
    pub need_whole: Vec<RequestId>,
    /// The answer's `answer_seq`.
    pub answer_applied: u64,
    /// Newer synced files, each replacing the stored one of its name.
    pub files: Vec<SyncedFile>,
}

/// What the next upload's manifest needs besides the requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncState {
    /// The last upload counter given out (0: none yet).
    pub last_counter: u64,
    /// The `answer_seq` of the last answer made durable (0: none yet).
    pub answer_applied: u64,
    pub need_whole: Vec<RequestId>,
    /// The synced files the store has, by name.
    pub files: Vec<FileVersion>,
    /// The requests the hub refused as `invalid-record`, in id order.
    pub set_aside: Vec<RequestId>,
}

type TxError = ConflictableTransactionError<std::convert::Infallible>;

impl Store {
    /// The requests changed here since the hub last acknowledged them, in id (creation) order.
    pub fn outbox(&self) -> Result<Vec<RequestId>, StoreError> {
        self.ids_in(&self.outbox, layout::OUTBOX)
    }

    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// The heads the hub acknowledged for `id`; empty when it acknowledged none (or was reset).
    pub fn acked_heads(&self, id: RequestId) -> Result<Vec<ChangeHash>, StoreError> {
        self.heads_in(&self.acked, id, "acknowledged heads")
    }

    /// The record's heads as stored with its last change; empty when the store does not hold
    /// its chunks (never had it, or purged it).
    pub fn current_heads(&self, id: RequestId) -> Result<Vec<ChangeHash>, StoreError> {
        self.heads_in(&self.heads, id, "heads")
    }

    /// What to upload of `id`: its changes since the acknowledged heads, the whole document when
    /// there are none. `None` when the store does not hold the record (purged, or never had it).
    /// Acknowledged heads the record does not have (they cannot be right) count as none.
    pub fn outgoing(&self, id: RequestId) -> Result<Option<OutgoingDoc>, StoreError> {
        let _guard = self.lock();
        let Some(mut loaded) = self.load_locked(id)? else {
            return Ok(None);
        };
        let mut base = self.acked_heads(id)?;
        if !base.iter().all(|head| loaded.record.has_change(head)) {
            tracing::warn!(%id, "acknowledged heads the record lacks; sending it whole");
            base.clear();
        }
        Ok(Some(OutgoingDoc::from_record(
            id,
            &mut loaded.record,
            &base,
        )))
    }

    /// Applies the hub's `payload` for `id`, durably, without putting the request in the
    /// outbox: a request the store lacks is created from it, an existing one takes its changes
    /// (summary, indexes and compaction as in [`Store::update`]).
    ///
    /// `Err(Refused)` when the changes, all present, make no valid record of `id` (another
    /// request, a broken schema): nothing is stored, and asking again would not help.
    pub fn apply_remote(
        &self,
        id: RequestId,
        payload: &Payload,
    ) -> Result<RemoteApply, StoreError> {
        let refused = |source: RecordError| StoreError::Refused { id, source };
        let changes = payload_changes(payload).map_err(refused)?;
        let _guard = self.lock();
        let Some(mut loaded) = self.load_locked(id)? else {
            return self.create_from_remote(id, changes);
        };
        let (_, old_index) = self.index_before(id, &loaded.record)?;
        let heads = loaded.record.heads();
        loaded.record.apply_changes(changes).map_err(refused)?;
        if !loaded.record.missing_dependencies().is_empty() {
            return Ok(RemoteApply::MissingDependencies);
        }
        if loaded.record.heads() == heads {
            return Ok(RemoteApply::Unchanged);
        }
        self.write_changes(id, loaded, &heads, old_index, ChangeOrigin::Hub)?;
        Ok(RemoteApply::Updated)
    }

    fn create_from_remote(
        &self,
        id: RequestId,
        changes: Vec<Change>,
    ) -> Result<RemoteApply, StoreError> {
        if let Some(summary) = self.summary(id)? {
            if summary.purged {
                return Ok(RemoteApply::Unchanged);
            }
            return Err(StoreError::Corrupt {
                id,
                what: "record".into(),
                cause: Corruption::NoChunks,
            });
        }
        let refused = |source: RecordError| StoreError::Refused { id, source };
        // Changes are gathered in an empty document first: one that lacks the request's start
        // waits there instead of failing to load.
        let mut doc = AutoCommit::new();
        doc.apply_changes(changes)
            .map_err(|error| refused(error.into()))?;
        if doc.get_heads().is_empty() || !doc.get_missing_deps(&[]).is_empty() {
            return Ok(RemoteApply::MissingDependencies);
        }
        let (mut record, view) = RequestRecord::from_document(doc).map_err(refused)?;
        let found = view.fields.id;
        if found != id {
            return Err(refused(RecordError::DifferentRequest {
                ours: id,
                theirs: found,
            }));
        }
        self.insert_locked(id, &mut record, ChangeOrigin::Hub)?;
        Ok(RemoteApply::Created)
    }

    /// Writes what one answer settles, in one transaction, flushed: see [`Acknowledgement`].
    /// `acked` is applied first, then `reset`, then `set_aside`.
    pub fn acknowledge(&self, ack: &Acknowledgement) -> Result<(), StoreError> {
        let files: Vec<(Vec<u8>, Vec<u8>)> = ack
            .files
            .iter()
            .map(|file| {
                let name = file.name.as_bytes().to_vec();
                let plaintext = layout::encode_synced_file(file.version, &file.bytes);
                let sealed = self
                    .key
                    .seal(&layout::place(layout::SYNCED_FILES, &name), &plaintext);
                (name, sealed)
            })
            .collect();
        let acked: Vec<(RequestId, Vec<u8>)> = ack
            .acked
            .iter()
            .map(|(id, heads)| (*id, layout::encode_heads(heads)))
            .collect();
        let need_whole = layout::encode_ids(&ack.need_whole);
        let _guard = self.lock();
        let trees = (
            &self.heads,
            &self.outbox,
            &self.acked,
            &self.set_aside,
            &self.meta,
            &self.synced_files,
        );
        trees
            .transaction(
                |(current, outbox, acked_tree, set_aside, meta, synced_files)| {
                    for (id, heads) in &acked {
                        let id = id.as_bytes();
                        // A request the store does not hold has nothing to acknowledge.
                        let Some(current) = current.get(id)? else {
                            continue;
                        };
                        acked_tree.insert(id, heads.as_slice())?;
                        set_aside.remove(id)?;
                        if current == heads.as_slice() {
                            outbox.remove(id)?;
                        }
                    }
                    for id in &ack.reset {
                        let id = id.as_bytes();
                        acked_tree.remove(id)?;
                        if current.get(id)?.is_some() {
                            outbox.insert(id, &[])?;
                        }
                    }
                    for id in &ack.set_aside {
                        outbox.remove(id.as_bytes())?;
                        set_aside.insert(id.as_bytes(), &[])?;
                    }
                    meta.insert(layout::NEED_WHOLE, need_whole.as_slice())?;
                    meta.insert(layout::ANSWER_APPLIED, &ack.answer_applied.to_be_bytes())?;
                    for (name, sealed) in &files {
                        synced_files.insert(name.as_slice(), sealed.as_slice())?;
                    }
                    Ok::<(), TxError>(())
                },
            )
            .map_err(storage_error)?;
        self.db.flush()?;
        Ok(())
    }

    /// The counter of the next upload: `max(last + 1, now_millis)`, with `now_millis` the
    /// current time in Unix milliseconds (the store reads no clock; the caller passes it), on
    /// disk before it is returned, so no counter is used twice, even after a crash.
    ///
    /// Why the clock: a store restored from a backup, or a reinstalled node, has an older (or no)
    /// last counter than the hub last accepted; counting on from it would make every upload
    /// `409 replayed` until it caught up, one per failed round. The time is ahead of any counter
    /// used before (one upload per millisecond at most), so the bus is past the hub's at once.
    pub fn next_upload_counter(&self, now_millis: u64) -> Result<u64, StoreError> {
        let _guard = self.lock();
        let last = self.meta_u64(layout::UPLOAD_COUNTER)?;
        let next = last.saturating_add(1).max(now_millis);
        self.meta
            .insert(layout::UPLOAD_COUNTER, &next.to_be_bytes())?;
        self.db.flush()?;
        Ok(next)
    }

    pub fn sync_state(&self) -> Result<SyncState, StoreError> {
        let need_whole = match self.meta.get(layout::NEED_WHOLE)? {
            Some(bytes) => {
                layout::decode_ids(&bytes).ok_or(StoreError::Index { tree: layout::META })?
            }
            None => Vec::new(),
        };
        let mut files = Vec::new();
        for item in self.synced_files.iter().keys() {
            let name = String::from_utf8_lossy(&item?).into_owned();
            if let Some(file) = self.synced_file(&name)? {
                files.push(FileVersion {
                    name: file.name,
                    version: file.version,
                });
            }
        }
        Ok(SyncState {
            last_counter: self.meta_u64(layout::UPLOAD_COUNTER)?,
            answer_applied: self.meta_u64(layout::ANSWER_APPLIED)?,
            need_whole,
            files,
            set_aside: self.ids_in(&self.set_aside, layout::SET_ASIDE)?,
        })
    }

    /// The synced file `name` (`crl`, `staff`) as the hub last sent it.
    pub fn synced_file(&self, name: &str) -> Result<Option<SyncedFile>, StoreError> {
        let Some(sealed) = self.synced_files.get(name.as_bytes())? else {
            return Ok(None);
        };
        let plaintext = self
            .key
            .open(
                &layout::place(layout::SYNCED_FILES, name.as_bytes()),
                &sealed,
            )
            .map_err(|_| StoreError::Index {
                tree: layout::SYNCED_FILES,
            })?;
        let (version, bytes) = layout::decode_synced_file(&plaintext).ok_or(StoreError::Index {
            tree: layout::SYNCED_FILES,
        })?;
        Ok(Some(SyncedFile {
            name: name.to_owned(),
            version,
            bytes: bytes.to_vec(),
        }))
    }

    /// Brings a store made before the sync state up to date, once: every record gets its
    /// `heads` entry and goes into the outbox (the hub has never seen it). A record that does
    /// not load is left out and logged; it could not be uploaded anyway.
    pub(super) fn migrate_to_sync_layout(&self) -> Result<(), StoreError> {
        if self.meta.contains_key(layout::SYNC_LAYOUT)? {
            return Ok(());
        }
        let _guard = self.lock();
        for key in self.summaries.iter().keys() {
            let key = key?;
            let id =
                RequestId::from_bytes(key.as_ref().try_into().map_err(|_| StoreError::Index {
                    tree: layout::SUMMARIES,
                })?);
            if self.heads.contains_key(id.as_bytes())? {
                continue;
            }
            let mut loaded = match self.load_locked(id) {
                Ok(Some(loaded)) => loaded,
                Ok(None) => continue,
                Err(error) => {
                    tracing::warn!(%id, error = %error, "record left out of the outbox");
                    continue;
                }
            };
            let heads = layout::encode_heads(&loaded.record.heads());
            (&self.heads, &self.outbox)
                .transaction(|(heads_tree, outbox)| {
                    heads_tree.insert(id.as_bytes(), heads.as_slice())?;
                    outbox.insert(id.as_bytes(), &[])?;
                    Ok::<(), TxError>(())
                })
                .map_err(storage_error)?;
        }
        self.meta.insert(layout::SYNC_LAYOUT, &[1])?;
        self.db.flush()?;
        Ok(())
    }

    fn heads_in(
        &self,
        tree: &sled::Tree,
        id: RequestId,
        what: &'static str,
    ) -> Result<Vec<ChangeHash>, StoreError> {
        match tree.get(id.as_bytes())? {
            Some(bytes) => layout::decode_heads(&bytes).ok_or(StoreError::Corrupt {
                id,
                what: what.into(),
                cause: Corruption::Malformed,
            }),
            None => Ok(Vec::new()),
        }
    }

    /// The ids a tree keyed by request id holds, in id order.
    fn ids_in(&self, tree: &sled::Tree, name: &'static str) -> Result<Vec<RequestId>, StoreError> {
        tree.iter()
            .keys()
            .map(|key| {
                let key = key?;
                let bytes = key
                    .as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Index { tree: name })?;
                Ok(RequestId::from_bytes(bytes))
            })
            .collect()
    }

    /// A counter in `meta`, 0 while it was never written.
    pub(super) fn meta_u64(&self, key: &[u8]) -> Result<u64, StoreError> {
        match self.meta.get(key)? {
            Some(bytes) => {
                layout::decode_u64(&bytes).ok_or(StoreError::Index { tree: layout::META })
            }
            None => Ok(0),
        }
    }
}

/// The payload's changes, parsed strictly: Automerge's `load_incremental` skips bytes it cannot
/// read, which would make a damaged payload look like one that brings nothing.
fn payload_changes(payload: &Payload) -> Result<Vec<Change>, RecordError> {
    match payload {
        Payload::Document(bytes) => Ok(Automerge::load(bytes)?.get_changes(&[])),
        Payload::Changes(chunks) => chunks
            .iter()
            .map(|bytes| {
                Change::from_bytes(bytes.clone())
                    .map_err(|error| RecordError::Automerge(Box::new(error.into())))
            })
            .collect(),
    }
}

pub(super) fn storage_error(error: TransactionError<std::convert::Infallible>) -> StoreError {
    match error {
        TransactionError::Storage(error) => StoreError::Storage(error),
        TransactionError::Abort(never) => match never {},
    }
}
