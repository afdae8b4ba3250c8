//! The sync protocol between a bus and the hub: what crosses the LTE link, how it is signed, and
//! what the receiver checks. `sync/PROTOCOL.md` is the contract in prose; this module is its one
//! implementation, shared by the node (which builds uploads and applies answers) and the hub
//! (which opens uploads and builds answers).
//!
//! One round is one HTTPS request: the bus `POST`s an [`Upload`] — a signed [`Manifest`] and,
//! per dirty request, the changes since the heads the hub last acknowledged — and the hub
//! answers with an [`Answer`]: the hub's heads per request and its own changes for the bus.
//! Both bodies are postcard-encoded and zstd-compressed as a whole.
//!
//! Pure: no IO, no clock (times are arguments), no randomness. The hub's storage, the node's
//! store and the HTTP client and server live elsewhere.

mod actor;
mod answer;
mod upload;
mod wire;

use thiserror::Error;

pub use self::actor::{actor_is_bound, bound_actor, key_prefix};
pub use self::answer::{
    Answer, AnswerDoc, DocRefusal, FileVersion, SyncedFile, decode_answer, encode_answer,
};
pub use self::upload::{
    ChangeInfo, MAX_TRIP_LINES, OutgoingDoc, UploadHeader, VerifiedDoc, VerifiedPayload,
    VerifiedUpload, build_upload, open_upload,
};
pub use self::upload::{from_wire, to_wire};
pub use self::wire::{Hash, Manifest, ManifestDoc, Payload, TripLine, Upload};

/// The first field of every manifest: what the signature is for, and the version.
pub const UPLOAD_DOMAIN: &str = "busloket-sync-upload-v1";
/// The first field of every answer.
pub const ANSWER_DOMAIN: &str = "busloket-sync-answer-v1";
/// The media type of both bodies.
pub const MEDIA_TYPE: &str = "application/vnd.busloket.sync.v1+zstd";
/// The largest compressed body either side accepts (the hub answers 413 above it).
pub const MAX_BODY_BYTES: usize = 4 << 20;
/// The largest body once decompressed: a body that inflates beyond it is refused before it is
/// parsed (a zstd bomb).
pub const MAX_DECODED_BYTES: usize = 16 << 20;
/// What a bus puts in one upload at most, before compression: the payloads of the requests it
/// carries. A round that has more sends the rest in the next round.
pub const BATCH_BYTES: usize = 1 << 20;
/// What the hub puts in one answer at most, before compression; `more` tells the bus to ask
/// again.
pub const ANSWER_BATCH_BYTES: usize = 1 << 20;

/// The synced files the hub sends (PROTOCOL.md "Synced files"): the CA's revocation list (PEM),
/// the bus clerks of the staff file (TOML), and the stop schedule (TOML, [`crate::stops`]).
pub const CRL_FILE: &str = "crl";
pub const STAFF_FILE: &str = "staff";
pub const STOPS_FILE: &str = "stops";

/// Why an upload or an answer was refused. The `code` of each is stable: it is what the hub
/// sends back, what the logs and the device page show, and what `sync/PROTOCOL.md` lists.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the body is not a valid message: {0}")]
    BadEncoding(String),
    #[error("the message is for `{found}`, not `{expected}`")]
    BadDomain {
        expected: &'static str,
        found: String,
    },
    #[error("the manifest names device `{found}` but the connection is `{expected}`")]
    WrongDevice { expected: String, found: String },
    #[error("the manifest's signature does not verify with the device's key")]
    BadSignature,
    #[error("request {id}: the payload does not parse: {detail}")]
    BadPayload { id: String, detail: String },
    #[error("request {id}: the manifest lists {listed} changes, the payload carries {carried}")]
    ChangeCount {
        id: String,
        listed: usize,
        carried: usize,
    },
    #[error("request {id}: change {index} hashes to {computed}, the manifest says {listed}")]
    HashMismatch {
        id: String,
        index: usize,
        computed: String,
        listed: String,
    },
    #[error("request {id}: change {hash} is not an ancestor of the manifest's heads")]
    BadHeads { id: String, hash: String },
    #[error("request {id}: change {hash} was made by actor {actor}, which is not this device's")]
    ForeignActor {
        id: String,
        hash: String,
        actor: String,
    },
    #[error("the answer is for upload {found}, not {expected}")]
    WrongAnswer { expected: u64, found: u64 },
}

impl ProtocolError {
    /// The stable code, kebab-case.
    pub fn code(&self) -> &'static str {
        match self {
            ProtocolError::TooLarge { .. } => "too-large",
            ProtocolError::BadEncoding(_) => "bad-encoding",
            ProtocolError::BadDomain { .. } => "bad-domain",
            ProtocolError::WrongDevice { .. } => "wrong-device",
            ProtocolError::BadSignature => "bad-signature",
            ProtocolError::BadPayload { .. } => "bad-payload",
            ProtocolError::ChangeCount { .. } => "change-count",
            ProtocolError::HashMismatch { .. } => "hash-mismatch",
            ProtocolError::BadHeads { .. } => "bad-heads",
            ProtocolError::ForeignActor { .. } => "foreign-actor",
            ProtocolError::WrongAnswer { .. } => "wrong-answer",
        }
    }
}
