//! A request as one Automerge document: the fields set once at creation and an append-only list
//! of lifecycle events. The status is folded from the events ([`fold_status`]), never stored, so
//! concurrent edits from a bus and the hub never lose an event; incompatible concurrent events
//! are reported as [`Conflict`]s for a person to resolve.
//!
//! This module is pure: it does no IO and reads no clock. Times, event ids and the Automerge
//! actor of the writing replica are arguments. An actor belongs to one replica (a device): two
//! live copies must never write with the same actor, which the store guarantees on a node by
//! serialising its writes. The layout of the document is described in `record/codec.rs`.

mod codec;
mod fold;
mod statement;

use std::fmt;
use std::str::FromStr;

use automerge::transaction::CommitOptions;
use automerge::{ActorId, AutoCommit, AutomergeError, Change, ChangeHash, ReadDoc, SaveOptions};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

pub use self::fold::{Conflict, ConflictKind, Status, conflicts, fold_status, sort_causally};
pub use self::statement::holder_statement;
use crate::national_number::NationalNumber;
use crate::terms::{
    AuthStrength, Channel, DeliveryMethod, DeviceId, DocumentCode, HolderAlgorithm, Language,
    Postcode, Relation, RequestId, StopId,
};

/// The version of the document layout this program writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// The id of a lifecycle event (a UUID; v7 from [`EventId::new`], so ids sort by time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(Uuid);

impl EventId {
    /// A new id from the given time in milliseconds since the epoch and random bits.
    pub fn new(unix_millis: u64, random: [u8; 10]) -> EventId {
        EventId(uuid::Builder::from_unix_timestamp_millis(unix_millis, &random).into_uuid())
    }

    pub fn from_uuid(uuid: Uuid) -> EventId {
        EventId(uuid)
    }

    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for EventId {
    type Err = uuid::Error;
    fn from_str(text: &str) -> Result<Self, uuid::Error> {
        Uuid::parse_str(text).map(EventId)
    }
}

/// A person a request names: the subject of the document or the requester.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub national_number: NationalNumber,
    pub name: String,
}

/// How the document reaches the citizen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub method: DeliveryMethod,
    /// Required for [`DeliveryMethod::Email`].
    pub email: Option<String>,
}

/// Where and when the request was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub device: DeviceId,
    /// The kiosk station or staff desk, e.g. `kiosk-2`, `desk-1`.
    pub station: String,
    pub stop: Option<StopId>,
    pub at: DateTime<Utc>,
    /// How the node knew where it was. Empty in records made before it was written.
    #[serde(default)]
    pub whereabouts: Whereabouts,
}

/// Where the bus was when the request was made, as the node knew it: how it knew the stop, the
/// GPS fix it had (or that it had none), and how far the system clock was from GPS time (the
/// request's times come from the system clock).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Whereabouts {
    /// `None` with a stop: a record from before it was written.
    pub stop_source: Option<StopSource>,
    pub fix: Option<Fix>,
    /// The system clock minus GPS time, in milliseconds, when the node could compare them.
    pub clock_skew_ms: Option<i64>,
}

/// How the node knew at which stop it stood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopSource {
    /// From its fixes and the stop schedule.
    Gps,
    /// Set by hand by staff.
    Staff,
    /// Fixed in the node's configuration (a node that does not move).
    Configured,
}

impl StopSource {
    pub const ALL: &[StopSource] = &[StopSource::Gps, StopSource::Staff, StopSource::Configured];

    pub fn code(&self) -> &'static str {
        match self {
            StopSource::Gps => "gps",
            StopSource::Staff => "staff",
            StopSource::Configured => "configured",
        }
    }
}

/// A GPS fix as a request keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fix {
    /// Degrees (WGS 84).
    pub latitude: f64,
    pub longitude: f64,
    /// The receiver's time of the fix.
    pub at: DateTime<Utc>,
    pub speed_mps: Option<f64>,
}

/// Equality is total: a fix's numbers are checked finite before a record takes it.
impl Eq for Fix {}

/// The fields set once, when the request is created. There is no setter: a request that needs
/// other fields is cancelled and made again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRequest {
    pub id: RequestId,
    pub document: DocumentCode,
    pub subject: Person,
    pub requester: Person,
    pub relation: Relation,
    pub channel: Channel,
    /// The language of the citizen's session.
    pub language: Language,
    pub document_language: Language,
    pub delivery: Delivery,
    pub authentication: AuthStrength,
    /// The purpose of a criminal-record extract.
    pub purpose: Option<String>,
    pub origin: Origin,
    /// The number on the citizen's ticket.
    pub queue_number: u32,
    /// What reading the requester's eID proved; `None` when the identity was typed in.
    pub evidence: Option<CardEvidence>,
    /// The requester's postcode, from the address file of their eID (`None` when no card was
    /// read): where the requester lives, coarsely enough for the city's indicators.
    pub requester_postcode: Option<Postcode>,
}

/// What a verified read of the requester's eID proved, carried by the request as evidence.
/// The same facts as `busloket_hardware::CardEvidence`, kept apart on purpose: `sync` never
/// depends on `hardware`; the node converts one into the other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardEvidence {
    /// SHA-256 of the card's identity file, lowercase hex.
    pub identity_file_sha256: String,
    /// The card's applet version (`0x17`, `0x18`).
    pub applet_version: u8,
    /// The identity and address files verified under the national register's certificate.
    pub register_signature_verified: bool,
    /// Applet 1.8: the chip proved it holds the key the register named.
    pub chip_verified: bool,
    /// The holder entered their PIN and the card signed [`holder_statement`] of this request;
    /// `None` when no PIN was given.
    pub holder: Option<HolderEvidence>,
}

/// The card's authentication signature over the request's [`holder_statement`]: anyone holding
/// the record can check it with the certificate, which chains to the Belgian eID roots.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderEvidence {
    pub algorithm: HolderAlgorithm,
    /// RSA: the 256-byte signature; ECDSA: `r‖s`.
    pub signature: Vec<u8>,
    /// The card's authentication certificate, DER.
    pub certificate: Vec<u8>,
}

impl fmt::Debug for HolderEvidence {
    /// Sizes only: the certificate names the holder.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HolderEvidence")
            .field("algorithm", &self.algorithm)
            .field(
                "signature",
                &format_args!("<{} bytes>", self.signature.len()),
            )
            .field(
                "certificate",
                &format_args!("<{} bytes>", self.certificate.len()),
            )
            .finish()
    }
}

/// What the eligibility rules said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EligibilityOutcome {
    Automatic,
    NeedsClerk,
    NotAllowed,
}

impl EligibilityOutcome {
    pub const ALL: &'static [EligibilityOutcome] = &[
        EligibilityOutcome::Automatic,
        EligibilityOutcome::NeedsClerk,
        EligibilityOutcome::NotAllowed,
    ];

    pub fn code(&self) -> &'static str {
        match self {
            EligibilityOutcome::Automatic => "automatic",
            EligibilityOutcome::NeedsClerk => "needs-clerk",
            EligibilityOutcome::NotAllowed => "not-allowed",
        }
    }
}

/// What happened to a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum EventKind {
    /// Written by [`RequestRecord::create`] only.
    Submitted,
    EligibilityDecided {
        outcome: EligibilityOutcome,
        reason: Option<String>,
    },
    Approved,
    Rejected {
        reason: String,
    },
    Issued {
        document_id: String,
    },
    ReceiptPrinted {
        printer: String,
    },
    Printed {
        printer: String,
    },
    HandedOver,
    Emailed {
        to: String,
    },
    Cancelled {
        reason: String,
    },
    /// A person's resolution of the open conflicts: the events of their sides that stand.
    Resolved {
        note: String,
        kept: Vec<EventId>,
    },
}

impl EventKind {
    /// The stable kebab-case code, as stored and as the translation key `event-<code>`.
    pub fn code(&self) -> &'static str {
        match self {
            EventKind::Submitted => "submitted",
            EventKind::EligibilityDecided { .. } => "eligibility-decided",
            EventKind::Approved => "approved",
            EventKind::Rejected { .. } => "rejected",
            EventKind::Issued { .. } => "issued",
            EventKind::ReceiptPrinted { .. } => "receipt-printed",
            EventKind::Printed { .. } => "printed",
            EventKind::HandedOver => "handed-over",
            EventKind::Emailed { .. } => "emailed",
            EventKind::Cancelled { .. } => "cancelled",
            EventKind::Resolved { .. } => "resolved",
        }
    }
}

/// One lifecycle event as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    pub at: DateTime<Utc>,
    /// Who: `kiosk:station-1`, `staff:jan`, `hub:rules`.
    pub by: String,
    pub device: DeviceId,
    #[serde(flatten)]
    pub kind: EventKind,
    /// The ids of all events the appending replica had when it appended, sorted.
    pub seen: Vec<EventId>,
}

/// An event to append; the record fills in what it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub id: EventId,
    pub at: DateTime<Utc>,
    pub by: String,
    pub device: DeviceId,
    pub kind: EventKind,
}

/// A set-once field that holds several different values, which happens only when the request
/// was created twice (see [`ConflictKind::TwoSubmissions`]). `values` holds each value as JSON;
/// the view shows the one Automerge picks on every replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldConflict {
    pub field: String,
    pub values: Vec<serde_json::Value>,
}

/// Everything about a request, read and checked: what the JSON API returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestView {
    pub schema: u64,
    #[serde(flatten)]
    pub fields: NewRequest,
    /// In causal order.
    pub events: Vec<Event>,
    pub status: Status,
    pub conflicts: Vec<Conflict>,
    pub field_conflicts: Vec<FieldConflict>,
    /// Events a resolution did not keep; the status ignores them.
    pub overruled: Vec<EventId>,
}

/// Why a record could not be created, read, changed or merged.
#[derive(Debug, Error)]
pub enum RecordError {
    /// Boxed: Automerge's error is large and would make every `Result` of this crate large.
    #[error("the Automerge document is unreadable")]
    Automerge(#[source] Box<AutomergeError>),
    #[error("the record has schema version {found}; this program reads version {SCHEMA_VERSION}")]
    UnsupportedSchema { found: u64 },
    #[error("the record has no `{field}`")]
    Missing { field: String },
    #[error("the record's `{field}` is invalid: {reason}")]
    Invalid { field: String, reason: String },
    #[error("the record's `{field}` holds several values but the request was created once")]
    Malformed { field: String },
    #[error("incomplete: {0}")]
    Incomplete(&'static str),
    #[error("`{event}` cannot be recorded while the request is `{status}`")]
    NotAllowedNow {
        event: &'static str,
        status: &'static str,
    },
    #[error("event {0} is already in the record")]
    DuplicateEvent(EventId),
    #[error("the resolution keeps event {0}, which is not a side of an open conflict")]
    NotInConflict(EventId),
    #[error("request {theirs} cannot be merged into request {ours}")]
    DifferentRequest { ours: RequestId, theirs: RequestId },
}

impl From<AutomergeError> for RecordError {
    fn from(error: AutomergeError) -> Self {
        RecordError::Automerge(Box::new(error))
    }
}

/// One request: an Automerge document with the schema above.
pub struct RequestRecord {
    doc: AutoCommit,
}

impl fmt::Debug for RequestRecord {
    /// The id only: a record names citizens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestRecord")
            .field("id", &self.id().ok())
            .finish_non_exhaustive()
    }
}

impl RequestRecord {
    /// Creates the record: the set-once fields and the `Submitted` event (made by `by` on the
    /// origin's device at the origin's time), in one change by `actor`.
    pub fn create(
        new: &NewRequest,
        actor: ActorId,
        submitted: EventId,
        by: &str,
    ) -> Result<RequestRecord, RecordError> {
        check_new(new, by)?;
        let mut doc = AutoCommit::new().with_actor(actor);
        let list = codec::write_request(&mut doc, new)?;
        let event = Event {
            id: submitted,
            at: new.origin.at,
            by: by.to_owned(),
            device: new.origin.device.clone(),
            kind: EventKind::Submitted,
            seen: Vec::new(),
        };
        codec::write_event(&mut doc, &list, 0, &event)?;
        doc.commit_with(commit_options(&event));
        Ok(RequestRecord { doc })
    }

    /// Loads a saved record (a snapshot, optionally followed by incremental chunks) and checks its
    /// schema version, fields and events.
    pub fn load(bytes: &[u8]) -> Result<RequestRecord, RecordError> {
        let record = RequestRecord::load_unviewed(bytes)?;
        record.view()?;
        Ok(record)
    }

    /// Loads saved bytes without checking the record: only for bytes this replica saved and
    /// sealed itself (checked when they were written), and by a caller that views the record
    /// before trusting what it changed. Viewing costs as much as the loading.
    pub fn load_unviewed(bytes: &[u8]) -> Result<RequestRecord, RecordError> {
        Ok(RequestRecord {
            doc: AutoCommit::load(bytes)?,
        })
    }

    /// Takes a document that holds a request (from another replica's changes or payload) and
    /// checks it as [`Self::load`] does; returns the view it checked.
    pub fn from_document(doc: AutoCommit) -> Result<(RequestRecord, RequestView), RecordError> {
        let record = RequestRecord::from_document_unviewed(doc);
        let view = record.view()?;
        Ok((record, view))
    }

    /// Takes a document without checking it: the caller views the record before trusting it
    /// (the hub does, once, after applying an upload to it).
    pub fn from_document_unviewed(doc: AutoCommit) -> RequestRecord {
        RequestRecord { doc }
    }

    /// Applies saved bytes from elsewhere (incremental chunks, another replica's changes). Changes
    /// whose dependencies are missing wait inside Automerge: see [`Self::missing_dependencies`].
    /// Unlike [`Self::merge`] it cannot tell whose bytes they are: a record created elsewhere
    /// with the same id shows in [`Self::view`] as a `two-submissions` conflict, one with another
    /// id as a `Malformed` record.
    pub fn load_incremental(&mut self, bytes: &[u8]) -> Result<(), RecordError> {
        self.doc.load_incremental(bytes)?;
        Ok(())
    }

    /// The hashes of changes this record waits for before it can apply some it received.
    pub fn missing_dependencies(&mut self) -> Vec<ChangeHash> {
        self.doc.get_missing_deps(&[])
    }

    pub fn id(&self) -> Result<RequestId, RecordError> {
        Ok(codec::read_fields(&self.doc)?.fields.id)
    }

    /// Appends one event in one change by `actor`. `seen` becomes every event this replica has.
    /// Refuses an event that does not fit the current status, any event but a resolution while
    /// the request is in conflict, and a `Submitted` event.
    pub fn append(&mut self, actor: &ActorId, event: NewEvent) -> Result<(), RecordError> {
        let events = self.events()?;
        if events.iter().any(|known| known.id == event.id) {
            return Err(RecordError::DuplicateEvent(event.id));
        }
        let analysis = fold::analyse(&events);
        check_allowed(&analysis, &event.kind)?;
        check_event(&event)?;
        let mut seen: Vec<EventId> = events.iter().map(|known| known.id).collect();
        seen.sort();
        let event = Event {
            id: event.id,
            at: event.at,
            by: event.by,
            device: event.device,
            kind: event.kind,
            seen,
        };
        let list = codec::events_list(&self.doc)?;
        let index = self.doc.length(&list);
        self.doc.set_actor(actor.clone());
        if let Err(error) = codec::write_event(&mut self.doc, &list, index, &event) {
            self.doc.rollback();
            return Err(error.into());
        }
        self.doc.commit_with(commit_options(&event));
        Ok(())
    }

    /// Takes in every change of `other` this record lacks. Refuses another request's record.
    pub fn merge(&mut self, other: &mut RequestRecord) -> Result<(), RecordError> {
        let (ours, theirs) = (self.id()?, other.id()?);
        if ours != theirs {
            return Err(RecordError::DifferentRequest { ours, theirs });
        }
        self.doc.merge(&mut other.doc)?;
        Ok(())
    }

    /// The events, without duplicates, in causal order.
    pub fn events(&self) -> Result<Vec<Event>, RecordError> {
        let mut events = codec::read_events(&self.doc)?;
        sort_causally(&mut events);
        Ok(events)
    }

    pub fn status(&self) -> Result<Status, RecordError> {
        Ok(fold_status(&self.events()?))
    }

    /// The fields, the events in causal order, the status, and the open conflicts.
    pub fn view(&self) -> Result<RequestView, RecordError> {
        let read = codec::read_fields(&self.doc)?;
        let events = self.events()?;
        let submissions = events
            .iter()
            .filter(|event| event.kind == EventKind::Submitted)
            .count();
        if let (Some(conflict), true) = (read.conflicts.first(), submissions < 2) {
            return Err(RecordError::Malformed {
                field: conflict.field.clone(),
            });
        }
        let analysis = fold::analyse(&events);
        Ok(RequestView {
            schema: read.schema,
            fields: read.fields,
            status: analysis.status(),
            conflicts: analysis.conflicts,
            field_conflicts: read.conflicts,
            overruled: analysis.overruled.into_iter().collect(),
            events,
        })
    }

    /// The whole document, compact. Its columns are not DEFLATE-compressed: that took 95 % of
    /// the time of saving, and every place a record goes compresses it anyway (zstd on the
    /// wire) or is small next to the cost (the store).
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save_with_options(SaveOptions {
            deflate: false,
            retain_orphans: true,
        })
    }

    /// The whole document with its columns DEFLATE-compressed: about two thirds of
    /// [`Self::save`]'s size for 15 times its time. For payloads, whose bytes count against a
    /// batch's cap (PROTOCOL.md): fewer uploads a day.
    pub fn save_compressed(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// The changes since the last [`Self::save`] or `save_incremental` of this value (everything,
    /// right after [`Self::load`]).
    pub fn save_incremental(&mut self) -> Vec<u8> {
        self.doc.save_incremental()
    }

    /// The changes that are not (transitive) dependencies of `heads`.
    pub fn save_after(&mut self, heads: &[ChangeHash]) -> Vec<u8> {
        self.doc.save_after(heads)
    }

    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// The changes that are not (transitive) dependencies of `heads`, in an order that applies.
    pub fn changes_since(&mut self, heads: &[ChangeHash]) -> Vec<Change> {
        self.doc.get_changes(heads)
    }

    /// Applies changes from elsewhere (already verified by the caller); those it has are
    /// skipped, those whose dependencies are missing wait (see [`Self::missing_dependencies`]).
    pub fn apply_changes(&mut self, changes: Vec<Change>) -> Result<(), RecordError> {
        self.doc.apply_changes(changes)?;
        Ok(())
    }

    /// The hashes of every change of the record (cheaper than [`Self::changes_since`]`(&[])`:
    /// no change is rebuilt).
    pub fn change_hashes(&mut self) -> Vec<ChangeHash> {
        self.doc
            .get_changes_meta(&[])
            .into_iter()
            .map(|meta| meta.hash)
            .collect()
    }

    /// Whether the record has the change `hash`.
    pub fn has_change(&mut self, hash: &ChangeHash) -> bool {
        self.doc.get_change_by_hash(hash).is_some()
    }
}

/// The change's message is the event's code and its time the event's (whole seconds, as
/// Automerge tools expect): both advisory, but they make a change log readable.
fn commit_options(event: &Event) -> CommitOptions {
    CommitOptions::default()
        .with_message(event.kind.code())
        .with_time(event.at.timestamp())
}

fn check_new(new: &NewRequest, by: &str) -> Result<(), RecordError> {
    let blank = |text: &str| text.trim().is_empty();
    let problem = if new.queue_number == 0 {
        Some("queue numbers start at 1")
    } else if blank(&new.subject.name) || blank(&new.requester.name) {
        Some("the subject and the requester need a name")
    } else if new.delivery.method == DeliveryMethod::Email
        && new.delivery.email.as_deref().is_none_or(blank)
    {
        Some("an e-mail delivery needs an e-mail address")
    } else if blank(&new.origin.station) {
        Some("the origin needs a station")
    } else if new
        .origin
        .whereabouts
        .fix
        .is_some_and(|fix| !fix_is_valid(&fix))
    {
        Some("a fix needs a latitude within ±90, a longitude within ±180 and a speed of 0 or more")
    } else if new.origin.whereabouts.stop_source.is_some() && new.origin.stop.is_none() {
        Some("a stop source needs a stop")
    } else if blank(by) {
        Some("the submission needs to say who made it")
    } else {
        None
    };
    problem.map_or(Ok(()), |problem| Err(RecordError::Incomplete(problem)))
}

fn fix_is_valid(fix: &Fix) -> bool {
    fix.latitude.is_finite()
        && fix.longitude.is_finite()
        && (-90.0..=90.0).contains(&fix.latitude)
        && (-180.0..=180.0).contains(&fix.longitude)
        && fix
            .speed_mps
            .is_none_or(|speed| speed.is_finite() && speed >= 0.0)
}

fn check_event(event: &NewEvent) -> Result<(), RecordError> {
    let blank = |text: &str| text.trim().is_empty();
    let problem = match &event.kind {
        _ if blank(&event.by) => Some("an event needs to say who made it"),
        EventKind::Issued { document_id } if blank(document_id) => {
            Some("an issuance needs the document id")
        }
        EventKind::Emailed { to } if blank(to) => Some("an e-mail needs its address"),
        _ => None,
    };
    problem.map_or(Ok(()), |problem| Err(RecordError::Incomplete(problem)))
}

fn check_allowed(analysis: &fold::Analysis, kind: &EventKind) -> Result<(), RecordError> {
    let refuse = |status: Status| RecordError::NotAllowedNow {
        event: kind.code(),
        status: status.code(),
    };
    match kind {
        EventKind::Submitted => Err(refuse(analysis.status())),
        EventKind::Resolved { kept, .. } => {
            if analysis.conflicts.is_empty() {
                return Err(refuse(analysis.folded));
            }
            let sides = |id: &EventId| {
                analysis
                    .conflicts
                    .iter()
                    .any(|c| c.left == *id || c.right == *id)
            };
            match kept.iter().find(|id| !sides(id)) {
                Some(stranger) => Err(RecordError::NotInConflict(*stranger)),
                None => Ok(()),
            }
        }
        _ if !analysis.conflicts.is_empty() => Err(refuse(Status::InConflict)),
        _ => match fold::next_status(analysis.folded, kind) {
            fold::Step::Refused => Err(refuse(analysis.folded)),
            fold::Step::Moves(_) | fold::Step::Stays => Ok(()),
        },
    }
}
