//! The upload: built and signed on the bus, opened and checked at the hub.

use std::collections::HashSet;

use automerge::{ActorId, AutoCommit, Change, ChangeHash};
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use super::wire::{self, Hash, Manifest, ManifestDoc, Payload, TripLine, Upload};
use super::{FileVersion, ProtocolError, UPLOAD_DOMAIN, actor_is_bound};
use crate::record::RequestRecord;
use crate::terms::{DeviceId, RequestId};

/// One request's part of an upload, as the bus prepares it.
#[derive(Debug, Clone)]
pub struct OutgoingDoc {
    pub id: RequestId,
    pub base: Vec<ChangeHash>,
    pub heads: Vec<ChangeHash>,
    pub changes: Vec<ChangeHash>,
    pub payload: Payload,
}

impl OutgoingDoc {
    /// The changes of `record` since `base` (the heads the hub acknowledged): the whole
    /// document when `base` is empty, else the changes themselves.
    pub fn from_record(id: RequestId, record: &mut RequestRecord, base: &[ChangeHash]) -> Self {
        let (hashes, payload) = if base.is_empty() {
            (
                record.change_hashes(),
                Payload::Document(record.save_compressed()),
            )
        } else {
            let changes = record.changes_since(base);
            (
                changes.iter().map(Change::hash).collect(),
                Payload::Changes(
                    changes
                        .iter()
                        .map(|change| change.raw_bytes().to_vec())
                        .collect(),
                ),
            )
        };
        OutgoingDoc {
            id,
            base: base.to_vec(),
            heads: record.heads(),
            changes: hashes,
            payload,
        }
    }

    /// Whether the hub already has everything.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Its weight in a batch: the payload and the manifest entry.
    pub fn size(&self) -> usize {
        self.payload.len() + 32 * (self.base.len() + self.heads.len() + self.changes.len()) + 16
    }
}

/// The manifest's fields besides the requests.
#[derive(Debug, Clone)]
pub struct UploadHeader {
    pub device: DeviceId,
    /// Larger than any counter the device used before.
    pub counter: u64,
    pub created_at: DateTime<Utc>,
    /// The last answer the bus made durable.
    pub answer_applied: u64,
    pub need_whole: Vec<RequestId>,
    pub files: Vec<FileVersion>,
    /// Trip log lines the hub may lack, in order, at most [`MAX_TRIP_LINES`].
    pub trip: Vec<TripLine>,
}

/// Trip log lines in one upload at most (a day has a few hundred).
pub const MAX_TRIP_LINES: usize = 5_000;

/// Builds, signs and compresses an upload.
pub fn build_upload(key: &SigningKey, header: &UploadHeader, docs: Vec<OutgoingDoc>) -> Vec<u8> {
    let mut manifest_docs = Vec::with_capacity(docs.len());
    let mut payloads = Vec::with_capacity(docs.len());
    for doc in docs {
        manifest_docs.push(ManifestDoc {
            id: *doc.id.as_bytes(),
            base: to_wire(&doc.base),
            heads: to_wire(&doc.heads),
            changes: to_wire(&doc.changes),
        });
        payloads.push(doc.payload);
    }
    let manifest = Manifest {
        domain: UPLOAD_DOMAIN.to_owned(),
        device: header.device.to_string(),
        counter: header.counter,
        created_at_ms: header.created_at.timestamp_millis(),
        answer_applied: header.answer_applied,
        need_whole: header.need_whole.iter().map(|id| *id.as_bytes()).collect(),
        files: header.files.clone(),
        docs: manifest_docs,
        trip: header.trip.clone(),
    };
    let manifest = wire::to_postcard(&manifest);
    let signature = key.sign(&manifest).to_bytes().to_vec();
    wire::compress(&wire::to_postcard(&Upload {
        manifest,
        signature,
        payloads,
    }))
}

/// An upload whose signature, hashes and heads were checked.
#[derive(Debug)]
pub struct VerifiedUpload {
    pub manifest: Manifest,
    /// The signed bytes and the signature, to archive.
    pub manifest_bytes: Vec<u8>,
    pub signature: Vec<u8>,
    pub need_whole: Vec<RequestId>,
    pub docs: Vec<VerifiedDoc>,
}

/// One request of a checked upload.
#[derive(Debug)]
pub struct VerifiedDoc {
    pub id: RequestId,
    pub base: Vec<ChangeHash>,
    pub heads: Vec<ChangeHash>,
    /// Every change of the payload; their hashes are the manifest's.
    pub changes: Vec<ChangeInfo>,
    pub payload: VerifiedPayload,
}

/// What the hub needs to know of one change it received.
#[derive(Debug, Clone)]
pub struct ChangeInfo {
    /// Computed here from the change's content.
    pub hash: ChangeHash,
    pub actor: ActorId,
    pub deps: Vec<ChangeHash>,
}

/// A checked payload, parsed once.
#[derive(Debug)]
pub enum VerifiedPayload {
    /// The whole document, loaded: Automerge rebuilt every change from its operations and
    /// hashed it, and checked the heads it names. Boxed: a document is large next to a vector.
    Document(Box<AutoCommit>),
    Changes(Vec<Change>),
}

impl VerifiedDoc {
    /// The payload's bytes, to keep in quarantine.
    pub fn raw_bytes(&self) -> Vec<u8> {
        match &self.payload {
            VerifiedPayload::Document(document) => document.clone().save(),
            VerifiedPayload::Changes(changes) => changes
                .iter()
                .flat_map(|change| change.raw_bytes().iter().copied())
                .collect(),
        }
    }
}

impl VerifiedDoc {
    /// Checks that every change the receiver does not already have (`is_known` says which it
    /// has) was made by an actor bound to `public_key`, the signer's. Changes it has may be
    /// anyone's: they came from the hub in an earlier answer.
    pub fn check_actors(
        &self,
        public_key: &[u8],
        mut is_known: impl FnMut(&ChangeHash) -> bool,
    ) -> Result<(), ProtocolError> {
        for change in &self.changes {
            if !actor_is_bound(&change.actor, public_key) && !is_known(&change.hash) {
                return Err(ProtocolError::ForeignActor {
                    id: self.id.to_string(),
                    hash: change.hash.to_string(),
                    actor: change.actor.to_hex_string(),
                });
            }
        }
        Ok(())
    }
}

/// Opens an upload from `device`, whose identity key is `key`: the size and encoding, the
/// signature over the manifest, the domain and device, then for each request that the payload
/// parses, that its changes hash to exactly the manifest's list, and that the manifest's heads
/// are what those changes lead to. The actors are checked by the caller, who knows which
/// changes it already has ([`VerifiedDoc::check_actors`]).
pub fn open_upload(
    body: &[u8],
    device: &DeviceId,
    key: &VerifyingKey,
) -> Result<VerifiedUpload, ProtocolError> {
    let upload: Upload = wire::from_postcard(&wire::decompress(body)?)?;
    let signature = Signature::from_slice(&upload.signature)
        .map_err(|_| ProtocolError::BadEncoding("the signature is not 64 bytes".into()))?;
    key.verify(&upload.manifest, &signature)
        .map_err(|_| ProtocolError::BadSignature)?;
    let manifest: Manifest = wire::from_postcard(&upload.manifest)?;
    if manifest.domain != UPLOAD_DOMAIN {
        return Err(ProtocolError::BadDomain {
            expected: UPLOAD_DOMAIN,
            found: manifest.domain,
        });
    }
    if manifest.device != device.as_str() {
        return Err(ProtocolError::WrongDevice {
            expected: device.to_string(),
            found: manifest.device,
        });
    }
    if manifest.trip.len() > MAX_TRIP_LINES
        || manifest
            .trip
            .windows(2)
            .any(|pair| pair[0].number >= pair[1].number)
    {
        return Err(ProtocolError::BadEncoding(format!(
            "the trip log lines must be at most {MAX_TRIP_LINES}, in increasing order"
        )));
    }
    if manifest.docs.len() != upload.payloads.len() {
        return Err(ProtocolError::BadEncoding(format!(
            "the manifest lists {} requests, the body carries {}",
            manifest.docs.len(),
            upload.payloads.len()
        )));
    }
    let docs = manifest
        .docs
        .iter()
        .zip(upload.payloads)
        .map(|(entry, payload)| verify_doc(entry, payload))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(VerifiedUpload {
        need_whole: manifest
            .need_whole
            .iter()
            .map(|id| RequestId::from_bytes(*id))
            .collect(),
        manifest,
        manifest_bytes: upload.manifest,
        signature: upload.signature,
        docs,
    })
}

fn verify_doc(entry: &ManifestDoc, payload: Payload) -> Result<VerifiedDoc, ProtocolError> {
    let id = RequestId::from_bytes(entry.id);
    let bad_payload = |detail: String| ProtocolError::BadPayload {
        id: id.to_string(),
        detail,
    };
    let (changes, payload): (Vec<ChangeInfo>, _) = match payload {
        Payload::Document(bytes) => {
            let mut document =
                AutoCommit::load(&bytes).map_err(|error| bad_payload(error.to_string()))?;
            let changes = document
                .get_changes_meta(&[])
                .into_iter()
                .map(|meta| ChangeInfo {
                    hash: meta.hash,
                    actor: meta.actor.into_owned(),
                    deps: meta.deps,
                })
                .collect();
            (changes, VerifiedPayload::Document(Box::new(document)))
        }
        Payload::Changes(chunks) => {
            let changes = chunks
                .into_iter()
                .map(|bytes| {
                    Change::from_bytes(bytes).map_err(|error| bad_payload(error.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let infos = changes
                .iter()
                .map(|change| ChangeInfo {
                    hash: change.hash(),
                    actor: change.actor_id().clone(),
                    deps: change.deps().to_vec(),
                })
                .collect();
            (infos, VerifiedPayload::Changes(changes))
        }
    };
    check_hashes(id, entry, &changes)?;
    let doc = VerifiedDoc {
        id,
        base: from_wire(&entry.base),
        heads: from_wire(&entry.heads),
        changes,
        payload,
    };
    check_heads(&doc)?;
    Ok(doc)
}

/// The payload's changes, hashed here from their bytes, are exactly the manifest's list (as a
/// set: a document's changes come out in its own order).
fn check_hashes(
    id: RequestId,
    entry: &ManifestDoc,
    changes: &[ChangeInfo],
) -> Result<(), ProtocolError> {
    if changes.len() != entry.changes.len() {
        return Err(ProtocolError::ChangeCount {
            id: id.to_string(),
            listed: entry.changes.len(),
            carried: changes.len(),
        });
    }
    let mut computed: Vec<Hash> = changes.iter().map(|change| change.hash.0).collect();
    let mut listed = entry.changes.clone();
    computed.sort_unstable();
    listed.sort_unstable();
    for (index, (computed, listed)) in computed.iter().zip(&listed).enumerate() {
        if computed != listed {
            return Err(ProtocolError::HashMismatch {
                id: id.to_string(),
                index,
                computed: hex::encode(computed),
                listed: hex::encode(listed),
            });
        }
    }
    if computed.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err(ProtocolError::BadPayload {
            id: id.to_string(),
            detail: "a change is listed twice".into(),
        });
    }
    Ok(())
}

/// Every change the payload carries leads to the manifest's heads (none dangles outside what
/// was signed), and every head is one of those changes or of the base.
fn check_heads(doc: &VerifiedDoc) -> Result<(), ProtocolError> {
    let sent: HashSet<ChangeHash> = doc.changes.iter().map(|change| change.hash).collect();
    let depended_on: HashSet<ChangeHash> = doc
        .changes
        .iter()
        .flat_map(|change| change.deps.iter().copied())
        .collect();
    let heads: HashSet<ChangeHash> = doc.heads.iter().copied().collect();
    if let Some(tip) = sent
        .iter()
        .find(|hash| !depended_on.contains(hash) && !heads.contains(hash))
    {
        return Err(ProtocolError::BadHeads {
            id: doc.id.to_string(),
            hash: tip.to_string(),
        });
    }
    if let Some(head) = doc
        .heads
        .iter()
        .find(|head| !sent.contains(head) && !doc.base.contains(head))
    {
        return Err(ProtocolError::BadHeads {
            id: doc.id.to_string(),
            hash: head.to_string(),
        });
    }
    Ok(())
}

pub fn to_wire(hashes: &[ChangeHash]) -> Vec<Hash> {
    hashes.iter().map(|hash| hash.0).collect()
}

pub fn from_wire(hashes: &[Hash]) -> Vec<ChangeHash> {
    hashes.iter().map(|hash| ChangeHash(*hash)).collect()
}
