//! One sync round on the bus's side (`sync/PROTOCOL.md`, "What the bus does"), split around the
//! network so that it is tested without one: [`prepare_upload`] takes the next counter and a
//! batch of the outbox and signs the upload; [`settle`] applies the hub's answer and writes what
//! it settles in one acknowledgement.
//!
//! Both are synchronous store work: the loop runs them on `spawn_blocking`.

use automerge::ChangeHash;
use busloket_sync::protocol::{
    self, Answer, BATCH_BYTES, FileVersion, MAX_TRIP_LINES, OutgoingDoc, TripLine, UploadHeader,
    build_upload,
};
use busloket_sync::record::RecordError;
use busloket_sync::store::{Acknowledgement, RemoteApply, Store, StoreError};
use busloket_sync::terms::{DeviceId, RequestId};
use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use serde::Serialize;

/// An upload ready to post.
#[derive(Debug)]
pub struct PreparedUpload {
    pub counter: u64,
    /// The compressed, signed upload.
    pub body: Vec<u8>,
    /// The requests it carries.
    pub sent: Vec<RequestId>,
    /// Outbox requests of which the hub already has everything: acknowledged as they are, with
    /// the answer, without a payload.
    pub already_acknowledged: Vec<(RequestId, Vec<ChangeHash>)>,
    /// The requests asked for whole.
    pub need_whole: Vec<RequestId>,
    /// Outbox requests left for a later upload (the batch was full).
    pub left_for_later: usize,
    /// Trip log lines may be left for a later upload (this one carried the most it may).
    pub trip_left: bool,
}

/// The next batch of the outbox.
#[derive(Debug, Default)]
pub struct Batch {
    /// The requests to upload, in outbox order.
    pub docs: Vec<OutgoingDoc>,
    /// Outbox requests of which the hub already has everything, with their heads.
    pub already_acknowledged: Vec<(RequestId, Vec<ChangeHash>)>,
    /// Outbox requests left for a later upload.
    pub left_for_later: usize,
}

/// Picks the next batch from the outbox, in order, until the payloads reach `batch_bytes`
/// ([`BATCH_BYTES`] in service); a request is never split, and one larger than a batch goes
/// alone.
pub fn next_batch(store: &Store, batch_bytes: usize) -> Result<Batch, StoreError> {
    let outbox = store.outbox()?;
    let mut batch = Batch::default();
    let mut size = 0;
    for (index, id) in outbox.iter().enumerate() {
        // `None`: the store no longer holds the record (purged); nothing to send.
        let Some(doc) = store.outgoing(*id)? else {
            continue;
        };
        if doc.is_empty() {
            batch.already_acknowledged.push((doc.id, doc.heads));
            continue;
        }
        if !batch.docs.is_empty() && size + doc.size() > batch_bytes {
            batch.left_for_later = outbox.len() - index;
            return Ok(batch);
        }
        size += doc.size();
        batch.docs.push(doc);
    }
    Ok(batch)
}

/// Takes the next upload counter (durably), a batch of the outbox and the sync state, and
/// builds and signs the upload.
pub fn prepare_upload(
    store: &Store,
    key: &SigningKey,
    device: &DeviceId,
    now: DateTime<Utc>,
    batch_bytes: usize,
) -> Result<PreparedUpload, StoreError> {
    let Batch {
        docs: batch,
        already_acknowledged,
        left_for_later,
    } = next_batch(store, batch_bytes)?;
    let state = store.sync_state()?;
    let now_millis = u64::try_from(now.timestamp_millis()).unwrap_or(0);
    let counter = store.next_upload_counter(now_millis)?;
    let trip: Vec<TripLine> = store
        .trip_since(store.trip_acknowledged()?, MAX_TRIP_LINES)?
        .into_iter()
        .map(|(number, entry)| TripLine { number, entry })
        .collect();
    let trip_left = trip.len() == MAX_TRIP_LINES;
    let header = UploadHeader {
        device: device.clone(),
        counter,
        created_at: now,
        answer_applied: state.answer_applied,
        need_whole: state.need_whole.clone(),
        files: state.files,
        trip,
    };
    let sent = batch.iter().map(|doc| doc.id).collect();
    Ok(PreparedUpload {
        counter,
        body: build_upload(key, &header, batch),
        sent,
        already_acknowledged,
        need_whole: state.need_whole,
        left_for_later,
        trip_left,
    })
}

/// A request the hub did not take, as staff see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub request: RequestId,
    pub code: String,
    pub message: String,
}

/// What an answer brought and settled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Settled {
    /// Requests the hub sent that the bus did not have.
    pub created: usize,
    /// Requests the hub's changes updated.
    pub updated: usize,
    /// Requests acknowledged (their heads are the hub's now).
    pub acknowledged: usize,
    /// Requests the hub refused, with its codes; and hub payloads the store refused.
    pub refused: Vec<Refusal>,
    /// Requests to ask for whole next time.
    pub need_whole: usize,
    /// The synced files the answer carried (name and version; the bytes are in the store).
    pub files: Vec<FileVersion>,
    /// The hub has more for the bus.
    pub more: bool,
}

/// Applies every payload of `answer` (each durable as it is applied), then writes in one
/// acknowledgement the new acknowledged heads, the resets and set-asides, the requests to ask
/// for whole, the synced files and `answer_applied`.
pub fn settle(
    store: &Store,
    prepared: &PreparedUpload,
    answer: Answer,
) -> Result<Settled, StoreError> {
    let trip_acked = answer.trip_acked;
    let mut settled = Settled {
        more: answer.more,
        files: answer
            .files
            .iter()
            .map(|file| FileVersion {
                name: file.name.clone(),
                version: file.version,
            })
            .collect(),
        ..Settled::default()
    };
    let mut acknowledgement = Acknowledgement {
        acked: prepared.already_acknowledged.clone(),
        answer_applied: answer.answer_seq,
        files: answer.files,
        ..Acknowledgement::default()
    };
    let mut answered = Vec::with_capacity(answer.docs.len());
    for doc in answer.docs {
        let id = RequestId::from_bytes(doc.id);
        answered.push(id);
        let heads = protocol::from_wire(&doc.heads);
        if let Some(payload) = &doc.payload {
            match store.apply_remote(id, payload) {
                Ok(RemoteApply::Created) => settled.created += 1,
                Ok(RemoteApply::Updated) => settled.updated += 1,
                Ok(RemoteApply::Unchanged) => {}
                Ok(RemoteApply::MissingDependencies) => {
                    acknowledgement.need_whole.push(id);
                    continue;
                }
                // The hub's changes make no valid record here: keep what the bus has, do not
                // take the hub's heads, show it, and ask for the request whole, so the hub does
                // not count it as delivered. The error's text may hold a field's value (a
                // citizen's): only its kind is logged and shown.
                Err(StoreError::Refused { source, .. }) => {
                    let kind = record_error_kind(&source);
                    tracing::warn!(%id, kind, "a request from the hub does not apply");
                    settled.refused.push(Refusal {
                        request: id,
                        code: "not-applied".into(),
                        message: format!("the hub's changes make no valid record here ({kind})"),
                    });
                    acknowledgement.need_whole.push(id);
                    continue;
                }
                Err(error) => return Err(error),
            }
        }
        acknowledgement.acked.push((id, heads));
    }
    // Requests asked for whole that the answer did not bring are asked for again.
    for id in &prepared.need_whole {
        if !answered.contains(id) && !acknowledgement.need_whole.contains(id) {
            acknowledgement.need_whole.push(*id);
        }
    }
    for refusal in answer.refused {
        let id = RequestId::from_bytes(refusal.id);
        match refusal.code.as_str() {
            "missing-base" => acknowledgement.reset.push(id),
            "invalid-record" => acknowledgement.set_aside.push(id),
            other => tracing::warn!(%id, code = other, "the hub refused a request"),
        }
        // A refused request keeps the heads it had: it is not acknowledged by this answer.
        acknowledgement.acked.retain(|(acked, _)| *acked != id);
        settled.refused.push(Refusal {
            request: id,
            code: refusal.code,
            message: refusal.message,
        });
    }
    settled.acknowledged = acknowledgement.acked.len();
    settled.need_whole = acknowledgement.need_whole.len();
    store.acknowledge(&acknowledgement)?;
    store.acknowledge_trip(trip_acked)?;
    Ok(settled)
}

/// The kind of a record error, without its text (which may hold a field's value).
fn record_error_kind(error: &RecordError) -> &'static str {
    match error {
        RecordError::Automerge(_) => "automerge",
        RecordError::UnsupportedSchema { .. } => "unsupported-schema",
        RecordError::Missing { .. } => "missing-field",
        RecordError::Invalid { .. } => "invalid-field",
        RecordError::Malformed { .. } => "malformed-field",
        RecordError::Incomplete(_) => "incomplete",
        RecordError::NotAllowedNow { .. } => "not-allowed-now",
        RecordError::DuplicateEvent(_) => "duplicate-event",
        RecordError::NotInConflict(_) => "not-in-conflict",
        RecordError::DifferentRequest { .. } => "different-request",
    }
}

/// What is left to send: the outbox with each request's acknowledged heads, and the requests to
/// ask for whole. Compared before an upload and after its answer to tell whether it changed
/// anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backlog {
    pub outbox: Vec<(RequestId, Vec<ChangeHash>)>,
    pub need_whole: Vec<RequestId>,
}

impl Backlog {
    pub fn read(store: &Store) -> Result<Backlog, StoreError> {
        let outbox = store
            .outbox()?
            .into_iter()
            .map(|id| Ok((id, store.acked_heads(id)?)))
            .collect::<Result<_, StoreError>>()?;
        Ok(Backlog {
            outbox,
            need_whole: store.sync_state()?.need_whole,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.outbox.is_empty() && self.need_whole.is_empty()
    }
}

/// Whether to upload again at once after an answer without `more` and a batch that was not
/// full: something is left (a reset request, a request to ask for whole), and the upload
/// changed what is left. An upload that changed nothing would change nothing again.
pub fn upload_again(before: &Backlog, after: &Backlog) -> bool {
    !after.is_empty() && after != before
}

/// The codes with which the hub refuses a whole upload for the sake of one request it carries;
/// the message then starts with `request <id>:` (`busloket_sync::protocol::ProtocolError`).
pub const PER_REQUEST_CODES: [&str; 5] = [
    "foreign-actor",
    "bad-payload",
    "change-count",
    "hash-mismatch",
    "bad-heads",
];

/// The request a refusal of the whole upload names, when its code is a per-request one and the
/// request is one `prepared` carried.
pub fn refused_request(prepared: &PreparedUpload, code: &str, message: &str) -> Option<RequestId> {
    if !PER_REQUEST_CODES.contains(&code) {
        return None;
    }
    let (id, _) = message.strip_prefix("request ")?.split_once(':')?;
    let id: RequestId = id.parse().ok()?;
    prepared.sent.contains(&id).then_some(id)
}

/// After the hub refused the whole of `prepared` with a per-request code: sets the request it
/// names aside (out of the outbox until it changes here, shown to staff until the hub
/// acknowledges it), so the next upload sends the rest. Returns it; `None` when the refusal names none.
pub fn set_aside_refused(
    store: &Store,
    prepared: &PreparedUpload,
    code: &str,
    message: &str,
) -> Result<Option<RequestId>, StoreError> {
    let Some(id) = refused_request(prepared, code, message) else {
        return Ok(None);
    };
    let state = store.sync_state()?;
    store.acknowledge(&Acknowledgement {
        set_aside: vec![id],
        need_whole: state.need_whole,
        answer_applied: state.answer_applied,
        ..Acknowledgement::default()
    })?;
    Ok(Some(id))
}

/// The default batch size, re-exported for the loop.
pub const DEFAULT_BATCH_BYTES: usize = BATCH_BYTES;
