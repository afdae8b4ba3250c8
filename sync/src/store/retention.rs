//! Retention (DESIGN: "once the hub has acknowledged a finished request, the bus purges its
//! citizen data after the configured retention, keeping only what the indicators need").
//!
//! A purged request keeps its summary, redacted ([`RequestSummary::redacted`]: no name, no
//! national number, marked `purged`), and its index entries, so the day's lists and the
//! indicators still count it. Its chunks, heads and acknowledged heads are gone: `load` returns
//! `None`, `update` says `NotFound`, `insert_new` says `AlreadyExists`, and the hub's later
//! changes to it are not taken (`apply_remote` answers `Unchanged`): the hub is the record of
//! the request from then on.
//!
//! Each purge writes an access-log entry first, then the purge in one transaction, flushed. A
//! crash between the two leaves an entry for a purge that the next run does again (and logs
//! again): the log may say twice that data was deleted, never nothing.

use chrono::{DateTime, Utc};

use super::layout::{IndexKeys, RequestSummary};
use super::{ChangeOrigin, Store, StoreError, Write};
use crate::access_log::AccessEntry;
use crate::record::{RecordError, Status};
use crate::terms::{DeviceId, RequestId};

/// Who the access log names for a purge.
pub const PURGED_BY: &str = "node:retention";
/// The purpose of a purge's access-log entry: fixed text, no personal data.
pub const PURGE_PURPOSE: &str = "purged: retention of a finished, acknowledged request ended";

impl Store {
    /// Purges the citizen data of every request that is finished, not in the outbox,
    /// acknowledged by the hub with its current heads, and whose last event is before
    /// `finished_before`; returns how many it purged. `purged_at` and `device` (this node) go
    /// into each purge's access-log entry. One transaction per request, flushed.
    pub fn purge_acknowledged(
        &self,
        finished_before: DateTime<Utc>,
        purged_at: DateTime<Utc>,
        device: &DeviceId,
    ) -> Result<usize, StoreError> {
        let mut candidates = Vec::new();
        for status in Status::ALL.iter().filter(|status| status.is_finished()) {
            candidates.extend(self.ids_by_status(*status)?);
        }
        candidates.sort();
        let mut purged = 0;
        for id in candidates {
            if self.purge_one(id, finished_before, purged_at, device)? {
                purged += 1;
            }
        }
        Ok(purged)
    }

    fn purge_one(
        &self,
        id: RequestId,
        finished_before: DateTime<Utc>,
        purged_at: DateTime<Utc>,
        device: &DeviceId,
    ) -> Result<bool, StoreError> {
        let _guard = self.lock();
        if self.outbox.contains_key(id.as_bytes())? {
            return Ok(false);
        }
        // Without heads the store holds no chunks: purged already, or never had them.
        let (Some(heads), Some(acked)) = (
            self.heads.get(id.as_bytes())?,
            self.acked.get(id.as_bytes())?,
        ) else {
            return Ok(false);
        };
        if heads != acked {
            return Ok(false);
        }
        let Some(loaded) = self.load_locked(id)? else {
            return Ok(false);
        };
        let corrupt = |cause: RecordError| StoreError::Corrupt {
            id,
            what: "record".into(),
            cause: cause.into(),
        };
        let view = loaded.record.view().map_err(corrupt)?;
        let summary = RequestSummary::of(&view);
        if !summary.status.is_finished() || summary.updated_at >= finished_before {
            return Ok(false);
        }
        let (_, old_index) = self.index_before(id, &loaded.record)?;
        self.access_log.append(&AccessEntry {
            at: purged_at,
            who: PURGED_BY.into(),
            // The access log's entries name whose data they are about: the purge is the last
            // entry of this subject's request, and the log is sealed like every entry.
            subject: view.fields.subject.national_number,
            data: vec!["identity".into(), "request".into()],
            purpose: PURGE_PURPOSE.into(),
            request: Some(id),
            device: device.clone(),
        })?;
        let redacted = summary.redacted();
        self.commit(Write {
            id,
            put_chunks: Vec::new(),
            delete_chunks: loaded.chunk_keys,
            sealed_summary: self.seal_summary(&redacted),
            old_index,
            new_index: IndexKeys::of(&redacted),
            heads: None,
            origin: ChangeOrigin::Purge,
        })?;
        tracing::debug!(%id, "purged the citizen data of a finished request");
        Ok(true)
    }
}
