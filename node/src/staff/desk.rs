//! The card in the staff desk's reader, as the clerk last read it: who it names, what the read
//! proved, and the photo to compare with the person at the desk.
//!
//! Kept in memory only, for as long as the card stays in the reader: pulling it (or reading
//! another) forgets it. The desk form cannot carry evidence across a page, so `staff::serve`
//! takes it from here when the form says the requester came from the card.

use std::sync::Mutex;

use busloket_hardware::CardIdentity;
use busloket_sync::national_number::NationalNumber;
use busloket_sync::record::CardEvidence;
use busloket_sync::terms::Postcode;

/// The last card read at the desk.
#[derive(Clone)]
pub struct DeskCard {
    pub national_number: NationalNumber,
    pub name: String,
    pub evidence: Option<CardEvidence>,
    /// The postcode of the card's address.
    pub postcode: Option<Postcode>,
    /// What to show as the photo, with its content type: the card's JPEG, or for a demo card its
    /// placeholder SVG.
    pub photo: Option<(&'static str, Vec<u8>)>,
}

impl std::fmt::Debug for DeskCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeskCard")
            .field("national_number", &self.national_number)
            .field("evidence", &self.evidence.is_some())
            .finish_non_exhaustive()
    }
}

impl DeskCard {
    pub fn new(national_number: NationalNumber, identity: &CardIdentity) -> DeskCard {
        let photo = if identity.demo {
            Some((
                "image/svg+xml",
                busloket_hardware::demo_avatar_svg(identity).into_bytes(),
            ))
        } else if identity.photo_jpeg.is_empty() {
            None
        } else {
            Some(("image/jpeg", identity.photo_jpeg.clone()))
        };
        DeskCard {
            national_number,
            name: identity.display_name(),
            evidence: identity
                .evidence
                .as_ref()
                .map(crate::workflow::record_evidence),
            postcode: crate::workflow::card_postcode(identity),
            photo,
        }
    }
}

/// The desk's card slot.
#[derive(Debug, Default)]
pub struct DeskCardSlot {
    // A std mutex: only short reads and writes, never an `.await`.
    card: Mutex<Option<DeskCard>>,
}

impl DeskCardSlot {
    pub fn put(&self, card: DeskCard) {
        *self.lock() = Some(card);
    }

    pub fn clear(&self) {
        *self.lock() = None;
    }

    pub fn get(&self) -> Option<DeskCard> {
        self.lock().clone()
    }

    /// The card in the slot if it is this person's.
    pub fn card_of(&self, national_number: &NationalNumber) -> Option<DeskCard> {
        self.lock()
            .as_ref()
            .filter(|card| card.national_number == *national_number)
            .cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<DeskCard>> {
        self.card
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
