//! The messages as they cross the link, and their outer encoding: postcard inside zstd, both
//! bounded before anything is parsed.

use std::io::Read;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{MAX_BODY_BYTES, MAX_DECODED_BYTES, ProtocolError};

/// A change hash or head on the wire.
pub type Hash = [u8; 32];

/// What the device signs: which requests the upload carries and, for each, exactly which
/// changes. Encoded on its own (postcard) so that the signature covers these very bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`super::UPLOAD_DOMAIN`].
    pub domain: String,
    /// The device id of the signer, as in its certificate.
    pub device: String,
    /// Grows with every upload the device makes; the hub refuses one that does not.
    pub counter: u64,
    /// When the bus built the upload (Unix milliseconds; advisory, the bus's clock).
    pub created_at_ms: i64,
    /// The `answer_seq` of the last answer the bus applied and made durable (0: none yet).
    pub answer_applied: u64,
    /// Requests whose answer the bus could not apply (it lacks their start): the hub sends
    /// them whole in its answer.
    pub need_whole: Vec<[u8; 16]>,
    /// The versions of the synced files the bus has (see [`super::SyncedFile`]).
    pub files: Vec<super::FileVersion>,
    /// One entry per payload, in the same order.
    pub docs: Vec<ManifestDoc>,
    /// Lines of the bus's trip log the hub may lack, numbered, in order (see
    /// [`crate::trip`]): signed with the rest, so the route is the device's word.
    pub trip: Vec<TripLine>,
}

/// One line of a bus's trip log and its number on that bus (1, 2, 3…).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TripLine {
    pub number: u64,
    pub entry: crate::trip::TripEntry,
}

/// One request in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestDoc {
    /// The request id (a UUIDv7, 16 bytes).
    pub id: [u8; 16],
    /// The heads the bus believes the hub has (empty: the hub has nothing of it).
    pub base: Vec<Hash>,
    /// The heads of the request on the bus once the payload is applied.
    pub heads: Vec<Hash>,
    /// The hash of every change in the payload, in the payload's order.
    pub changes: Vec<Hash>,
}

/// The changes of one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// A whole Automerge document (`save()`): about 2.6 times smaller than its changes, used
    /// when the receiver has nothing of the request.
    Document(Vec<u8>),
    /// Automerge changes, each as its own chunk.
    Changes(Vec<Vec<u8>>),
}

impl Payload {
    /// The bytes Automerge's `load` and `load_incremental` take: the document, or the changes
    /// one after the other.
    pub fn to_automerge_bytes(&self) -> Vec<u8> {
        match self {
            Payload::Document(bytes) => bytes.clone(),
            Payload::Changes(changes) => changes.concat(),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Payload::Document(bytes) => bytes.len(),
            Payload::Changes(changes) => changes.iter().map(Vec::len).sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The upload body before compression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    /// The postcard encoding of the [`Manifest`]: the signed bytes.
    pub manifest: Vec<u8>,
    /// Ed25519 over `manifest`, by the device's identity key (64 bytes).
    pub signature: Vec<u8>,
    /// One per manifest entry, in order.
    pub payloads: Vec<Payload>,
}

pub(super) fn to_postcard<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("postcard encodes every value of these types")
}

pub(super) fn from_postcard<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ProtocolError> {
    let (value, rest) = postcard::take_from_bytes::<T>(bytes)
        .map_err(|error| ProtocolError::BadEncoding(error.to_string()))?;
    if !rest.is_empty() {
        return Err(ProtocolError::BadEncoding(format!(
            "{} bytes after the message",
            rest.len()
        )));
    }
    Ok(value)
}

/// zstd level 3: fast on a bus's ARM CPU, within a few percent of the higher levels on these
/// bodies.
pub(super) fn compress(bytes: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(bytes, 3).expect("zstd compresses into a growing buffer")
}

/// Refuses a body over [`MAX_BODY_BYTES`] and stops inflating at [`MAX_DECODED_BYTES`].
pub(super) fn decompress(body: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ProtocolError::TooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    let decoder = zstd::stream::read::Decoder::new(body)
        .map_err(|error| ProtocolError::BadEncoding(error.to_string()))?;
    let mut out = Vec::new();
    decoder
        .take(MAX_DECODED_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|error| ProtocolError::BadEncoding(format!("zstd: {error}")))?;
    if out.len() > MAX_DECODED_BYTES {
        return Err(ProtocolError::TooLarge {
            limit: MAX_DECODED_BYTES,
        });
    }
    Ok(out)
}
