//! The byte layout of the store's sled trees: the keys of chunks and indexes, the places sealed
//! values are bound to, the per-request summary, and when to compact. Pure: no sled, no IO.

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

/// `meta` key of a constant sealed with the store's key: tells a wrong key before any write.
pub(super) const KEY_CHECK: &[u8] = b"key-check";
pub(super) const KEY_CHECK_PLAINTEXT: &[u8] = b"busloket store v1";

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
