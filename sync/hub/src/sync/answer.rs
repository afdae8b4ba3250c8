//! Building the answer to an upload: every request of the upload, then as many `need_whole`
//! requests (only those the device holds) and dirty requests as fit in [`ANSWER_BATCH_BYTES`] of
//! payload, the upload's own counted too (`more` when some are left). Each carries the hub's
//! heads and what the bus lacks of them: the changes that are not ancestors of the heads the hub
//! knows the bus has (`confirmed`), the whole document when it knows of none, nothing when the
//! bus has everything.

use std::collections::{BTreeMap, HashMap, HashSet};

use automerge::ChangeHash;
use busloket_sync::protocol::{
    ANSWER_BATCH_BYTES, ANSWER_DOMAIN, Answer, AnswerDoc, DocRefusal, Payload, VerifiedUpload,
    from_wire,
};
use busloket_sync::record::RequestRecord;
use busloket_sync::terms::{DeviceId, RequestId};

use super::{Hub, heads_of};
use crate::storage::{Heads, HubStorage, PendingAnswer, PendingDoc, StorageError};

/// What the answer is built from.
pub(super) struct AnswerPlan<'a> {
    pub device: &'a DeviceId,
    pub upload: &'a VerifiedUpload,
    /// The upload's requests the hub took, as they are now at the hub.
    pub applied: Vec<(RequestId, RequestRecord)>,
    /// `confirmed` as this upload leaves it (the rest is in the store).
    pub confirmed: &'a BTreeMap<RequestId, Heads>,
    /// Dirty marks this upload clears: the bus confirmed it has those.
    pub clearing: &'a [(RequestId, u64)],
}

pub(super) struct BuiltAnswer {
    pub answer: Answer,
    pub pending: PendingAnswer,
}

struct Parts {
    docs: Vec<AnswerDoc>,
    pending: Vec<PendingDoc>,
    payload_bytes: usize,
    ids: HashSet<RequestId>,
    /// Whether an optional request (`need_whole`, dirty) went in.
    optional_added: bool,
    /// Whether one was left out: the answer's `more`.
    more: bool,
}

impl Parts {
    /// Whether an optional request with `size` bytes of payload still fits (else `more`).
    fn fits(&mut self, size: usize) -> bool {
        let fits = self.payload_bytes + size <= ANSWER_BATCH_BYTES
            || (!self.optional_added && self.payload_bytes == 0);
        self.optional_added |= fits;
        self.more |= !fits;
        fits
    }

    fn add(
        &mut self,
        id: RequestId,
        record: &mut RequestRecord,
        payload: Option<Payload>,
        mark: Option<u64>,
    ) {
        let heads = heads_of(&record.heads());
        self.payload_bytes += payload.as_ref().map_or(0, Payload::len);
        self.pending.push(PendingDoc {
            id: *id.as_bytes(),
            heads: heads.clone(),
            dirty_mark: mark,
        });
        self.docs.push(AnswerDoc {
            id: *id.as_bytes(),
            heads,
            payload,
        });
        self.ids.insert(id);
    }
}

/// What the bus lacks of `record` when it has `confirmed`.
pub(super) fn payload_for(record: &mut RequestRecord, confirmed: &[ChangeHash]) -> Option<Payload> {
    if record.heads().iter().all(|head| confirmed.contains(head)) {
        return None;
    }
    let known: Vec<ChangeHash> = confirmed
        .iter()
        .copied()
        .filter(|hash| record.has_change(hash))
        .collect();
    if known.is_empty() {
        return Some(Payload::Document(record.save_compressed()));
    }
    let changes = record.changes_since(&known);
    (!changes.is_empty()).then(|| {
        Payload::Changes(
            changes
                .iter()
                .map(|change| change.raw_bytes().to_vec())
                .collect(),
        )
    })
}

impl<S: HubStorage + ?Sized> Hub<S> {
    pub(super) fn build_answer(
        &self,
        plan: AnswerPlan<'_>,
        refused: Vec<DocRefusal>,
        answer_seq: u64,
    ) -> Result<BuiltAnswer, StorageError> {
        let dirty = self.storage.dirty(plan.device)?;
        let marks: HashMap<RequestId, u64> = dirty.iter().copied().collect();
        let mut parts = Parts {
            docs: Vec::new(),
            pending: Vec::new(),
            payload_bytes: 0,
            ids: HashSet::new(),
            optional_added: false,
            more: false,
        };
        let confirmed_of = |id: &RequestId| -> Result<Vec<ChangeHash>, StorageError> {
            Ok(from_wire(&match plan.confirmed.get(id) {
                Some(heads) => heads.clone(),
                None => self.storage.confirmed(plan.device, id)?,
            }))
        };

        for (id, mut record) in plan.applied {
            let payload = payload_for(&mut record, &confirmed_of(&id)?);
            parts.add(id, &mut record, payload, marks.get(&id).copied());
        }
        // Asked-for and dirty requests share the batch with the upload's own (always sent, but
        // counted): a request is never split, and one that alone exceeds the cap still goes,
        // alone.
        for id in &plan.upload.need_whole {
            if parts.ids.contains(id) {
                continue;
            }
            if !self.storage.holds(plan.device, id)? {
                tracing::warn!(device = %plan.device, request = %id, "need_whole names a request this device does not hold; ignored");
                continue;
            }
            if let Some(mut record) = self.load_for_answer(id)? {
                let payload = Payload::Document(record.save_compressed());
                if !parts.fits(payload.len()) {
                    break;
                }
                parts.add(*id, &mut record, Some(payload), marks.get(id).copied());
            }
        }
        for (id, mark) in dirty {
            if parts.more {
                break;
            }
            if parts.ids.contains(&id) || plan.clearing.contains(&(id, mark)) {
                continue;
            }
            let Some(mut record) = self.load_for_answer(&id)? else {
                continue;
            };
            let payload = payload_for(&mut record, &confirmed_of(&id)?);
            if !parts.fits(payload.as_ref().map_or(0, Payload::len)) {
                break;
            }
            parts.add(id, &mut record, payload, Some(mark));
        }

        let answer = Answer {
            domain: ANSWER_DOMAIN.to_owned(),
            device: plan.device.to_string(),
            counter: plan.upload.manifest.counter,
            answer_seq,
            docs: parts.docs,
            refused,
            files: self.files_for(&plan.upload.manifest.files),
            more: parts.more,
            // Set by the caller, who knows what the commit stores.
            trip_acked: 0,
        };
        Ok(BuiltAnswer {
            answer,
            pending: PendingAnswer {
                answer_seq,
                docs: parts.pending,
            },
        })
    }

    fn load_for_answer(&self, id: &RequestId) -> Result<Option<RequestRecord>, StorageError> {
        let Some(stored) = self.storage.load_request(id)? else {
            return Ok(None);
        };
        // Sent as it is: the bus checks it, the hub checked it when it stored it.
        RequestRecord::load_unviewed(&stored.bytes)
            .map(Some)
            .map_err(|error| {
                tracing::error!(request = %id, "a stored request does not load: {error}");
                StorageError::Corrupt {
                    what: "request document",
                }
            })
    }
}
