//! The bus's sync client (`sync/PROTOCOL.md`, "What the bus does"): a task that reconciles the
//! store with the city's hub over mutual TLS, the status staff see, and retention.
//!
//! - [`enrolment`]: the device bundle, checked at start, and the TLS configurations from it.
//! - [`client`]: one `POST /sync/v1/upload` and what a refusal means.
//! - [`round`]: preparing an upload from the outbox and settling the hub's answer (store work).
//! - [`schedule`]: the backoff and the retention cut-off, pure.
//! - [`status`]: what the console and `GET /api/v1/sync` show.
//!
//! The loop wakes on its interval, on staff's "sync now", and a few seconds after local writes
//! (debounced, so a busy stop does not sync per click). A round uploads batches until the outbox
//! and the hub have nothing more; a failed connection makes the node "offline" and the loop
//! backs off with full jitter. `device-revoked` stops the loop. After each successful round and
//! every hour, retention purges the citizen data of finished requests the hub acknowledged.
//!
//! Invariants: store calls run on `spawn_blocking`; the status mutex is never held across an
//! `.await`; nothing of a citizen (name, national number) is logged — only request ids, counts
//! and codes.

pub mod client;
pub mod enrolment;
pub mod round;
pub mod schedule;
pub mod status;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use busloket_provisioning::{RevocationList, load_crl};
use busloket_sync::protocol::{ProtocolError, decode_answer};
use busloket_sync::staff::{Role, parse_staff_file};
use busloket_sync::store::Store;
use chrono::Utc;
use rand::Rng;
use rustls::pki_types::CertificateDer;
use tokio::sync::Notify;
use tokio::time::Instant;

pub use self::client::{HubClient, HubError};
pub use self::enrolment::{Enrolment, EnrolmentError};
pub use self::round::{
    Backlog, Batch, PreparedUpload, Refusal, Settled, next_batch, prepare_upload, settle,
};
pub use self::schedule::{Backoff, purge_cutoff};
pub use self::status::{LinkState, RoundReport, SyncProblem, SyncStatus};

use crate::config::StaffAccount;
use crate::events::NodeEvent;
use crate::state::AppState;

/// How long the loop waits after a local write before it syncs, gathering the writes of a busy
/// moment into one round.
pub const DEBOUNCE: Duration = Duration::from_secs(3);
/// How often retention runs besides after each successful round.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);
/// Uploads in one round at most; the next round goes on where this one stopped.
const MAX_UPLOADS_PER_ROUND: usize = 64;
/// Uploads in one round at most made only because an answer left work (resets, requests to ask
/// for whole), with neither `more` nor a full batch: a guard against answers that go in circles.
const MAX_EXTRA_UPLOADS: usize = 3;
pub use busloket_sync::protocol::{CRL_FILE, STAFF_FILE, STOPS_FILE};
/// Where the node keeps the hub's revocation list as a file, to check it with `load_crl`.
const CRL_COPY: &str = "revoked.crl.pem";

/// A node that is enrolled: its bundle, the client towards the hub, and the Wi-Fi TLS server
/// configuration (unless `wifi_tls = false`).
#[derive(Debug)]
pub struct Enrolled {
    pub enrolment: Enrolment,
    pub client: HubClient,
    pub wifi_tls: Option<Arc<rustls::ServerConfig>>,
}

impl Enrolled {
    pub fn new(enrolment: Enrolment) -> Result<Enrolled, EnrolmentError> {
        let client = HubClient::new(&enrolment)?;
        let wifi_tls = if enrolment.serves_tls() {
            Some(enrolment.wifi_server_tls()?)
        } else {
            None
        };
        Ok(Enrolled {
            enrolment,
            client,
            wifi_tls,
        })
    }
}

/// The sync status and the loop's wake-ups, shared by the loop and the handlers.
#[derive(Debug)]
pub struct SyncControl {
    // A std mutex: read or replaced whole, never held across an `.await`.
    status: Mutex<SyncStatus>,
    // The bus-clerk accounts from the hub's staff file.
    staff: Mutex<Vec<StaffAccount>>,
    sync_now: Notify,
    local_change: Notify,
}

impl SyncControl {
    pub fn new(hub_url: Option<String>) -> SyncControl {
        SyncControl {
            status: Mutex::new(SyncStatus::new(hub_url)),
            staff: Mutex::new(Vec::new()),
            sync_now: Notify::new(),
            local_change: Notify::new(),
        }
    }

    /// Staff pressed "sync now".
    pub fn request_sync(&self) {
        self.sync_now.notify_one();
    }

    /// Resolves once "sync now" was asked (at once if it was asked since the last wake-up).
    pub async fn sync_requested(&self) {
        self.sync_now.notified().await;
    }

    /// A request was written here: sync soon.
    pub fn local_change(&self) {
        self.local_change.notify_one();
    }

    /// The status as last set by the loop; `waiting` and `set_aside` are filled by
    /// [`current_status`].
    pub fn status(&self) -> SyncStatus {
        lock(&self.status).clone()
    }

    fn update(&self, change: impl FnOnce(&mut SyncStatus)) {
        change(&mut lock(&self.status));
    }

    /// The accounts from the hub's staff file with the bus-clerk role.
    pub fn synced_staff(&self) -> Vec<StaffAccount> {
        lock(&self.staff).clone()
    }

    /// Takes a staff file from the hub: its bus clerks become accounts of this node. A file
    /// that does not parse changes nothing (and is logged).
    pub fn take_staff_file(&self, bytes: &[u8]) {
        let parsed = std::str::from_utf8(bytes)
            .map_err(|error| error.to_string())
            .and_then(bus_clerks_from);
        match parsed {
            Ok(accounts) => {
                let count = accounts.len();
                *lock(&self.staff) = accounts;
                self.update(|status| status.synced_staff = Some(count));
            }
            Err(error) => tracing::warn!("the hub's staff file is refused: {error}"),
        }
    }

    /// Takes a revocation list from the hub: checked against the city's CA, it gives the count
    /// of revoked devices, and tells whether this device is one of them. Blocking file work: at
    /// start only; the loop uses [`SyncControl::take_crl_blocking`].
    fn take_crl(&self, enrolment: &Enrolment, data_dir: &Path, bytes: &[u8]) {
        let crl = write_and_load_crl(data_dir, enrolment.bundle.ca_certificate(), bytes);
        self.use_crl(enrolment, crl);
    }

    /// [`SyncControl::take_crl`] with the file written and read on `spawn_blocking`.
    async fn take_crl_blocking(&self, enrolment: &Enrolment, data_dir: &Path, bytes: Vec<u8>) {
        let data_dir = data_dir.to_owned();
        let ca = enrolment.bundle.ca_certificate().clone();
        let crl = tokio::task::spawn_blocking(move || write_and_load_crl(&data_dir, &ca, &bytes))
            .await
            .unwrap_or_else(|error| Err(error.into()));
        self.use_crl(enrolment, crl);
    }

    fn use_crl(&self, enrolment: &Enrolment, crl: anyhow::Result<RevocationList>) {
        match crl {
            Ok(crl) => {
                let count = crl.revoked.len();
                let revoked = enrolment.bundle.check_not_revoked(&crl).is_err();
                self.update(|status| {
                    status.revoked_devices = Some(count);
                    if revoked {
                        status.state = LinkState::Revoked;
                    }
                })
            }
            Err(error) => tracing::warn!("the hub's revocation list is refused: {error:#}"),
        }
    }

    /// At start: the synced files the store kept from earlier rounds.
    pub fn restore(&self, store: &Store, enrolment: &Enrolment, data_dir: &Path) {
        match store.synced_file(STAFF_FILE) {
            Ok(Some(file)) => self.take_staff_file(&file.bytes),
            Ok(None) => {}
            Err(error) => tracing::warn!("cannot read the synced staff file: {error}"),
        }
        match store.synced_file(CRL_FILE) {
            Ok(Some(file)) => self.take_crl(enrolment, data_dir, &file.bytes),
            Ok(None) => {}
            Err(error) => tracing::warn!("cannot read the synced revocation list: {error}"),
        }
    }
}

/// The accounts of a staff file with the bus-clerk role, as this node's staff accounts.
fn bus_clerks_from(text: &str) -> Result<Vec<StaffAccount>, String> {
    let entries = parse_staff_file(text).map_err(|error| error.to_string())?;
    Ok(entries
        .into_iter()
        .filter(|entry| entry.has_role(Role::BusClerk))
        .map(|entry| StaffAccount {
            username: entry.username,
            display_name: entry.display_name,
            password_hash: entry.password_hash,
            eid: entry.eid,
        })
        .collect())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes the list beside the store (atomically) and reads it back with `load_crl`, which
/// checks the CA's signature. Blocking file work.
fn write_and_load_crl(
    data_dir: &Path,
    ca: &CertificateDer<'static>,
    bytes: &[u8],
) -> anyhow::Result<RevocationList> {
    let path: PathBuf = data_dir.join(CRL_COPY);
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, &path)?;
    Ok(load_crl(&path, ca)?)
}

/// The status with the figures read from the store now.
pub async fn current_status(state: &AppState) -> SyncStatus {
    let mut status = state.sync.status();
    let store = state.store.clone();
    let counts = tokio::task::spawn_blocking(move || {
        let set_aside = store
            .sync_state()
            .map(|state| state.set_aside.len())
            .unwrap_or(0);
        (store.outbox_len(), set_aside)
    })
    .await;
    if let Ok((waiting, set_aside)) = counts {
        status.waiting = waiting;
        status.set_aside = set_aside;
    }
    status
}

/// Why a round stopped.
#[derive(Debug, thiserror::Error)]
pub enum RoundError {
    #[error(transparent)]
    Hub(#[from] HubError),
    /// The answer is not for this upload (or not an answer): dropped, nothing applied.
    #[error("the hub's answer is refused: {0}")]
    Answer(#[from] ProtocolError),
    #[error("the store failed during the round: {0:#}")]
    Store(anyhow::Error),
}

impl RoundError {
    pub fn code(&self) -> &str {
        match self {
            RoundError::Hub(error) => error.code(),
            RoundError::Answer(error) => error.code(),
            RoundError::Store(_) => "store",
        }
    }

    fn is_revoked(&self) -> bool {
        self.code() == "device-revoked"
    }
}

/// One round: uploads until the outbox and the hub have nothing more (or
/// [`MAX_UPLOADS_PER_ROUND`]); each upload's answer is applied and acknowledged before the next.
#[tracing::instrument(name = "sync_round", skip_all)]
pub async fn sync_round(state: &AppState, enrolled: &Enrolled) -> Result<RoundReport, RoundError> {
    let started = Instant::now();
    let device = state.config.device_id.clone();
    let mut report = RoundReport::default();
    let mut extra_uploads = 0;
    for _ in 0..MAX_UPLOADS_PER_ROUND {
        let store = state.store.clone();
        let key = enrolled.enrolment.bundle.device_signing_key().clone();
        let upload_device = device.clone();
        let (before, mut prepared) = blocking(move || {
            let before = Backlog::read(&store)?;
            let prepared = prepare_upload(
                &store,
                &key,
                &upload_device,
                Utc::now(),
                round::DEFAULT_BATCH_BYTES,
            )?;
            Ok((before, prepared))
        })
        .await?;
        let body = std::mem::take(&mut prepared.body);
        report.round_trips += 1;
        report.bytes_up += body.len();
        report.requests_sent += prepared.sent.len();
        let answer_body = match enrolled.client.upload(body).await {
            Ok(answer_body) => answer_body,
            Err(error) => {
                set_aside_refused_request(state, prepared, &error).await;
                return Err(error.into());
            }
        };
        report.bytes_down += answer_body.len();
        // zstd and postcard over up to 16 MiB: off the async runtime.
        let (answer_device, counter) = (device.clone(), prepared.counter);
        let answer = tokio::task::spawn_blocking(move || {
            decode_answer(&answer_body, &answer_device, counter)
        })
        .await
        .map_err(|error| RoundError::Store(error.into()))??;
        let store = state.store.clone();
        // Requests or trip log lines that did not fit: upload again at once.
        let left_for_later = prepared.left_for_later > 0 || prepared.trip_left;
        let (settled, after) = blocking(move || {
            let settled = settle(&store, &prepared, answer)?;
            Ok((settled, Backlog::read(&store)?))
        })
        .await?;
        tracing::info!(
            upload = report.round_trips,
            created = settled.created,
            updated = settled.updated,
            acknowledged = settled.acknowledged,
            refused = settled.refused.len(),
            more = settled.more,
            "sync upload answered"
        );
        if settled.created + settled.updated > 0 {
            state.events.send(NodeEvent::Request);
        }
        take_files(state, enrolled, &settled).await;
        report.requests_created += settled.created;
        report.requests_updated += settled.updated;
        report.requests_received += settled.created + settled.updated;
        report.refused.extend(settled.refused);
        report.files.extend(settled.files);
        if settled.more || left_for_later {
            continue;
        }
        // Resets and requests to ask for whole are sent at once, as long as an upload changes
        // what is left; one that changed nothing would change nothing again.
        if !round::upload_again(&before, &after) || extra_uploads == MAX_EXTRA_UPLOADS {
            break;
        }
        extra_uploads += 1;
    }
    report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    report.finished_at = Some(Utc::now());
    Ok(report)
}

/// When the hub refused the whole upload for one request it carried (a per-request code), sets
/// that request aside so the next upload sends the rest; staff see it with the set-aside ones.
async fn set_aside_refused_request(state: &AppState, prepared: PreparedUpload, error: &HubError) {
    let HubError::Refused { code, message, .. } = error else {
        return;
    };
    let store = state.store.clone();
    let (code, message) = (code.clone(), message.clone());
    let result = tokio::task::spawn_blocking(move || {
        round::set_aside_refused(&store, &prepared, &code, &message).map(|id| (id, code))
    })
    .await;
    match result {
        Ok(Ok((Some(id), code))) => {
            tracing::warn!(%id, code, "the hub refused an upload for this request: set aside")
        }
        Ok(Ok((None, _))) => {}
        Ok(Err(error)) => tracing::warn!("cannot set the refused request aside: {error}"),
        Err(error) => tracing::warn!("cannot set the refused request aside: {error}"),
    }
}

/// The synced files an answer brought, now in the store, taken into use.
async fn take_files(state: &AppState, enrolled: &Enrolled, settled: &Settled) {
    for file in &settled.files {
        let store = state.store.clone();
        let name = file.name.clone();
        let Ok(Ok(Some(file))) =
            tokio::task::spawn_blocking(move || store.synced_file(&name)).await
        else {
            continue;
        };
        match file.name.as_str() {
            STAFF_FILE => state.sync.take_staff_file(&file.bytes),
            STOPS_FILE => state.position.take_schedule_file(&file.bytes),
            CRL_FILE => {
                state
                    .sync
                    .take_crl_blocking(&enrolled.enrolment, &state.config.data_dir, file.bytes)
                    .await
            }
            other => tracing::info!(name = other, "a synced file this node does not use"),
        }
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, busloket_sync::store::StoreError> + Send + 'static,
) -> Result<T, RoundError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(|error| RoundError::Store(error.into())),
        Err(error) => Err(RoundError::Store(error.into())),
    }
}

/// Purges what retention allows (finished requests and the trip log the hub has); returns how
/// many requests it purged.
pub async fn purge(state: &AppState, enrolled: &Enrolled) -> usize {
    let now = Utc::now();
    let cutoff = purge_cutoff(enrolled.enrolment.settings.retention, now);
    let store = state.store.clone();
    let device = state.config.device_id.clone();
    let purged = tokio::task::spawn_blocking(move || {
        // The trip log the hub has goes with the same cut-off; a failure there is logged and
        // leaves the requests' retention to run.
        match store.purge_trip(cutoff) {
            Ok(0) => {}
            Ok(removed) => {
                tracing::info!(removed, %cutoff, "retention removed trip log entries the hub has")
            }
            Err(error) => tracing::warn!("trip log retention failed: {error}"),
        }
        store.purge_acknowledged(cutoff, now, &device)
    })
    .await;
    match purged {
        Ok(Ok(purged)) => {
            if purged > 0 {
                tracing::info!(purged, %cutoff, "retention purged finished requests");
                state.sync.update(|status| status.purged += purged);
                state.events.send(NodeEvent::Request);
            }
            purged
        }
        Ok(Err(error)) => {
            tracing::warn!("retention failed: {error}");
            0
        }
        Err(error) => {
            tracing::warn!("retention failed: {error}");
            0
        }
    }
}

/// The sync loop; ends when the node stops or the device is revoked.
pub async fn run_loop(state: AppState, enrolled: Arc<Enrolled>) {
    let control = state.sync.clone();
    let interval = enrolled.enrolment.settings.interval;
    let mut backoff = Backoff::default();
    // The first round at once: the bus may have come back with a day's requests.
    let mut next_round = Instant::now();
    let mut next_retention = Instant::now() + RETENTION_EVERY;
    tracing::info!(
        hub = enrolled.enrolment.bundle.hub_url(),
        "sync loop started"
    );
    loop {
        if control.status().state == LinkState::Revoked {
            tracing::warn!("this device is revoked: syncing stops");
            return;
        }
        control.update(|status| {
            status.next_attempt = Some(
                Utc::now()
                    + chrono::Duration::from_std(next_round - Instant::now()).unwrap_or_default(),
            )
        });
        state.events.send(NodeEvent::Sync);
        // Local writes wake the loop only while the hub is reachable; while backing off only
        // the pause, staff and the interval do.
        let online = backoff.failures() == 0;
        let woken_by_write = tokio::select! {
            () = state.shutdown.cancelled() => return,
            () = tokio::time::sleep_until(next_round) => false,
            () = control.sync_now.notified() => false,
            () = control.local_change.notified(), if online => true,
            () = tokio::time::sleep_until(next_retention) => {
                purge(&state, &enrolled).await;
                next_retention = Instant::now() + RETENTION_EVERY;
                continue;
            }
        };
        if woken_by_write {
            // Staff pressing "Sync now" during the pause ends it.
            tokio::select! {
                () = state.shutdown.cancelled() => return,
                () = tokio::time::sleep(DEBOUNCE) => {}
                () = control.sync_now.notified() => {}
            }
        }
        control.update(|status| {
            status.last_attempt = Some(Utc::now());
            status.next_attempt = None;
        });
        // The staff console shows the round as under way.
        state.events.send(NodeEvent::Sync);
        let result = tokio::select! {
            () = state.shutdown.cancelled() => return,
            result = sync_round(&state, &enrolled) => result,
        };
        match result {
            Ok(report) => {
                backoff.succeeded();
                next_round = Instant::now() + interval;
                tracing::info!(
                    round_trips = report.round_trips,
                    bytes_up = report.bytes_up,
                    bytes_down = report.bytes_down,
                    sent = report.requests_sent,
                    received = report.requests_received,
                    refused = report.refused.len(),
                    duration_ms = report.duration_ms,
                    "sync round done"
                );
                control.update(|status| {
                    if status.state != LinkState::Revoked {
                        status.state = LinkState::Online;
                    }
                    status.last_success = report.finished_at;
                    status.last_error = None;
                    status.last_round = Some(report);
                });
                purge(&state, &enrolled).await;
            }
            Err(error) => {
                let pause = backoff.failed(rand::thread_rng().r#gen::<f64>());
                let revoked = error.is_revoked();
                match &error {
                    RoundError::Hub(HubError::Unreachable(_)) => {
                        tracing::info!(
                            pause_ms = pause.as_millis() as u64,
                            "hub unreachable: {error}"
                        )
                    }
                    _ => tracing::warn!(
                        code = error.code(),
                        pause_ms = pause.as_millis() as u64,
                        "sync round failed: {error}"
                    ),
                }
                next_round = Instant::now() + pause;
                control.update(|status| {
                    status.state = if revoked {
                        LinkState::Revoked
                    } else {
                        LinkState::Offline
                    };
                    status.last_error = Some(SyncProblem {
                        code: error.code().to_owned(),
                        message: error.to_string(),
                        at: Utc::now(),
                    });
                });
            }
        }
        state.events.send(NodeEvent::Sync);
    }
}
