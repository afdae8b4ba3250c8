//! The simulated card readers: named readers into which the demo control page and the tests
//! insert the cards of synthetic demo citizens.
//!
//! It must behave like the real readers where the node can tell the difference (events, a read
//! that takes time, a card pulled mid-read), and it must only ever hold demo identities.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::broadcast;

use super::{
    CardError, CardEvent, CardIdentity, CardReaders, DocumentType, HolderAlgorithm, HolderRequest,
    HolderSignature, ReaderState, mask_national_number,
};
use crate::demo::DemoCitizen;
use crate::eid::Pin;

/// The PIN of every demo card.
pub const DEMO_PIN: &str = "1234";

/// Wrong PINs a card accepts before it blocks, as on a real eID.
const PIN_TRIES: u8 = 3;

/// How long a simulated read takes unless [`SimCardReaders::with_read_delay`] says otherwise.
pub const DEFAULT_READ_DELAY: Duration = Duration::from_millis(10);

/// How many events a slow subscriber may fall behind before it lags.
const EVENT_CAPACITY: usize = 64;

/// Simulated eID card readers holding the cards of [`DemoCitizen`]s.
pub struct SimCardReaders {
    citizens: HashMap<String, CardIdentity>,
    read_delay: Duration,
    events: broadcast::Sender<CardEvent>,
    // A std mutex: held only to look at or change the slots, never across an `.await`.
    state: Mutex<State>,
}

struct State {
    readers: Vec<Reader>,
    /// Counts every insertion, so a read can tell that its card left (even if another card, or
    /// the same one, went in before the read finished).
    insertions: u64,
    service_down: Option<String>,
    /// PIN tries left per card (national number), kept across insertions as a chip keeps them.
    pin_tries: HashMap<String, u8>,
}

struct Reader {
    name: String,
    slot: Slot,
}

enum Slot {
    Empty,
    Card { insertion: u64, card: SimCard },
}

#[derive(Clone)]
enum SimCard {
    Citizen(Box<CardIdentity>),
    Unreadable(String),
}

impl SimCardReaders {
    /// Readers with the given names, all empty, that know the cards of `citizens`.
    pub fn new(reader_names: Vec<String>, citizens: Vec<DemoCitizen>) -> SimCardReaders {
        let citizens = citizens
            .into_iter()
            .map(|citizen| (citizen.card.national_number.clone(), citizen.card))
            .collect();
        let mut readers: Vec<Reader> = Vec::with_capacity(reader_names.len());
        for name in reader_names {
            if !readers.iter().any(|reader| reader.name == name) {
                readers.push(Reader {
                    name,
                    slot: Slot::Empty,
                });
            }
        }
        SimCardReaders {
            citizens,
            read_delay: DEFAULT_READ_DELAY,
            events: broadcast::channel(EVENT_CAPACITY).0,
            state: Mutex::new(State {
                readers,
                insertions: 0,
                service_down: None,
                pin_tries: HashMap::new(),
            }),
        }
    }

    /// Sets how long [`CardReaders::read_identity`] takes.
    pub fn with_read_delay(mut self, read_delay: Duration) -> SimCardReaders {
        self.read_delay = read_delay;
        self
    }

    /// Inserts the card of the demo citizen with this national number (digits; dots, dashes and
    /// spaces are ignored). A card already in the reader is pulled out first, as a person
    /// swapping cards would.
    pub fn insert(&self, reader: &str, national_number: &str) -> Result<(), CardError> {
        let digits: String = national_number
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        let card = self
            .citizens
            .get(&digits)
            .ok_or_else(|| CardError::UnknownDemoCitizen {
                masked: mask_national_number(&digits),
            })?;
        self.put(reader, SimCard::Citizen(Box::new(card.clone())))
    }

    /// Inserts a card that every read rejects with [`CardError::Unreadable`] and this reason
    /// (a dirty chip, a card upside down).
    pub fn insert_unreadable(&self, reader: &str, reason: &str) -> Result<(), CardError> {
        self.put(reader, SimCard::Unreadable(reason.to_owned()))
    }

    /// Pulls the card out of the reader.
    pub fn pull(&self, reader: &str) -> Result<(), CardError> {
        let mut state = self.lock();
        let slot = &mut state.reader_mut(reader)?.slot;
        if matches!(slot, Slot::Empty) {
            return Err(CardError::NoCard {
                reader: reader.to_owned(),
            });
        }
        *slot = Slot::Empty;
        drop(state);
        self.send(CardEvent::CardRemoved {
            reader: reader.to_owned(),
        });
        Ok(())
    }

    /// The national number of the demo citizen whose card is in the reader, if any.
    pub fn inserted(&self, reader: &str) -> Option<String> {
        let state = self.lock();
        let reader = state
            .readers
            .iter()
            .find(|candidate| candidate.name == reader)?;
        match &reader.slot {
            Slot::Card {
                card: SimCard::Citizen(card),
                ..
            } => Some(card.national_number.clone()),
            Slot::Card {
                card: SimCard::Unreadable(_),
                ..
            }
            | Slot::Empty => None,
        }
    }

    /// Plugs in another reader (empty). Adding a reader that exists changes nothing.
    pub fn add_reader(&self, reader: &str) {
        let mut state = self.lock();
        if state
            .readers
            .iter()
            .any(|candidate| candidate.name == reader)
        {
            return;
        }
        state.readers.push(Reader {
            name: reader.to_owned(),
            slot: Slot::Empty,
        });
        drop(state);
        self.send(CardEvent::ReaderAdded {
            reader: reader.to_owned(),
        });
    }

    /// Unplugs a reader; a card in it counts as removed.
    pub fn remove_reader(&self, reader: &str) -> Result<(), CardError> {
        let mut state = self.lock();
        let index = state
            .readers
            .iter()
            .position(|candidate| candidate.name == reader)
            .ok_or_else(|| CardError::UnknownReader {
                reader: reader.to_owned(),
            })?;
        let removed = state.readers.remove(index);
        drop(state);
        if matches!(removed.slot, Slot::Card { .. }) {
            self.send(CardEvent::CardRemoved {
                reader: reader.to_owned(),
            });
        }
        self.send(CardEvent::ReaderRemoved {
            reader: reader.to_owned(),
        });
        Ok(())
    }

    /// Simulates the card service going down (`Some(reason)`: no readers, reads fail with
    /// [`CardError::ServiceUnavailable`]) or coming back (`None`).
    pub fn set_service_down(&self, reason: Option<&str>) {
        self.lock().service_down = reason.map(str::to_owned);
    }

    fn put(&self, reader: &str, card: SimCard) -> Result<(), CardError> {
        let mut state = self.lock();
        state.insertions += 1;
        let insertion = state.insertions;
        let slot = &mut state.reader_mut(reader)?.slot;
        let had_card = matches!(slot, Slot::Card { .. });
        *slot = Slot::Card { insertion, card };
        drop(state);
        if had_card {
            self.send(CardEvent::CardRemoved {
                reader: reader.to_owned(),
            });
        }
        self.send(CardEvent::CardInserted {
            reader: reader.to_owned(),
        });
        Ok(())
    }

    /// The card in the reader now and its insertion number.
    fn current_card(&self, reader: &str) -> Result<(u64, SimCard), CardError> {
        let mut state = self.lock();
        if let Some(reason) = &state.service_down {
            return Err(CardError::ServiceUnavailable {
                reason: reason.clone(),
            });
        }
        match &state.reader_mut(reader)?.slot {
            Slot::Empty => Err(CardError::NoCard {
                reader: reader.to_owned(),
            }),
            Slot::Card { insertion, card } => Ok((*insertion, card.clone())),
        }
    }

    /// How many PIN tries the demo card with this national number has left.
    pub fn pin_tries_left(&self, national_number: &str) -> u8 {
        self.lock()
            .pin_tries
            .get(national_number)
            .copied()
            .unwrap_or(PIN_TRIES)
    }

    /// Waits the read delay and checks the card that was in the reader is still there.
    async fn still_inserted(&self, reader: &str, insertion: u64) -> Result<(), CardError> {
        tokio::time::sleep(self.read_delay).await;
        match self.current_card(reader) {
            Ok((now, _)) if now == insertion => Ok(()),
            Ok(_) | Err(CardError::NoCard { .. } | CardError::UnknownReader { .. }) => {
                Err(CardError::CardRemoved {
                    reader: reader.to_owned(),
                })
            }
            Err(other) => Err(other),
        }
    }

    /// Checks the PIN as a card would: a right one resets the counter, a wrong one spends a try.
    fn verify_pin(&self, reader: &str, national_number: &str, pin: &Pin) -> Result<(), CardError> {
        let mut state = self.lock();
        let tries = state
            .pin_tries
            .entry(national_number.to_owned())
            .or_insert(PIN_TRIES);
        if *tries == 0 {
            return Err(CardError::PinBlocked {
                reader: reader.to_owned(),
            });
        }
        if *pin == Pin::new(DEMO_PIN).expect("the demo PIN is a valid PIN") {
            *tries = PIN_TRIES;
            return Ok(());
        }
        *tries -= 1;
        match *tries {
            0 => Err(CardError::PinBlocked {
                reader: reader.to_owned(),
            }),
            tries_left => Err(CardError::WrongPin {
                reader: reader.to_owned(),
                tries_left,
            }),
        }
    }

    fn send(&self, event: CardEvent) {
        // An error only means that nobody listens right now; the state is still right.
        let _ = self.events.send(event);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    fn reader_mut(&mut self, reader: &str) -> Result<&mut Reader, CardError> {
        self.readers
            .iter_mut()
            .find(|candidate| candidate.name == reader)
            .ok_or_else(|| CardError::UnknownReader {
                reader: reader.to_owned(),
            })
    }
}

impl CardReaders for SimCardReaders {
    fn readers(&self) -> Vec<ReaderState> {
        let state = self.lock();
        if state.service_down.is_some() {
            return Vec::new();
        }
        state
            .readers
            .iter()
            .map(|reader| ReaderState {
                name: reader.name.clone(),
                card_present: matches!(reader.slot, Slot::Card { .. }),
            })
            .collect()
    }

    fn subscribe(&self) -> broadcast::Receiver<CardEvent> {
        self.events.subscribe()
    }

    fn read_identity(&self, reader: &str) -> BoxFuture<'_, Result<CardIdentity, CardError>> {
        let reader = reader.to_owned();
        Box::pin(async move {
            let (insertion, card) = self.current_card(&reader)?;
            // Whatever is in the reader now must be the very card we started with.
            self.still_inserted(&reader, insertion).await?;
            match card {
                SimCard::Citizen(card) => Ok(*card),
                SimCard::Unreadable(reason) => Err(CardError::Unreadable { reader, reason }),
            }
        })
    }

    fn authenticate_holder(
        &self,
        reader: &str,
        request: HolderRequest,
    ) -> BoxFuture<'_, Result<HolderSignature, CardError>> {
        let reader = reader.to_owned();
        Box::pin(async move {
            let (insertion, card) = self.current_card(&reader)?;
            let card = match card {
                SimCard::Citizen(card) => card,
                SimCard::Unreadable(reason) => {
                    return Err(CardError::Unreadable { reader, reason });
                }
            };
            if card.document_type == DocumentType::KidsId {
                return Err(CardError::CannotSign { reader });
            }
            if let Some(expected) = &request.expected_national_number
                && *expected != card.national_number
            {
                return Err(CardError::NotTrusted {
                    reader,
                    reason: "the card belongs to someone else than the citizen identified".into(),
                });
            }
            self.still_inserted(&reader, insertion).await?;
            self.verify_pin(&reader, &card.national_number, &request.pin)?;
            Ok(HolderSignature {
                national_number: card.national_number.clone(),
                algorithm: HolderAlgorithm::EcdsaP384Sha384,
                signature: Vec::new(),
                certificate_der: Vec::new(),
                demo: true,
            })
        })
    }
}
