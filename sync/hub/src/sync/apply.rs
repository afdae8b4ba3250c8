//! Steps 7 to 9 of one upload: the actors, applying each request, and the one durable commit
//! that carries the applied requests, the bookkeeping and the answer's checkpoint.

use std::collections::BTreeMap;

use automerge::AutoCommit;
use busloket_sync::protocol::{DocRefusal, VerifiedDoc, VerifiedPayload, VerifiedUpload};
use busloket_sync::record::{RecordError, RequestRecord, RequestView};
use busloket_sync::terms::RequestId;
use chrono::{DateTime, Utc};

use super::answer::AnswerPlan;
use super::{DeviceIdentity, Hub, Refusal, Step, heads_of, manifest_archive, quarantined};
use crate::indicators::IndicatorRow;
use crate::storage::{
    Commit, DeviceState, Heads, HubStorage, QuarantineEntry, RequestWrite, StorageError,
};

/// What became of one request of the upload.
pub(super) enum Outcome {
    /// Applied; `changed` when the hub did not have every change before.
    Applied {
        /// Boxed: a record is large next to the other variants.
        record: Box<RequestRecord>,
        /// The record's view after applying.
        view: Box<RequestView>,
        changed: bool,
    },
    /// Changes wait for dependencies the hub lacks: nothing kept, the bus sends it whole.
    MissingBase(String),
    /// The result is not a valid request record: kept aside in quarantine.
    Invalid(String),
}

impl<S: HubStorage + ?Sized> Hub<S> {
    pub(super) fn apply_upload(
        &self,
        device: &DeviceIdentity,
        upload: &VerifiedUpload,
        mut state: DeviceState,
        digest: [u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Step, StorageError> {
        let mut loaded = Vec::with_capacity(upload.docs.len());
        for doc in &upload.docs {
            let stored = self.storage.load_request(&doc.id)?;
            let record = match &stored {
                // Viewed once, after the upload is applied to it.
                Some(stored) => Some(RequestRecord::load_unviewed(&stored.bytes).map_err(|error| {
                    tracing::error!(request = %doc.id, "a stored request does not load: {error}");
                    StorageError::Corrupt {
                        what: "request document",
                    }
                })?),
                None => None,
            };
            loaded.push((stored.map(|stored| stored.version), record));
        }

        // Step 7: every change the hub does not have is the device's own.
        for (doc, (_, record)) in upload.docs.iter().zip(&mut loaded) {
            let known = |hash: &automerge::ChangeHash| {
                record
                    .as_mut()
                    .is_some_and(|record| record.has_change(hash))
            };
            if let Err(error) = doc.check_actors(&device.public_key, known) {
                debug_assert!(quarantined(&error));
                return Ok(Step::Refused(Refusal::from_protocol(&error)));
            }
        }

        let mut commit = Commit {
            device: Some(device.id.clone()),
            manifest: Some(manifest_archive(upload, now)),
            ..Commit::default()
        };
        let mut confirmed: BTreeMap<RequestId, Heads> = BTreeMap::new();
        let mut clear_dirty = Vec::new();
        if let Some(pending) = state
            .pending
            .take()
            .filter(|pending| pending.answer_seq == upload.manifest.answer_applied)
        {
            for doc in pending.docs {
                let id = RequestId::from_bytes(doc.id);
                confirmed.insert(id, doc.heads);
                if let Some(mark) = doc.dirty_mark {
                    clear_dirty.push((id, mark));
                }
            }
        }

        // Step 8, per request.
        let mut refused = Vec::new();
        let mut applied = Vec::new();
        for (doc, (version, record)) in upload.docs.iter().zip(loaded) {
            match apply_doc(doc, record) {
                Outcome::Applied {
                    mut record,
                    view,
                    changed,
                } => {
                    if changed {
                        commit.requests.push(RequestWrite {
                            id: doc.id,
                            expected_version: version,
                            bytes: record.save(),
                        });
                        commit
                            .indicators
                            .push((doc.id, IndicatorRow::of(&view, &self.visitor_key)));
                    }
                    commit.held.push(doc.id);
                    confirmed.insert(doc.id, heads_of(&doc.heads));
                    applied.push((doc.id, *record));
                }
                Outcome::MissingBase(message) => {
                    tracing::info!(request = %doc.id, "missing-base: {message}");
                    confirmed.insert(doc.id, Vec::new());
                    refused.push(DocRefusal {
                        id: *doc.id.as_bytes(),
                        code: "missing-base".into(),
                        message,
                    });
                }
                Outcome::Invalid(message) => {
                    tracing::warn!(device = %device.id, request = %doc.id, "invalid-record, kept in quarantine: {message}");
                    let bytes = doc.raw_bytes();
                    commit.quarantine.push((
                        QuarantineEntry {
                            at_ms: now.timestamp_millis(),
                            code: "invalid-record".into(),
                            message: message.clone(),
                            counter: Some(upload.manifest.counter),
                            request: Some(*doc.id.as_bytes()),
                            size: bytes.len() as u64,
                        },
                        bytes,
                    ));
                    refused.push(DocRefusal {
                        id: *doc.id.as_bytes(),
                        code: "invalid-record".into(),
                        message,
                    });
                }
            }
        }
        for id in &upload.need_whole {
            if !upload.docs.iter().any(|doc| doc.id == *id) {
                confirmed.insert(*id, Vec::new());
            }
        }

        // The trip log: the lines that follow the ones stored (a resend's are there already; a
        // gap waits for the bus to send from where the answer says the hub is).
        let mut trip_acked = self.storage.trip_acked(&device.id)?;
        for line in &upload.manifest.trip {
            if line.number == trip_acked + 1 {
                commit.trip.push((line.number, line.entry.clone()));
                trip_acked = line.number;
            }
        }

        // The answer, then step 9: one durable commit, and only then the answer leaves.
        let plan = AnswerPlan {
            device: &device.id,
            upload,
            applied,
            confirmed: &confirmed,
            clearing: &clear_dirty,
        };
        let mut built = self.build_answer(plan, refused, state.answer_seq + 1)?;
        built.answer.trip_acked = trip_acked;
        state.answer_seq = built.answer.answer_seq;
        state.pending = Some(built.pending);
        state.last_counter = Some(upload.manifest.counter);
        state.manifest_digest = Some(digest);
        state.last_seen_ms = Some(now.timestamp_millis());
        state.last_sync_ms = Some(now.timestamp_millis());
        commit.state = Some(state);
        commit.confirmed = confirmed.into_iter().collect();
        commit.clear_dirty = clear_dirty;
        let written = commit.requests.len();
        self.storage.commit(commit)?;
        tracing::info!(
            counter = upload.manifest.counter,
            requests = upload.docs.len(),
            written,
            refused = built.answer.refused.len(),
            answered = built.answer.docs.len(),
            answer_seq = built.answer.answer_seq,
            more = built.answer.more,
            "upload applied"
        );
        Ok(Step::Answered(busloket_sync::protocol::encode_answer(
            &built.answer,
        )))
    }
}

/// Applies one request's changes to the hub's copy (or to nothing, for a request new here),
/// then views the result once.
pub(super) fn apply_doc(doc: &VerifiedDoc, record: Option<RequestRecord>) -> Outcome {
    let (mut record, changed) = match record {
        Some(mut record) => {
            let before = record.heads();
            let applied = match &doc.payload {
                VerifiedPayload::Changes(changes) => record.apply_changes(changes.clone()),
                VerifiedPayload::Document(document) => record.merge(
                    &mut RequestRecord::from_document_unviewed(AutoCommit::clone(document)),
                ),
            };
            if let Err(error) = applied {
                return Outcome::Invalid(record_problem(&error));
            }
            let changed = record.heads() != before;
            (record, changed)
        }
        None => {
            let mut document = match &doc.payload {
                VerifiedPayload::Document(document) => AutoCommit::clone(document),
                VerifiedPayload::Changes(changes) => {
                    let mut document = AutoCommit::new();
                    if let Err(error) = document.apply_changes(changes.clone()) {
                        return Outcome::Invalid(record_problem(&error.into()));
                    }
                    document
                }
            };
            if document.get_heads().is_empty() {
                return Outcome::MissingBase(format!(
                    "the hub has nothing of request {}; send it whole",
                    doc.id
                ));
            }
            (RequestRecord::from_document_unviewed(document), true)
        }
    };
    let missing = record.missing_dependencies();
    if !missing.is_empty() {
        return Outcome::MissingBase(format!(
            "{} changes of request {} depend on changes the hub does not have; send it whole",
            missing.len(),
            doc.id
        ));
    }
    if let Some(head) = doc.heads.iter().find(|head| !record.has_change(head)) {
        return Outcome::MissingBase(format!(
            "the hub lacks head {head} of request {}; send it whole",
            doc.id
        ));
    }
    match record.view() {
        Ok(view) if view.fields.id != doc.id => Outcome::Invalid(format!(
            "the document is request {}, not {}",
            view.fields.id, doc.id
        )),
        Ok(view) => Outcome::Applied {
            record: Box::new(record),
            view: Box::new(view),
            changed,
        },
        Err(error) => Outcome::Invalid(record_problem(&error)),
    }
}

/// What is wrong with a record, for the log, the answer and the device page: names fields, never
/// their values (they may be a citizen's).
fn record_problem(error: &RecordError) -> String {
    match error {
        RecordError::Invalid { field, .. } => format!("the record's `{field}` is invalid"),
        other => other.to_string(),
    }
}
