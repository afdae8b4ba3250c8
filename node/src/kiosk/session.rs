//! What the node remembers of the citizen at each kiosk station, and which screen that puts the
//! station on. Plain data and pure functions: the handlers in `kiosk` change it, the pages in
//! `kiosk::pages` draw it.

use std::collections::HashMap;
use std::sync::Mutex;

use busloket_sync::record::{CardEvidence, Delivery, Person};
use busloket_sync::terms::{AuthStrength, DocumentCode, Language, Postcode, Relation};
use tokio::time::Instant;

use crate::config::Station;
use crate::register::Relative;

/// The card at a station, as far as the session knows.
#[derive(Debug, Clone, Default)]
pub enum CardState {
    #[default]
    Absent,
    /// Inserted, being read; `generation` tells a late read result from a current one.
    Reading {
        generation: u64,
    },
    Read(Box<Citizen>),
    /// The card could not be used; the code picks the message.
    Failed {
        code: &'static str,
    },
}

/// The citizen identified by their card.
#[derive(Debug, Clone)]
pub struct Citizen {
    pub person: Person,
    pub first_name: String,
    pub authentication: AuthStrength,
    /// What reading the card proved (real cards only).
    pub evidence: Option<CardEvidence>,
    /// The postcode of the card's address.
    pub postcode: Option<Postcode>,
    /// The card has an authentication key, so the holder can confirm with their PIN (Kids-ID
    /// cards have none).
    pub can_sign: bool,
}

/// Why the last PIN confirmation did not work; shown on the confirm screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinProblem {
    /// Not 4 to 12 digits: the card was not asked.
    Format,
    Wrong {
        tries_left: u8,
    },
    Blocked,
    /// The card cannot sign, or its signature was not accepted: go on without PIN.
    Failed,
}

impl PinProblem {
    /// After this, the screen offers only the way without PIN.
    pub fn ends_pin(self) -> bool {
        matches!(self, PinProblem::Blocked | PinProblem::Failed)
    }
}

/// For whom the document is.
#[derive(Debug, Clone)]
pub struct Subject {
    pub person: Person,
    pub relation: Relation,
    pub minor: bool,
}

/// What the node remembers of the citizen at one station; reset when the card leaves.
#[derive(Debug, Clone)]
pub struct KioskSession {
    pub language: Option<Language>,
    pub card: CardState,
    pub generation: u64,
    /// Counts the changes announced to the station's page (see `kiosk::notify`), so a page can
    /// tell that it is behind.
    pub revision: u64,
    /// The requester's relatives, from the register, when known.
    pub relatives: Option<Vec<Relative>>,
    pub subject: Option<Subject>,
    pub document: Option<DocumentCode>,
    pub purpose: Option<String>,
    pub delivery: Option<Delivery>,
    pub done: Option<Done>,
    /// A message key to show once: an input error, a failed submission, "help is coming".
    pub message: Option<String>,
    /// The outcome of the last PIN confirmation that did not work. Blocked or failed stays until
    /// the card leaves; a wrong PIN until the next try.
    pub pin_problem: Option<PinProblem>,
    pub last_touch: Instant,
}

/// The outcome shown on the last screen.
#[derive(Debug, Clone)]
pub struct Done {
    pub queue_number: u32,
    pub automatic: bool,
    pub ticket_printed: bool,
}

impl KioskSession {
    fn new() -> KioskSession {
        KioskSession {
            language: None,
            card: CardState::Absent,
            generation: 0,
            revision: 0,
            relatives: None,
            subject: None,
            document: None,
            purpose: None,
            delivery: None,
            done: None,
            message: None,
            pin_problem: None,
            last_touch: Instant::now(),
        }
    }

    /// Forgets everything about the citizen; keeps the generation so late reads are ignored, and
    /// the revision so pages can tell they are behind.
    pub(super) fn clear(&mut self) {
        let (generation, revision) = (self.generation, self.revision);
        *self = KioskSession::new();
        self.generation = generation;
        self.revision = revision;
    }

    /// Forgets the request being made but keeps the citizen and the language.
    pub(super) fn clear_request(&mut self) {
        self.subject = None;
        self.document = None;
        self.purpose = None;
        self.delivery = None;
        self.done = None;
        self.message = None;
        // A blocked PIN stays blocked for the next request of the same card.
        self.pin_problem = self.pin_problem.filter(|problem| problem.ends_pin());
    }

    pub fn language(&self) -> Language {
        self.language.unwrap_or_default()
    }

    pub fn citizen(&self) -> Option<&Citizen> {
        match &self.card {
            CardState::Read(citizen) => Some(citizen),
            _ => None,
        }
    }

    pub(super) fn has_citizen_data(&self) -> bool {
        self.language.is_some() || !matches!(self.card, CardState::Absent)
    }
}

/// The screen a session is on: a pure function of the session and the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Language,
    InsertCard,
    Reading,
    CardFailed,
    ForWhom,
    Document,
    Purpose,
    Delivery,
    Confirm,
    Done,
}

pub fn step(session: &KioskSession, purpose_required: impl Fn(&DocumentCode) -> bool) -> Step {
    if session.done.is_some() {
        return Step::Done;
    }
    if session.language.is_none() {
        return Step::Language;
    }
    match &session.card {
        CardState::Absent => return Step::InsertCard,
        CardState::Reading { .. } => return Step::Reading,
        CardState::Failed { .. } => return Step::CardFailed,
        CardState::Read(_) => {}
    }
    if session.subject.is_none() {
        return Step::ForWhom;
    }
    let Some(document) = &session.document else {
        return Step::Document;
    };
    if purpose_required(document) && session.purpose.is_none() {
        return Step::Purpose;
    }
    if session.delivery.is_none() {
        return Step::Delivery;
    }
    Step::Confirm
}

/// The sessions of all stations.
#[derive(Debug)]
pub struct KioskSessions {
    // A std mutex: only short reads and writes under it, never an `.await`.
    sessions: Mutex<HashMap<String, KioskSession>>,
    readers: HashMap<String, String>,
}

impl KioskSessions {
    pub fn new(stations: &[Station]) -> KioskSessions {
        KioskSessions {
            sessions: Mutex::new(
                stations
                    .iter()
                    .map(|station| (station.id.clone(), KioskSession::new()))
                    .collect(),
            ),
            readers: stations
                .iter()
                .map(|s| (s.reader.clone(), s.id.clone()))
                .collect(),
        }
    }

    /// A copy of a station's session.
    pub fn get(&self, station: &str) -> Option<KioskSession> {
        self.lock().get(station).cloned()
    }

    /// Changes a station's session under the lock; `None` for an unknown station.
    pub fn update<T>(
        &self,
        station: &str,
        change: impl FnOnce(&mut KioskSession) -> T,
    ) -> Option<T> {
        self.lock().get_mut(station).map(change)
    }

    /// The station whose tablet uses this reader.
    pub fn station_of_reader(&self, reader: &str) -> Option<&str> {
        self.readers.get(reader).map(String::as_str)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, KioskSession>> {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use busloket_sync::national_number::NationalNumber;
    use busloket_sync::terms::DeliveryMethod;

    #[test]
    fn steps_follow_the_session() {
        let never = |_: &DocumentCode| false;
        let always = |_: &DocumentCode| true;
        let mut session = KioskSession::new();
        assert_eq!(step(&session, never), Step::Language);
        session.language = Some(Language::Fr);
        assert_eq!(step(&session, never), Step::InsertCard);
        session.card = CardState::Reading { generation: 1 };
        assert_eq!(step(&session, never), Step::Reading);
        let person = Person {
            national_number: NationalNumber::parse("85.07.31-003.28").unwrap(),
            name: "Demo Persoon".into(),
        };
        session.card = CardState::Read(Box::new(Citizen {
            person: person.clone(),
            first_name: "Demo".into(),
            authentication: AuthStrength::CardRead,
            evidence: None,
            postcode: None,
            can_sign: true,
        }));
        assert_eq!(step(&session, never), Step::ForWhom);
        session.subject = Some(Subject {
            person,
            relation: Relation::Myself,
            minor: false,
        });
        assert_eq!(step(&session, never), Step::Document);
        session.document = Some("criminal-record-595".parse().unwrap());
        assert_eq!(step(&session, always), Step::Purpose);
        assert_eq!(step(&session, never), Step::Delivery);
        session.delivery = Some(Delivery {
            method: DeliveryMethod::PrintHere,
            email: None,
        });
        assert_eq!(step(&session, never), Step::Confirm);
        session.clear();
        assert_eq!(step(&session, never), Step::Language);
        assert!(!session.has_citizen_data());
    }
}
