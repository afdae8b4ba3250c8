//! The hub's answer to an upload.

use serde::{Deserialize, Serialize};

use super::wire::{self, Hash, Payload};
use super::{ANSWER_DOMAIN, ProtocolError};
use crate::terms::DeviceId;

/// What the hub sends back after an upload was applied and is durable at the hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// Always [`ANSWER_DOMAIN`].
    pub domain: String,
    /// The device the answer is for.
    pub device: String,
    /// The counter of the upload it answers.
    pub counter: u64,
    /// This answer's checkpoint: the bus sends it back as `answer_applied` once it has applied
    /// the answer and made it durable; until then the hub assumes the bus lacks what it sent.
    pub answer_seq: u64,
    /// Per request, the hub's heads and, when the bus lacks some of them, the changes. After
    /// applying, the bus has at least these heads: they are its new acknowledged heads.
    pub docs: Vec<AnswerDoc>,
    /// Requests of the upload the hub did not take, each with a code (see PROTOCOL.md).
    pub refused: Vec<DocRefusal>,
    /// Files the bus keeps in step with the hub (the revocation list, the staff accounts…),
    /// sent when the hub has a newer version than the bus said it has.
    pub files: Vec<SyncedFile>,
    /// The hub has more for the bus than fitted: ask again at once.
    pub more: bool,
    /// The number of the last trip log line the hub has of this bus, every one before it too.
    pub trip_acked: u64,
}

/// One request in an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerDoc {
    pub id: [u8; 16],
    pub heads: Vec<Hash>,
    /// `None` when the bus already has everything up to `heads`.
    pub payload: Option<Payload>,
}

/// A request of the upload that the hub refused; the others were applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocRefusal {
    pub id: [u8; 16],
    /// `missing-base` (send it whole) or `invalid-record` (kept aside at the hub for central IT).
    pub code: String,
    pub message: String,
}

/// A named, versioned file the hub distributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncedFile {
    /// `crl` (the CA's revocation list, PEM) or `staff` (the staff accounts, TOML).
    pub name: String,
    pub version: u64,
    pub bytes: Vec<u8>,
}

/// The version of a synced file the bus has, in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileVersion {
    pub name: String,
    pub version: u64,
}

/// Encodes and compresses an answer.
pub fn encode_answer(answer: &Answer) -> Vec<u8> {
    wire::compress(&wire::to_postcard(answer))
}

/// Opens the answer to upload `counter` of `device`.
pub fn decode_answer(
    body: &[u8],
    device: &DeviceId,
    counter: u64,
) -> Result<Answer, ProtocolError> {
    let answer: Answer = wire::from_postcard(&wire::decompress(body)?)?;
    if answer.domain != ANSWER_DOMAIN {
        return Err(ProtocolError::BadDomain {
            expected: ANSWER_DOMAIN,
            found: answer.domain,
        });
    }
    if answer.device != device.as_str() {
        return Err(ProtocolError::WrongDevice {
            expected: device.to_string(),
            found: answer.device,
        });
    }
    if answer.counter != counter {
        return Err(ProtocolError::WrongAnswer {
            expected: counter,
            found: answer.counter,
        });
    }
    Ok(answer)
}
