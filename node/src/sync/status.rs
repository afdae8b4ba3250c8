//! What the staff console and `GET /api/v1/sync` show of syncing: the link, the last success,
//! the last problem, what waits, and what the last round brought. No citizen data: request ids,
//! counts and codes only.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::round::Refusal;
use busloket_sync::protocol::FileVersion;

/// The link to the hub, as far as syncing goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkState {
    /// No `[sync]` in the configuration: this node does not sync.
    NotConfigured,
    /// Configured, no round finished yet.
    Never,
    /// The last round went through.
    Online,
    /// The last round did not: no connection, or the hub refused.
    Offline,
    /// The hub says the city revoked this device: syncing has stopped.
    Revoked,
}

impl LinkState {
    pub fn code(self) -> &'static str {
        match self {
            LinkState::NotConfigured => "not-configured",
            LinkState::Never => "never",
            LinkState::Online => "online",
            LinkState::Offline => "offline",
            LinkState::Revoked => "revoked",
        }
    }
}

/// The last problem, with the hub's stable code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncProblem {
    pub code: String,
    pub message: String,
    pub at: DateTime<Utc>,
}

/// One round's figures and results (a round may be several uploads when the outbox or the hub
/// has more than a batch).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RoundReport {
    pub finished_at: Option<DateTime<Utc>>,
    /// HTTPS round trips (uploads) in the round.
    pub round_trips: usize,
    pub bytes_up: usize,
    pub bytes_down: usize,
    /// Requests uploaded.
    pub requests_sent: usize,
    /// Requests the hub sent back with changes the bus did not have (created or updated here).
    pub requests_received: usize,
    pub requests_created: usize,
    pub requests_updated: usize,
    /// Requests the hub refused (or whose changes from the hub did not apply).
    pub refused: Vec<Refusal>,
    /// Synced files received.
    pub files: Vec<FileVersion>,
    pub duration_ms: u64,
}

/// The whole status, as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncStatus {
    pub state: LinkState,
    pub hub_url: Option<String>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_attempt: Option<DateTime<Utc>>,
    pub last_error: Option<SyncProblem>,
    /// Requests waiting to go to the hub (the outbox), read when the status is.
    pub waiting: usize,
    /// Requests the hub set aside as invalid (kept at the hub for central IT).
    pub set_aside: usize,
    pub last_round: Option<RoundReport>,
    /// Devices on the city's revocation list, as the hub last sent it.
    pub revoked_devices: Option<usize>,
    /// Staff accounts for this bus from the hub's staff file.
    pub synced_staff: Option<usize>,
    /// Requests purged by retention since the node started.
    pub purged: usize,
    /// When the loop tries next (while backing off: the end of the pause).
    pub next_attempt: Option<DateTime<Utc>>,
}

impl SyncStatus {
    pub fn new(hub_url: Option<String>) -> SyncStatus {
        SyncStatus {
            state: if hub_url.is_some() {
                LinkState::Never
            } else {
                LinkState::NotConfigured
            },
            hub_url,
            last_success: None,
            last_attempt: None,
            last_error: None,
            waiting: 0,
            set_aside: 0,
            last_round: None,
            revoked_devices: None,
            synced_staff: None,
            purged: 0,
            next_attempt: None,
        }
    }
}
