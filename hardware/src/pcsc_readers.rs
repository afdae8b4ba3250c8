//! The real card readers: Belgian eID cards through pcscd (feature `pcsc`).
//!
//! Every pcsc call blocks, so this driver keeps its calls on threads of its own: one monitor
//! thread with its own context follows readers and cards (`SCardGetStatusChange`, with the PnP
//! notification for readers plugged in or out) and re-creates its context when pcscd goes away;
//! each identity read runs on a blocking thread with a fresh context, connects, reads and
//! verifies everything (`crate::eid`), and disconnects with a reset so no state is left on the
//! card for the next program. A card pulled mid-read is [`CardError::CardRemoved`], never a
//! half-read identity. Holder authentication (PIN, then the authentication key's signature) is
//! in [`holder`], on the same terms: its own thread and context, a transaction, a reset at the end.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures::future::BoxFuture;
use pcsc::{Context, Disposition, Protocols, ReaderState, Scope, ShareMode, State};
use rand::RngCore;
use tokio::sync::broadcast;

mod holder;

use crate::card::{
    CardError, CardEvent, CardEvidence, CardIdentity, CardReaders, HolderRequest, HolderSignature,
    ReaderState as Reader,
};
use crate::eid::{
    CardSession, FilePath, SessionError, Transmit, TransmitError, TrustAnchors, VerifyError,
    verify_card,
};

/// How long one status-change wait lasts before the monitor looks at its stop flag again.
const POLL: Duration = Duration::from_millis(500);
/// The longest wait between two attempts to reach pcscd.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Card readers on this machine, through pcscd.
pub struct PcscReaders {
    shared: Arc<Shared>,
}

/// What the monitor thread and the readers share.
struct Shared {
    events: broadcast::Sender<CardEvent>,
    // A std mutex: held for map operations only, never across a blocking pcsc call.
    readers: Mutex<BTreeMap<String, bool>>,
    anchors: TrustAnchors,
    stopping: AtomicBool,
}

impl PcscReaders {
    /// Starts following the readers; identities are verified against `anchors`.
    pub fn start(anchors: TrustAnchors) -> std::io::Result<PcscReaders> {
        let (events, _) = broadcast::channel(64);
        let shared = Arc::new(Shared {
            events,
            readers: Mutex::new(BTreeMap::new()),
            anchors,
            stopping: AtomicBool::new(false),
        });
        let monitor = shared.clone();
        std::thread::Builder::new()
            .name("pcsc-monitor".into())
            .spawn(move || monitor_readers(&monitor))?;
        Ok(PcscReaders { shared })
    }
}

impl Drop for PcscReaders {
    fn drop(&mut self) {
        // The monitor sees the flag within one poll and ends with its context.
        self.shared.stopping.store(true, Ordering::Relaxed);
    }
}

impl CardReaders for PcscReaders {
    fn readers(&self) -> Vec<Reader> {
        self.shared
            .lock()
            .iter()
            .map(|(name, present)| Reader {
                name: name.clone(),
                card_present: *present,
            })
            .collect()
    }

    fn subscribe(&self) -> broadcast::Receiver<CardEvent> {
        self.shared.events.subscribe()
    }

    fn read_identity(&self, reader: &str) -> BoxFuture<'_, Result<CardIdentity, CardError>> {
        let anchors = self.shared.anchors.clone();
        self.on_card_thread(reader, move |reader| read_verified(reader, &anchors))
    }

    fn authenticate_holder(
        &self,
        reader: &str,
        request: HolderRequest,
    ) -> BoxFuture<'_, Result<HolderSignature, CardError>> {
        let anchors = self.shared.anchors.clone();
        self.on_card_thread(reader, move |reader| {
            holder::authenticate(reader, &request, &anchors)
        })
    }
}

impl PcscReaders {
    /// Runs a blocking conversation with the card in a known reader on a thread of its own.
    fn on_card_thread<T: Send + 'static>(
        &self,
        reader: &str,
        work: impl FnOnce(&str) -> Result<T, CardError> + Send + 'static,
    ) -> BoxFuture<'_, Result<T, CardError>> {
        let reader = reader.to_owned();
        Box::pin(async move {
            if !self.shared.lock().contains_key(&reader) {
                return Err(CardError::UnknownReader { reader });
            }
            let blocking_reader = reader.clone();
            tokio::task::spawn_blocking(move || work(&blocking_reader))
                .await
                .map_err(|err| CardError::Unreadable {
                    reader,
                    reason: format!("the card's thread failed: {err}"),
                })?
        })
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, bool>> {
        self.readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn send(&self, event: CardEvent) {
        // Nobody listening is fine.
        let _ = self.events.send(event);
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    fn reader_added(&self, name: &str) {
        if self.lock().insert(name.to_owned(), false).is_none() {
            self.send(CardEvent::ReaderAdded {
                reader: name.to_owned(),
            });
        }
    }

    fn reader_removed(&self, name: &str) {
        let had_card = self.lock().remove(name);
        if had_card == Some(true) {
            self.send(CardEvent::CardRemoved {
                reader: name.to_owned(),
            });
        }
        if had_card.is_some() {
            self.send(CardEvent::ReaderRemoved {
                reader: name.to_owned(),
            });
        }
    }

    fn card_present(&self, name: &str, present: bool) {
        let before = self.lock().insert(name.to_owned(), present);
        let reader = name.to_owned();
        match (before, present) {
            (Some(false) | None, true) => self.send(CardEvent::CardInserted { reader }),
            (Some(true), false) => self.send(CardEvent::CardRemoved { reader }),
            _ => {}
        }
    }

    /// pcscd is gone: every reader and card with it.
    fn forget_readers(&self) {
        let names: Vec<String> = self.lock().keys().cloned().collect();
        for name in names {
            self.reader_removed(&name);
        }
    }
}

/// The monitor thread: (re)connects to pcscd with backoff and follows the readers.
fn monitor_readers(shared: &Shared) {
    let mut backoff = Duration::from_millis(100);
    while !shared.stopping() {
        match Context::establish(Scope::User) {
            Ok(context) => {
                backoff = Duration::from_millis(100);
                match watch(&context, shared) {
                    Ok(()) => return,
                    Err(err) => {
                        tracing::warn!("lost pcscd ({err}); reconnecting");
                        shared.forget_readers();
                    }
                }
            }
            Err(err) => {
                tracing::debug!("pcscd not reachable: {err}");
                // Nothing announces that pcscd is back: try again after a growing pause.
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Follows readers and cards until the service fails (an error) or the driver stops (`Ok`).
fn watch(context: &Context, shared: &Shared) -> Result<(), pcsc::Error> {
    let pnp: &CStr = pcsc::PNP_NOTIFICATION();
    let mut states = vec![ReaderState::new(pnp, State::UNAWARE)];
    loop {
        if shared.stopping() {
            return Ok(());
        }
        let names = match context.list_readers_owned() {
            Ok(names) => names,
            Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
            Err(err) => return Err(err),
        };
        states.retain(|state| {
            let keep =
                state.name() == pnp || names.iter().any(|name| name.as_c_str() == state.name());
            if !keep {
                shared.reader_removed(&state.name().to_string_lossy());
            }
            keep
        });
        for name in &names {
            if !states.iter().any(|state| state.name() == name.as_c_str()) {
                shared.reader_added(&name.to_string_lossy());
                states.push(ReaderState::new(name.clone(), State::UNAWARE));
            }
        }
        match context.get_status_change(POLL, &mut states) {
            Ok(()) => {}
            Err(pcsc::Error::Timeout) => continue,
            // A reader vanished between the listing and the wait: list again.
            Err(pcsc::Error::UnknownReader) => continue,
            Err(err) => return Err(err),
        }
        for state in &mut states {
            let event = state.event_state();
            if state.name() != pnp && event.contains(State::CHANGED) {
                let present = event.contains(State::PRESENT) && !event.contains(State::MUTE);
                shared.card_present(&state.name().to_string_lossy(), present);
            }
            state.sync_current_state();
        }
    }
}

/// One card exchange over pcsc, mapping the removal and reset of the card.
struct PcscTransmit<'a> {
    card: &'a pcsc::Card,
}

impl Transmit for PcscTransmit<'_> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransmitError> {
        /// Whether the card has left the reader. A card pulled during an exchange comes back
        /// from drivers such as vpcd as a failed exchange (`SCARD_E_NOT_TRANSACTED`), and pcscd
        /// only learns of the removal at its next presence poll (400 ms for drivers without
        /// their own polling): wait for that change of the reader's state, at most a second.
        fn card_left(card: &pcsc::Card) -> bool {
            const PATIENCE: Duration = Duration::from_secs(1);
            let status = match card.status2_owned() {
                Ok(status) => status,
                Err(pcsc::Error::RemovedCard | pcsc::Error::NoSmartcard) => return true,
                Err(_) => return false,
            };
            let Some(reader) = status.reader_names().first() else {
                return false;
            };
            let Ok(context) = Context::establish(Scope::User) else {
                return false;
            };
            // UNAWARE: the first wait returns the reader's state at once.
            let mut states = [ReaderState::new(reader.clone(), State::UNAWARE)];
            let deadline = std::time::Instant::now() + PATIENCE;
            loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                // A timeout (the card stayed) or a failure of pcscd: not known to be removed.
                if context.get_status_change(left, &mut states).is_err() {
                    return false;
                }
                if !states[0].event_state().contains(State::PRESENT) {
                    return true;
                }
                states[0].sync_current_state();
            }
        }

        let mut buffer = [0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
        match self.card.transmit(command, &mut buffer) {
            // vpcd answers an exchange cut by the card leaving with no bytes at all.
            Ok(response) if response.len() < 2 && card_left(self.card) => {
                Err(TransmitError::CardRemoved)
            }
            Ok(response) => Ok(response.to_vec()),
            Err(pcsc::Error::RemovedCard | pcsc::Error::NoSmartcard) => {
                Err(TransmitError::CardRemoved)
            }
            Err(pcsc::Error::ResetCard) => Err(TransmitError::CardReset),
            Err(pcsc::Error::NotTransacted | pcsc::Error::CommError) if card_left(self.card) => {
                Err(TransmitError::CardRemoved)
            }
            Err(err) => Err(TransmitError::Reader {
                source: Box::new(err),
            }),
        }
    }
}

/// Everything read from the card before any check.
struct ReadCard {
    files: crate::eid::CardFiles,
    /// Applet 1.8: the basic key file, the challenge sent and the chip's answer.
    chip: Option<(Vec<u8>, [u8; 48], Vec<u8>)>,
    applet_version: u8,
}

/// Connects, reads, disconnects with a reset, then verifies. Blocking.
fn read_verified(reader: &str, anchors: &TrustAnchors) -> Result<CardIdentity, CardError> {
    let mut card = connect(reader)?;
    let read = match card.transaction() {
        // Exclusive for the whole read, so no other program's commands interleave with ours.
        Ok(transaction) => read_files(&transaction),
        Err(err) => Err(SessionError::Transmit(transaction_error(err))),
    };
    // A reset leaves nothing of this session on the card (no PIN state, no selected file).
    if let Err((_, err)) = card.disconnect(Disposition::ResetCard) {
        tracing::debug!(reader, "disconnect after reading: {err}");
    }
    let read = read.map_err(|err| session_error(reader, err))?;
    let verified =
        verify_card(read.files, anchors, Utc::now()).map_err(|err| untrusted(reader, err))?;
    let chip_verified = read.chip.is_some();
    if let Some((basic_key_file, challenge, answer)) = read.chip {
        let key = crate::eid::verify::verify_basic_key(&verified.identity, &basic_key_file)
            .map_err(|err| untrusted(reader, err))?;
        crate::eid::verify::verify_chip_challenge(&key, &challenge, &answer)
            .map_err(|err| untrusted(reader, err))?;
    }
    let evidence = CardEvidence {
        identity_file_sha256: verified
            .identity_file_sha256
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        applet_version: read.applet_version,
        register_signature_verified: true,
        chip_verified,
    };
    let mut identity = verified.into_card_identity();
    identity.evidence = Some(evidence);
    Ok(identity)
}

fn read_files(card: &pcsc::Card) -> Result<ReadCard, SessionError> {
    let mut session = CardSession::new(PcscTransmit { card });
    session.select_applet()?;
    let card_data = session.card_data()?;
    let files = session.read_card_files()?;
    let chip = if card_data.has_basic_key() {
        let basic_key = session.read_file(FilePath::BASIC_KEY)?;
        let mut challenge = [0u8; 48];
        rand::thread_rng().fill_bytes(&mut challenge);
        let answer = session.internal_authenticate(&challenge)?;
        Some((basic_key, challenge, answer))
    } else {
        None
    };
    Ok(ReadCard {
        files,
        chip,
        applet_version: card_data.applet_version,
    })
}

/// Why a transaction on a connected card could not begin.
fn transaction_error(err: pcsc::Error) -> TransmitError {
    match err {
        pcsc::Error::RemovedCard | pcsc::Error::NoSmartcard => TransmitError::CardRemoved,
        pcsc::Error::ResetCard => TransmitError::CardReset,
        other => TransmitError::Reader {
            source: Box::new(other),
        },
    }
}

/// A connection to the card in `reader`, with a context of its own (one per thread). Blocking.
fn connect(reader: &str) -> Result<pcsc::Card, CardError> {
    let context = Context::establish(Scope::User).map_err(|err| CardError::ServiceUnavailable {
        reason: err.to_string(),
    })?;
    let name = CString::new(reader).map_err(|_| CardError::UnknownReader {
        reader: reader.to_owned(),
    })?;
    context
        .connect(&name, ShareMode::Shared, Protocols::ANY)
        .map_err(|err| connect_error(reader, err))
}

fn connect_error(reader: &str, err: pcsc::Error) -> CardError {
    let reader = reader.to_owned();
    match err {
        pcsc::Error::NoSmartcard | pcsc::Error::RemovedCard => CardError::NoCard { reader },
        pcsc::Error::UnknownReader | pcsc::Error::ReaderUnavailable => {
            CardError::UnknownReader { reader }
        }
        pcsc::Error::NoService | pcsc::Error::ServiceStopped => CardError::ServiceUnavailable {
            reason: err.to_string(),
        },
        other => CardError::Unreadable {
            reader,
            reason: other.to_string(),
        },
    }
}

fn session_error(reader: &str, err: SessionError) -> CardError {
    let reader = reader.to_owned();
    match err {
        SessionError::Transmit(TransmitError::CardRemoved) => CardError::CardRemoved { reader },
        other => CardError::Unreadable {
            reader,
            reason: other.to_string(),
        },
    }
}

fn untrusted(reader: &str, err: VerifyError) -> CardError {
    CardError::NotTrusted {
        reader: reader.to_owned(),
        reason: err.to_string(),
    }
}
