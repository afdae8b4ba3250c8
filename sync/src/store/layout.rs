//! The byte layout of the store's sled trees: the keys of chunks and indexes, the places sealed
//! values are bound to, the per-request summary, the encodings of the sync state, and when to
//! compact. Pure: no sled, no IO.

use automerge::ChangeHash;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::record::{RequestView, Status};
use crate::terms::{Channel, DocumentCode, RequestId, StopId};

pub(super) const CHUNKS: &str = "chunks";
pub(super) const SUMMARIES: &str = "summaries";
pub(super) const BY_DAY: &str = "by_day";
pub(super) const BY_STATUS: &str = "by_status";
pub(super) const BY_STOP: &str = "by_stop";
pub(super) const QUEUE_NUMBERS: &str = "queue_numbers";
pub(super) const META: &str = "meta";
pub(super) const HEADS: &str = "heads";
pub(super) const OUTBOX: &str = "outbox";
pub(super) const ACKED: &str = "acked";
pub(super) const SET_ASIDE: &str = "set_aside";
pub(super) const SYNCED_FILES: &str = "synced_files";
/// Trip log entry number (u64 BE) → sealed postcard [`crate::trip::TripEntry`].
pub(super) const TRIP: &str = "trip";

/// `meta` key of a constant sealed with the store's key: tells a wrong key before any write.
pub(super) const KEY_CHECK: &[u8] = b"key-check";
pub(super) const KEY_CHECK_PLAINTEXT: &[u8] = b"busloket store v1";
/// `meta` key: present once every record has its `heads` entry (stores made before the sync
/// state are brought up to date when they are opened).
pub(super) const SYNC_LAYOUT: &[u8] = b"sync-layout";
/// `meta` key: the last upload counter given out (u64 BE).
pub(super) const UPLOAD_COUNTER: &[u8] = b"upload-counter";
/// `meta` key: the `answer_seq` of the last answer made durable (u64 BE).
pub(super) const ANSWER_APPLIED: &[u8] = b"answer-applied";
/// `meta` key: the requests to ask the hub for whole (n × 16 B ids).
pub(super) const NEED_WHOLE: &[u8] = b"need-whole";
/// `meta` key: the number of the last trip log entry the hub has (u64 BE).
pub(super) const TRIP_ACKED: &[u8] = b"trip-acked";

/// Compact when a record has more incremental chunks than this.
pub(super) const MAX_INCREMENTALS: usize = 16;

const ID_LEN: usize = 16;
pub(super) const CHUNK_KEY_LEN: usize = ID_LEN + 1 + 8;

/// What a chunk holds. The byte sorts snapshots before incrementals within a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChunkKind {
    /// A whole document (`save()`).
    Snapshot = 0,
    /// Changes since the previous chunks (`save_after(heads)`).
    Incremental = 1,
}

/// `id (16 B) ‖ kind (1 B) ‖ sequence (u64 big-endian)`.
pub(super) fn chunk_key(id: RequestId, kind: ChunkKind, seq: u64) -> [u8; CHUNK_KEY_LEN] {
    let mut key = [0u8; CHUNK_KEY_LEN];
    key[..ID_LEN].copy_from_slice(id.as_bytes());
    key[ID_LEN] = kind as u8;
    key[ID_LEN + 1..].copy_from_slice(&seq.to_be_bytes());
    key
}

pub(super) fn parse_chunk_key(key: &[u8]) -> Option<(ChunkKind, u64)> {
    if key.len() != CHUNK_KEY_LEN {
        return None;
    }
    let kind = match key[ID_LEN] {
        0 => ChunkKind::Snapshot,
        1 => ChunkKind::Incremental,
        _ => return None,
    };
    Some((kind, u64::from_be_bytes(key[ID_LEN + 1..].try_into().ok()?)))
}

/// The place a sealed value is bound to: tree name and key.
pub(super) fn place(tree: &str, key: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(tree.len() + 1 + key.len());
    aad.extend_from_slice(tree.as_bytes());
    aad.push(b'/');
    aad.extend_from_slice(key);
    aad
}

/// `YYYY-MM-DD`: sorts by date.
pub(super) fn day_key(day: NaiveDate) -> Vec<u8> {
    day.format("%Y-%m-%d").to_string().into_bytes()
}

/// Heads as stored: sorted, n × 32 bytes, so two encodings are equal when the sets are.
pub(super) fn encode_heads(heads: &[ChangeHash]) -> Vec<u8> {
    let mut sorted = heads.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted.iter().flat_map(|hash| hash.0).collect()
}

pub(super) fn decode_heads(bytes: &[u8]) -> Option<Vec<ChangeHash>> {
    if !bytes.len().is_multiple_of(32) {
        return None;
    }
    bytes
        .chunks_exact(32)
        .map(|hash| Some(ChangeHash(hash.try_into().ok()?)))
        .collect()
}

/// Request ids one after the other, 16 bytes each.
pub(super) fn encode_ids(ids: &[RequestId]) -> Vec<u8> {
    ids.iter().flat_map(|id| *id.as_bytes()).collect()
}

pub(super) fn decode_ids(bytes: &[u8]) -> Option<Vec<RequestId>> {
    if !bytes.len().is_multiple_of(ID_LEN) {
        return None;
    }
    bytes
        .chunks_exact(ID_LEN)
        .map(|id| Some(RequestId::from_bytes(id.try_into().ok()?)))
        .collect()
}

pub(super) fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// A synced file as sealed: its version (u64 BE), then its bytes.
pub(super) fn encode_synced_file(version: u64, bytes: &[u8]) -> Vec<u8> {
    [&version.to_be_bytes(), bytes].concat()
}

pub(super) fn decode_synced_file(plaintext: &[u8]) -> Option<(u64, &[u8])> {
    let (version, bytes) = plaintext.split_at_checked(8)?;
    Some((decode_u64(version)?, bytes))
}

/// The last 16 bytes of an index key.
pub(super) fn id_from_index_key(key: &[u8]) -> Option<RequestId> {
    let start = key.len().checked_sub(ID_LEN)?;
    Some(RequestId::from_bytes(key[start..].try_into().ok()?))
}

/// What lists show of a request without loading it. Stored sealed: it names the subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestSummary {
    pub id: RequestId,
    pub document: DocumentCode,
    pub queue_number: u32,
    pub subject_name: String,
    /// The subject's national number masked, `YY.MM.DD-xxx.xx`.
    pub subject_number: String,
    pub status: Status,
    /// The date of the request's origin, in UTC. The bus serves between morning and evening, so
    /// the UTC date is the Belgian date; a request made between midnight and 01:00/02:00 local
    /// time would count for the day before.
    pub day: NaiveDate,
    pub stop: Option<StopId>,
    pub station: String,
    pub channel: Channel,
    /// When the request was made (its origin).
    pub created_at: DateTime<Utc>,
    /// The time of its latest event.
    pub updated_at: DateTime<Utc>,
    /// The record was purged after its retention: the store keeps this summary only, without
    /// the names and national numbers. Absent in summaries stored before purging existed.
    #[serde(default)]
    pub purged: bool,
}

impl RequestSummary {
    pub fn of(view: &RequestView) -> RequestSummary {
        let fields = &view.fields;
        let created_at = fields.origin.at;
        RequestSummary {
            id: fields.id,
            document: fields.document.clone(),
            queue_number: fields.queue_number,
            subject_name: fields.subject.name.clone(),
            subject_number: fields.subject.national_number.masked(),
            status: view.status,
            day: created_at.date_naive(),
            stop: fields.origin.stop.clone(),
            station: fields.origin.station.clone(),
            channel: fields.channel,
            created_at,
            updated_at: view
                .events
                .iter()
                .map(|event| event.at)
                .max()
                .unwrap_or(created_at)
                .max(created_at),
            purged: false,
        }
    }

    /// What the indicators and the day's lists still need once the citizen data is gone: every
    /// field but the subject's name and national number (the station and stop name places,
    /// not people).
    pub fn redacted(&self) -> RequestSummary {
        RequestSummary {
            subject_name: String::new(),
            subject_number: String::new(),
            purged: true,
            ..self.clone()
        }
    }
}

/// The index keys of one summary; all values are empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct IndexKeys {
    /// `day ‖ id`
    pub by_day: Vec<u8>,
    /// `status code ‖ 0 ‖ id`
    pub by_status: Vec<u8>,
    /// `stop ‖ 0 ‖ day ‖ id`, for requests made at a stop.
    pub by_stop: Option<Vec<u8>>,
}

impl IndexKeys {
    pub fn of(summary: &RequestSummary) -> IndexKeys {
        let id = summary.id.as_bytes();
        let day = day_key(summary.day);
        IndexKeys {
            by_day: [day.as_slice(), id].concat(),
            by_status: status_prefix(summary.status)
                .into_iter()
                .chain(id.iter().copied())
                .collect(),
            by_stop: summary
                .stop
                .as_ref()
                .map(|stop| [stop_day_prefix(stop, summary.day).as_slice(), id].concat()),
        }
    }
}

pub(super) fn status_prefix(status: Status) -> Vec<u8> {
    [status.code().as_bytes(), &[0]].concat()
}

pub(super) fn stop_day_prefix(stop: &StopId, day: NaiveDate) -> Vec<u8> {
    [stop.as_str().as_bytes(), &[0], day_key(day).as_slice()].concat()
}

/// The on-disk sizes of a record's chunks, to decide compaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct ChunkSizes {
    pub snapshot_bytes: usize,
    pub incremental_bytes: usize,
    pub incrementals: usize,
}

impl ChunkSizes {
    /// After adding an incremental chunk of `new_bytes`, is it time to write a new snapshot?
    /// As automerge-repo: when the incrementals weigh as much as the snapshot, or are many.
    pub fn should_compact(&self, new_bytes: usize) -> bool {
        self.incremental_bytes + new_bytes >= self.snapshot_bytes
            || self.incrementals + 1 > MAX_INCREMENTALS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_as_the_layout_needs() {
        let id = RequestId::new(1_700_000_000_000, [1; 10]);
        let snapshot = chunk_key(id, ChunkKind::Snapshot, 9);
        let first = chunk_key(id, ChunkKind::Incremental, 1);
        let second = chunk_key(id, ChunkKind::Incremental, 2);
        assert!(snapshot < first && first < second);
        assert_eq!(parse_chunk_key(&second), Some((ChunkKind::Incremental, 2)));
        assert_eq!(parse_chunk_key(&second[1..]), None);
        let day = NaiveDate::from_ymd_opt(2025, 3, 9).unwrap();
        assert_eq!(day_key(day), b"2025-03-09");
        let stop: StopId = "markt".parse().unwrap();
        let key = [stop_day_prefix(&stop, day).as_slice(), id.as_bytes()].concat();
        assert_eq!(&key[..16], b"markt\x002025-03-09");
        assert_eq!(id_from_index_key(&key), Some(id));
    }

    #[test]
    fn sync_encodings_round_trip() {
        let heads = [
            ChangeHash([9; 32]),
            ChangeHash([1; 32]),
            ChangeHash([9; 32]),
        ];
        let encoded = encode_heads(&heads);
        assert_eq!(encoded.len(), 64, "sorted, without duplicates");
        assert_eq!(
            decode_heads(&encoded),
            Some(vec![ChangeHash([1; 32]), ChangeHash([9; 32])])
        );
        assert_eq!(decode_heads(&encoded[1..]), None);
        assert_eq!(decode_heads(&[]), Some(Vec::new()));
        let ids = [RequestId::new(1, [1; 10]), RequestId::new(2, [2; 10])];
        assert_eq!(decode_ids(&encode_ids(&ids)), Some(ids.to_vec()));
        assert_eq!(decode_ids(&[0; 17]), None);
        let file = encode_synced_file(7, b"crl");
        assert_eq!(decode_synced_file(&file), Some((7, &b"crl"[..])));
        assert_eq!(decode_synced_file(&file[..7]), None);
    }

    #[test]
    fn summaries_stored_before_purging_existed_still_open() {
        let json = r#"{"id":"0197712f-9000-7707-0707-070700000001","document":"birth-extract",
            "queue_number":2,"subject_name":"Marie Peeters","subject_number":"85.07.31-xxx.xx",
            "status":"submitted","day":"2025-06-15","stop":"markt","station":"kiosk-1",
            "channel":"bus-kiosk","created_at":"2025-06-15T08:01:00Z",
            "updated_at":"2025-06-15T08:01:00Z"}"#;
        let summary: RequestSummary = serde_json::from_str(json).unwrap();
        assert!(!summary.purged);
        let redacted = summary.redacted();
        assert!(redacted.purged);
        let text = serde_json::to_string(&redacted).unwrap();
        assert!(
            !text.contains("Peeters") && !text.contains("85.07.31"),
            "{text}"
        );
        assert_eq!(IndexKeys::of(&redacted), IndexKeys::of(&summary));
    }

    #[test]
    fn compaction_rule() {
        let sizes = ChunkSizes {
            snapshot_bytes: 1000,
            incremental_bytes: 800,
            incrementals: 3,
        };
        assert!(!sizes.should_compact(199));
        assert!(sizes.should_compact(200));
        let many = ChunkSizes {
            snapshot_bytes: 1_000_000,
            incremental_bytes: 10,
            incrementals: 16,
        };
        assert!(many.should_compact(1));
    }
}
