//! Fixtures shared by the integration tests: requests, events, actors, times and keys, all
//! fixed so that results are reproducible.
//!
//! The hub's integration tests compile this file too (`sync/hub/tests/it/support.rs` includes it
//! by `#[path]`): it may use only what `busloket-hub` depends on as well — `busloket-sync`,
//! `automerge`, `chrono`, `sled` — and no dev-dependency of this crate.

use std::path::Path;

use automerge::ActorId;
use busloket_sync::at_rest::AtRestKey;
use busloket_sync::national_number::NationalNumber;
use busloket_sync::record::{
    CardEvidence, Delivery, EventId, EventKind, HolderEvidence, NewEvent, NewRequest, Origin,
    Person,
};
use busloket_sync::terms::{
    AuthStrength, Channel, DeliveryMethod, DeviceId, HolderAlgorithm, Language, Relation, RequestId,
};
use chrono::{DateTime, Utc};

/// 2025-06-15 08:00:00 UTC plus `seconds`.
pub fn time(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_749_974_400 + seconds, 0).unwrap()
}

pub fn actor(n: u8) -> ActorId {
    ActorId::from([n; 16])
}

pub fn device(name: &str) -> DeviceId {
    name.parse().unwrap()
}

pub fn event_id(n: u32) -> EventId {
    let mut random = [0u8; 10];
    random[6..].copy_from_slice(&n.to_be_bytes());
    EventId::new(1_749_974_400_000 + u64::from(n), random)
}

pub fn request_id(n: u32) -> RequestId {
    let mut random = [7u8; 10];
    random[6..].copy_from_slice(&n.to_be_bytes());
    RequestId::new(1_749_974_400_000 + u64::from(n), random)
}

pub fn national_number() -> NationalNumber {
    "85.07.31-003.28".parse().unwrap()
}

/// Request `n`, made `n` minutes after 08:00 at stop `markt` on the kiosk.
pub fn new_request(n: u32) -> NewRequest {
    let person = Person {
        national_number: national_number(),
        name: "Marie Peeters".into(),
    };
    NewRequest {
        id: request_id(n),
        document: "birth-extract".parse().unwrap(),
        subject: person.clone(),
        requester: person,
        relation: Relation::Myself,
        channel: Channel::BusKiosk,
        language: Language::Nl,
        document_language: Language::Nl,
        delivery: Delivery {
            method: DeliveryMethod::PrintHere,
            email: None,
        },
        authentication: AuthStrength::CardPin,
        purpose: None,
        origin: Origin {
            device: device("bus-1"),
            station: "kiosk-1".into(),
            stop: Some("markt".parse().unwrap()),
            at: time(i64::from(n) * 60),
            whereabouts: Default::default(),
        },
        queue_number: n + 1,
        // Odd requests were made with a card read, even ones with a typed identity; requests
        // 1, 5, 9… with the PIN too.
        evidence: (n % 2 == 1).then(|| CardEvidence {
            identity_file_sha256: "ab".repeat(32),
            applet_version: 0x18,
            register_signature_verified: true,
            chip_verified: true,
            holder: (n % 4 == 1).then(|| HolderEvidence {
                algorithm: HolderAlgorithm::EcdsaP384Sha384,
                signature: vec![0x5A; 96],
                certificate: vec![0x30, 0x03, 0x02, 0x01, 0x01],
            }),
        }),
        // The postcode of the card's address, where a card was read.
        requester_postcode: (n % 2 == 1)
            .then(|| ["8500", "8510", "8520"][n as usize % 3].parse().unwrap()),
    }
}

pub fn new_event(n: u32, seconds: i64, by: &str, device_name: &str, kind: EventKind) -> NewEvent {
    NewEvent {
        id: event_id(n),
        at: time(seconds),
        by: by.into(),
        device: device(device_name),
        kind,
    }
}

pub fn key(n: u8) -> AtRestKey {
    AtRestKey::from_bytes([n; 32])
}

/// Opens a closed store's sled database directly, to inspect or damage it. sled releases its
/// file lock lazily after a close (spacejam/sled#1234); taking the same lock, blocking, waits
/// for that release.
pub fn raw_db(dir: &Path) -> sled::Db {
    let lock = std::fs::File::open(dir.join("db")).unwrap();
    lock.lock().unwrap();
    drop(lock);
    sled::open(dir).unwrap()
}
