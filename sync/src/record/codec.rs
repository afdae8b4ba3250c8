//! How a request record is laid out in its Automerge document, and how it is read back with
//! every value checked. The only place that knows the document's keys and scalar types.
//!
//! Schema 1, root map:
//! - `schema` (uint), `id`, `document`, `relation`, `channel`, `language`, `document_language`,
//!   `authentication` (strings), `purpose` (string, absent when none), `queue_number` (uint);
//! - maps `subject` and `requester` (`national_number` as 11 digits, `name`), `delivery`
//!   (`method`, `email` absent when none), `origin` (`device`, `station`, `stop` absent when none,
//!   `at` timestamp; `stop_source` (`gps`, `staff`, `configured`), the map `fix` (`latitude`,
//!   `longitude` as floats, `at` timestamp, `speed_mps` float absent when unknown) and
//!   `clock_skew_ms` (int), each absent when the node had none — optional, so records written
//!   before they existed read the same);
//! - map `evidence`, absent when the identity was not read from a card: `identity_file_sha256`
//!   (hex string), `applet_version` (uint), `register_signature_verified`, `chip_verified`
//!   (booleans), and the map `holder` when the holder signed with their PIN: `algorithm`
//!   (string), `signature` and `certificate` (bytes). Optional, so records written before they
//!   existed read the same (no schema bump);
//! - `requester_postcode` (four digits as a string), absent when no card was read — optional
//!   likewise;
//! - `events`: a list of maps `id`, `at` (timestamp), `by`, `device`, `kind` (the kind's code),
//!   the kind's own fields (`outcome`, `reason`, `document_id`, `printer`, `to`, `note`, `kept`
//!   as a list of ids) and `seen` (a list of event ids, sorted).
//!
//! Events are maps rather than JSON blobs so that other Automerge tools can read them and so
//! that each field is a plain op. Times are Automerge timestamps: milliseconds, finer precision
//! is dropped.

use std::str::FromStr;

use automerge::transaction::Transactable;
use automerge::{
    AutoCommit, AutomergeError, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value, ValueRef,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{
    CardEvidence, Delivery, EligibilityOutcome, Event, EventId, EventKind, FieldConflict, Fix,
    HolderEvidence, NewRequest, Origin, Person, RecordError, SCHEMA_VERSION, StopSource,
    Whereabouts,
};
use crate::national_number::NationalNumber;

/// Writes the set-once fields and an empty event list; returns the list.
pub(super) fn write_request(
    doc: &mut AutoCommit,
    new: &NewRequest,
) -> Result<ObjId, AutomergeError> {
    doc.put(ROOT, "schema", u64::from(SCHEMA_VERSION))?;
    doc.put(ROOT, "id", new.id.to_string())?;
    doc.put(ROOT, "document", new.document.as_str())?;
    for (key, person) in [("subject", &new.subject), ("requester", &new.requester)] {
        let map = doc.put_object(ROOT, key, ObjType::Map)?;
        doc.put(&map, "national_number", person.national_number.digits())?;
        doc.put(&map, "name", person.name.as_str())?;
    }
    doc.put(ROOT, "relation", new.relation.as_str())?;
    doc.put(ROOT, "channel", new.channel.as_str())?;
    doc.put(ROOT, "language", new.language.as_str())?;
    doc.put(ROOT, "document_language", new.document_language.as_str())?;
    let delivery = doc.put_object(ROOT, "delivery", ObjType::Map)?;
    doc.put(&delivery, "method", new.delivery.method.as_str())?;
    if let Some(email) = &new.delivery.email {
        doc.put(&delivery, "email", email.as_str())?;
    }
    doc.put(ROOT, "authentication", new.authentication.as_str())?;
    if let Some(purpose) = &new.purpose {
        doc.put(ROOT, "purpose", purpose.as_str())?;
    }
    let origin = doc.put_object(ROOT, "origin", ObjType::Map)?;
    doc.put(&origin, "device", new.origin.device.as_str())?;
    doc.put(&origin, "station", new.origin.station.as_str())?;
    if let Some(stop) = &new.origin.stop {
        doc.put(&origin, "stop", stop.as_str())?;
    }
    doc.put(
        &origin,
        "at",
        ScalarValue::Timestamp(new.origin.at.timestamp_millis()),
    )?;
    let whereabouts = &new.origin.whereabouts;
    if let Some(source) = whereabouts.stop_source {
        doc.put(&origin, "stop_source", source.code())?;
    }
    if let Some(fix) = &whereabouts.fix {
        let map = doc.put_object(&origin, "fix", ObjType::Map)?;
        doc.put(&map, "latitude", fix.latitude)?;
        doc.put(&map, "longitude", fix.longitude)?;
        doc.put(
            &map,
            "at",
            ScalarValue::Timestamp(fix.at.timestamp_millis()),
        )?;
        if let Some(speed) = fix.speed_mps {
            doc.put(&map, "speed_mps", speed)?;
        }
    }
    if let Some(skew) = whereabouts.clock_skew_ms {
        doc.put(&origin, "clock_skew_ms", skew)?;
    }
    doc.put(ROOT, "queue_number", u64::from(new.queue_number))?;
    if let Some(postcode) = new.requester_postcode {
        doc.put(ROOT, "requester_postcode", postcode.to_string())?;
    }
    if let Some(evidence) = &new.evidence {
        let map = doc.put_object(ROOT, "evidence", ObjType::Map)?;
        doc.put(
            &map,
            "identity_file_sha256",
            evidence.identity_file_sha256.as_str(),
        )?;
        doc.put(&map, "applet_version", u64::from(evidence.applet_version))?;
        doc.put(
            &map,
            "register_signature_verified",
            evidence.register_signature_verified,
        )?;
        doc.put(&map, "chip_verified", evidence.chip_verified)?;
        if let Some(holder) = &evidence.holder {
            let holder_map = doc.put_object(&map, "holder", ObjType::Map)?;
            doc.put(&holder_map, "algorithm", holder.algorithm.as_str())?;
            doc.put(
                &holder_map,
                "signature",
                ScalarValue::Bytes(holder.signature.clone()),
            )?;
            doc.put(
                &holder_map,
                "certificate",
                ScalarValue::Bytes(holder.certificate.clone()),
            )?;
        }
    }
    doc.put_object(ROOT, "events", ObjType::List)
}

/// Inserts one event map at `index` of `list`.
pub(super) fn write_event(
    doc: &mut AutoCommit,
    list: &ObjId,
    index: usize,
    event: &Event,
) -> Result<(), AutomergeError> {
    let map = doc.insert_object(list, index, ObjType::Map)?;
    doc.put(&map, "id", event.id.to_string())?;
    doc.put(
        &map,
        "at",
        ScalarValue::Timestamp(event.at.timestamp_millis()),
    )?;
    doc.put(&map, "by", event.by.as_str())?;
    doc.put(&map, "device", event.device.as_str())?;
    doc.put(&map, "kind", event.kind.code())?;
    match &event.kind {
        EventKind::Submitted | EventKind::Approved | EventKind::HandedOver => {}
        EventKind::EligibilityDecided { outcome, reason } => {
            doc.put(&map, "outcome", outcome.code())?;
            if let Some(reason) = reason {
                doc.put(&map, "reason", reason.as_str())?;
            }
        }
        EventKind::Rejected { reason } | EventKind::Cancelled { reason } => {
            doc.put(&map, "reason", reason.as_str())?;
        }
        EventKind::Issued { document_id } => doc.put(&map, "document_id", document_id.as_str())?,
        EventKind::ReceiptPrinted { printer } | EventKind::Printed { printer } => {
            doc.put(&map, "printer", printer.as_str())?;
        }
        EventKind::Emailed { to } => doc.put(&map, "to", to.as_str())?,
        EventKind::Resolved { note, kept } => {
            doc.put(&map, "note", note.as_str())?;
            write_ids(doc, &map, "kept", kept)?;
        }
    }
    write_ids(doc, &map, "seen", &event.seen)
}

fn write_ids(
    doc: &mut AutoCommit,
    map: &ObjId,
    key: &str,
    ids: &[EventId],
) -> Result<(), AutomergeError> {
    let list = doc.put_object(map, key, ObjType::List)?;
    for (index, id) in ids.iter().enumerate() {
        doc.insert(&list, index, id.to_string())?;
    }
    Ok(())
}

/// The set-once fields as read, with the fields that hold several different values.
pub(super) struct ReadFields {
    pub schema: u64,
    pub fields: NewRequest,
    pub conflicts: Vec<FieldConflict>,
}

type Parse<T> = fn(&AutoCommit, &Value<'_>, &ObjId) -> Result<T, String>;

/// One key of a map: the value Automerge's `get` picks, its object id when it is an object, and
/// whether concurrent values exist.
struct Entry {
    key: String,
    value: Value<'static>,
    obj: ObjId,
    conflict: bool,
}

/// The entries of one map, read in one pass: a `get` per key costs Automerge a seek each, about
/// six times the pass (it made reading a record the hub's main cost).
struct Entries(Vec<Entry>);

impl Entries {
    fn read(doc: &AutoCommit, map: &ObjId) -> Entries {
        Entries(
            doc.map_range(map, ..)
                .map(|item| {
                    let obj = match item.value {
                        ValueRef::Object(_) => item.id(),
                        ValueRef::Scalar(_) => ObjId::Root,
                    };
                    Entry {
                        key: item.key.into_owned(),
                        value: item.value.into_value(),
                        obj,
                        conflict: item.conflict,
                    }
                })
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&Entry> {
        self.0.iter().find(|entry| entry.key == key)
    }
}

/// Reads and checks the set-once fields. The schema is checked first, so a newer record gets a
/// clear "unsupported schema" rather than a confusing field error.
pub(super) fn read_fields(doc: &AutoCommit) -> Result<ReadFields, RecordError> {
    let root = Entries::read(doc, &ROOT);
    let mut conflicts = Vec::new();
    let schema = required(doc, &root, "schema", parse_uint, &mut conflicts)?;
    if schema != u64::from(SCHEMA_VERSION) {
        return Err(RecordError::UnsupportedSchema { found: schema });
    }
    let c = &mut conflicts;
    let r = &root;
    let fields = NewRequest {
        id: required(doc, r, "id", parse_text, c)?,
        document: required(doc, r, "document", parse_text, c)?,
        subject: required(doc, r, "subject", parse_person, c)?,
        requester: required(doc, r, "requester", parse_person, c)?,
        relation: required(doc, r, "relation", parse_text, c)?,
        channel: required(doc, r, "channel", parse_text, c)?,
        language: required(doc, r, "language", parse_text, c)?,
        document_language: required(doc, r, "document_language", parse_text, c)?,
        delivery: required(doc, r, "delivery", parse_delivery, c)?,
        authentication: required(doc, r, "authentication", parse_text, c)?,
        purpose: field(doc, r, "purpose", parse_text, c)?,
        origin: required(doc, r, "origin", parse_origin, c)?,
        queue_number: required(doc, r, "queue_number", parse_queue_number, c)?,
        evidence: field(doc, r, "evidence", parse_evidence, c)?,
        requester_postcode: field(doc, r, "requester_postcode", parse_text, c)?,
    };
    Ok(ReadFields {
        schema,
        fields,
        conflicts,
    })
}

fn required<T: PartialEq + Serialize>(
    doc: &AutoCommit,
    root: &Entries,
    key: &'static str,
    parse: Parse<T>,
    conflicts: &mut Vec<FieldConflict>,
) -> Result<T, RecordError> {
    field(doc, root, key, parse, conflicts)?.ok_or(RecordError::Missing {
        field: key.to_owned(),
    })
}

/// Reads a root field: the value Automerge's `get` picks (the same on every replica), and, when
/// there are concurrent values, every distinct one from `get_all` into `conflicts`.
fn field<T: PartialEq + Serialize>(
    doc: &AutoCommit,
    root: &Entries,
    key: &'static str,
    parse: Parse<T>,
    conflicts: &mut Vec<FieldConflict>,
) -> Result<Option<T>, RecordError> {
    let invalid = |reason: String| RecordError::Invalid {
        field: key.to_owned(),
        reason,
    };
    let Some(entry) = root.get(key) else {
        return Ok(None);
    };
    let winner = parse(doc, &entry.value, &entry.obj).map_err(invalid)?;
    if !entry.conflict {
        return Ok(Some(winner));
    }
    let mut values: Vec<T> = Vec::new();
    for (value, obj) in doc.get_all(ROOT, key)? {
        let value = parse(doc, &value, &obj).map_err(invalid)?;
        if !values.contains(&value) {
            values.push(value);
        }
    }
    if values.len() > 1 {
        let values = values
            .iter()
            .map(|value| serde_json::to_value(value).unwrap_or_default())
            .collect();
        conflicts.push(FieldConflict {
            field: key.to_owned(),
            values,
        });
    }
    Ok(Some(winner))
}

fn parse_uint(_: &AutoCommit, value: &Value<'_>, _: &ObjId) -> Result<u64, String> {
    match value.as_scalar() {
        Some(ScalarValue::Uint(number)) => Ok(*number),
        Some(ScalarValue::Int(number)) => {
            u64::try_from(*number).map_err(|_| format!("{number} is negative"))
        }
        _ => Err(format!("expected a whole number, found {value}")),
    }
}

fn parse_queue_number(doc: &AutoCommit, value: &Value<'_>, obj: &ObjId) -> Result<u32, String> {
    let number = parse_uint(doc, value, obj)?;
    u32::try_from(number).map_err(|_| format!("{number} is too large"))
}

fn parse_text<T: FromStr>(_: &AutoCommit, value: &Value<'_>, _: &ObjId) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    let text = value
        .as_str()
        .ok_or_else(|| format!("expected a string, found {value}"))?;
    text.parse().map_err(|error: T::Err| error.to_string())
}

fn parse_time(value: &Value<'_>) -> Result<DateTime<Utc>, String> {
    match value.as_scalar() {
        Some(ScalarValue::Timestamp(millis)) => DateTime::from_timestamp_millis(*millis)
            .ok_or_else(|| format!("{millis} is out of range")),
        _ => Err(format!("expected a timestamp, found {value}")),
    }
}

/// The entries of a value that must be a map.
fn map_entries(doc: &AutoCommit, value: &Value<'_>, obj: &ObjId) -> Result<Entries, String> {
    match value {
        Value::Object(ObjType::Map) => Ok(Entries::read(doc, obj)),
        other => Err(format!("expected a map, found {other}")),
    }
}

/// One key of a nested map, parsed; `None` when absent.
fn member<T>(
    map: &Entries,
    key: &str,
    parse: impl FnOnce(&Value<'_>) -> Result<T, String>,
) -> Result<Option<T>, String> {
    match map.get(key) {
        Some(entry) => parse(&entry.value)
            .map(Some)
            .map_err(|reason| format!("`{key}`: {reason}")),
        None => Ok(None),
    }
}

fn text_member<T: FromStr>(map: &Entries, key: &str) -> Result<Option<T>, String>
where
    T::Err: std::fmt::Display,
{
    member(map, key, |value| {
        let text = value
            .as_str()
            .ok_or_else(|| format!("expected a string, found {value}"))?;
        text.parse().map_err(|error: T::Err| error.to_string())
    })
}

fn required_text<T: FromStr>(map: &Entries, key: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    text_member(map, key)?.ok_or_else(|| format!("`{key}` is missing"))
}

fn parse_person(doc: &AutoCommit, value: &Value<'_>, obj: &ObjId) -> Result<Person, String> {
    let map = map_entries(doc, value, obj)?;
    let national_number: NationalNumber = required_text(&map, "national_number")?;
    Ok(Person {
        national_number,
        name: required_text(&map, "name")?,
    })
}

fn parse_delivery(doc: &AutoCommit, value: &Value<'_>, obj: &ObjId) -> Result<Delivery, String> {
    let map = map_entries(doc, value, obj)?;
    Ok(Delivery {
        method: required_text(&map, "method")?,
        email: text_member(&map, "email")?,
    })
}

fn parse_evidence(
    doc: &AutoCommit,
    value: &Value<'_>,
    obj: &ObjId,
) -> Result<CardEvidence, String> {
    let map = map_entries(doc, value, obj)?;
    let flag = |key: &str| {
        member(&map, key, |value| match value.as_scalar() {
            Some(ScalarValue::Boolean(flag)) => Ok(*flag),
            _ => Err(format!("expected a boolean, found {value}")),
        })?
        .ok_or_else(|| format!("`{key}` is missing"))
    };
    let hash: String = required_text(&map, "identity_file_sha256")?;
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "`identity_file_sha256` is not a SHA-256 in hex: {hash:?}"
        ));
    }
    let applet_version = member(&map, "applet_version", |value| match value.as_scalar() {
        Some(ScalarValue::Uint(number)) => {
            u8::try_from(*number).map_err(|_| format!("{number} is too large"))
        }
        _ => Err(format!("expected a whole number, found {value}")),
    })?
    .ok_or("`applet_version` is missing")?;
    let holder = match map.get("holder") {
        Some(entry) => Some(
            parse_holder(doc, &entry.value, &entry.obj)
                .map_err(|reason| format!("`holder`: {reason}"))?,
        ),
        None => None,
    };
    Ok(CardEvidence {
        identity_file_sha256: hash,
        applet_version,
        register_signature_verified: flag("register_signature_verified")?,
        chip_verified: flag("chip_verified")?,
        holder,
    })
}

fn parse_holder(
    doc: &AutoCommit,
    value: &Value<'_>,
    obj: &ObjId,
) -> Result<HolderEvidence, String> {
    let map = map_entries(doc, value, obj)?;
    let bytes = |key: &str| {
        member(&map, key, |value| match value.as_scalar() {
            Some(ScalarValue::Bytes(bytes)) if !bytes.is_empty() => Ok(bytes.clone()),
            _ => Err(format!("expected bytes, found {value}")),
        })?
        .ok_or_else(|| format!("`{key}` is missing"))
    };
    Ok(HolderEvidence {
        algorithm: required_text(&map, "algorithm")?,
        signature: bytes("signature")?,
        certificate: bytes("certificate")?,
    })
}

fn parse_origin(doc: &AutoCommit, value: &Value<'_>, obj: &ObjId) -> Result<Origin, String> {
    let map = map_entries(doc, value, obj)?;
    let fix = match map.get("fix") {
        Some(entry) => Some(
            parse_fix(doc, &entry.value, &entry.obj)
                .map_err(|reason| format!("`fix`: {reason}"))?,
        ),
        None => None,
    };
    Ok(Origin {
        device: required_text(&map, "device")?,
        station: required_text(&map, "station")?,
        stop: text_member(&map, "stop")?,
        at: member(&map, "at", parse_time)?.ok_or("`at` is missing")?,
        whereabouts: Whereabouts {
            stop_source: text_member(&map, "stop_source")?,
            fix,
            clock_skew_ms: member(&map, "clock_skew_ms", |value| match value.as_scalar() {
                Some(ScalarValue::Int(number)) => Ok(*number),
                Some(ScalarValue::Uint(number)) => {
                    i64::try_from(*number).map_err(|_| format!("{number} is too large"))
                }
                _ => Err(format!("expected a whole number, found {value}")),
            })?,
        },
    })
}

fn parse_fix(doc: &AutoCommit, value: &Value<'_>, obj: &ObjId) -> Result<Fix, String> {
    let map = map_entries(doc, value, obj)?;
    let number = |value: &Value<'_>| match value.as_scalar() {
        Some(ScalarValue::F64(number)) if number.is_finite() => Ok(*number),
        _ => Err(format!("expected a finite number, found {value}")),
    };
    let required =
        |key: &str| member(&map, key, number)?.ok_or_else(|| format!("`{key}` is missing"));
    let (latitude, longitude) = (required("latitude")?, required("longitude")?);
    if !(-90.0..=90.0).contains(&latitude) || !(-180.0..=180.0).contains(&longitude) {
        return Err(format!(
            "{latitude}, {longitude} is not a position on the Earth"
        ));
    }
    let speed_mps = member(&map, "speed_mps", number)?;
    if speed_mps.is_some_and(|speed| speed < 0.0) {
        return Err("`speed_mps` is negative".into());
    }
    Ok(Fix {
        latitude,
        longitude,
        at: member(&map, "at", parse_time)?.ok_or("`at` is missing")?,
        speed_mps,
    })
}

/// The event list appends go to: the one Automerge's `get` picks.
pub(super) fn events_list(doc: &AutoCommit) -> Result<ObjId, RecordError> {
    match doc.get(ROOT, "events")? {
        Some((Value::Object(ObjType::List), list)) => Ok(list),
        Some((other, _)) => Err(invalid_events(format!("expected a list, found {other}"))),
        None => Err(RecordError::Missing {
            field: "events".into(),
        }),
    }
}

fn invalid_events(reason: String) -> RecordError {
    RecordError::Invalid {
        field: "events".into(),
        reason,
    }
}

/// Reads the events of every `events` list (two exist only if the request was created twice;
/// reading all of them loses no event), without duplicates, in list order.
pub(super) fn read_events(doc: &AutoCommit) -> Result<Vec<Event>, RecordError> {
    let mut events: Vec<Event> = Vec::new();
    for (value, list) in doc.get_all(ROOT, "events")? {
        if !matches!(value, Value::Object(ObjType::List)) {
            return Err(invalid_events(format!("expected a list, found {value}")));
        }
        for item in doc.list_range(&list, ..) {
            let index = item.index;
            let value = item.value.clone().into_value();
            let event = map_entries(doc, &value, &item.id())
                .and_then(|map| read_event(doc, &map))
                .map_err(|reason| RecordError::Invalid {
                    field: format!("events[{index}]"),
                    reason,
                })?;
            match events.iter().find(|known| known.id == event.id) {
                None => events.push(event),
                Some(known) if *known == event => {}
                Some(_) => {
                    return Err(invalid_events(format!(
                        "event {} appears twice with different content",
                        event.id
                    )));
                }
            }
        }
    }
    Ok(events)
}

fn read_event(doc: &AutoCommit, map: &Entries) -> Result<Event, String> {
    let text = |key: &str| required_text::<String>(map, key);
    let code = text("kind")?;
    let kind = match code.as_str() {
        "submitted" => EventKind::Submitted,
        "eligibility-decided" => EventKind::EligibilityDecided {
            outcome: required_text(map, "outcome")?,
            reason: text_member(map, "reason")?,
        },
        "approved" => EventKind::Approved,
        "rejected" => EventKind::Rejected {
            reason: text("reason")?,
        },
        "issued" => EventKind::Issued {
            document_id: text("document_id")?,
        },
        "receipt-printed" => EventKind::ReceiptPrinted {
            printer: text("printer")?,
        },
        "printed" => EventKind::Printed {
            printer: text("printer")?,
        },
        "handed-over" => EventKind::HandedOver,
        "emailed" => EventKind::Emailed { to: text("to")? },
        "cancelled" => EventKind::Cancelled {
            reason: text("reason")?,
        },
        "resolved" => EventKind::Resolved {
            note: text("note")?,
            kept: read_ids(doc, map, "kept")?,
        },
        other => return Err(format!("unknown event kind `{other}`")),
    };
    Ok(Event {
        id: required_text(map, "id")?,
        at: member(map, "at", parse_time)?.ok_or("`at` is missing")?,
        by: text("by")?,
        device: required_text(map, "device")?,
        kind,
        seen: read_ids(doc, map, "seen")?,
    })
}

fn read_ids(doc: &AutoCommit, map: &Entries, key: &str) -> Result<Vec<EventId>, String> {
    let list = match map.get(key) {
        Some(Entry {
            value: Value::Object(ObjType::List),
            obj,
            ..
        }) => obj,
        Some(other) => {
            return Err(format!("`{key}`: expected a list, found {}", other.value));
        }
        None => return Err(format!("`{key}` is missing")),
    };
    doc.list_range(list, ..)
        .map(|item| {
            let value = item.value.into_value();
            let text = value
                .as_str()
                .ok_or_else(|| format!("`{key}`: expected event ids, found {value}"))?;
            let uuid = Uuid::parse_str(text).map_err(|error| format!("`{key}`: {error}"))?;
            Ok(EventId::from_uuid(uuid))
        })
        .collect()
}

impl FromStr for StopSource {
    type Err = String;
    fn from_str(code: &str) -> Result<Self, String> {
        StopSource::ALL
            .iter()
            .copied()
            .find(|source| source.code() == code)
            .ok_or_else(|| format!("unknown stop source `{code}`"))
    }
}

impl FromStr for EligibilityOutcome {
    type Err = String;
    fn from_str(code: &str) -> Result<Self, String> {
        EligibilityOutcome::ALL
            .iter()
            .copied()
            .find(|outcome| outcome.code() == code)
            .ok_or_else(|| format!("unknown eligibility outcome `{code}`"))
    }
}
