//! Property: whatever the buses and the hub do, and however the link loses or reorders the
//! messages between them, once the link is good again every replica holds the same records and
//! no event anyone made is lost.
//!
//! The real parts without the network: the bus's encrypted store and sync round
//! (`busloket_node::sync::{prepare_upload, settle}`), and the hub's engine over its sled storage
//! (`busloket_hub::sync::Hub::receive`, `append_event`). The network is a list of uploads in
//! flight that the test loses, delays and delivers out of order.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use automerge::ActorId;
use busloket_hub::storage::SledStorage;
use busloket_hub::sync::{DeviceIdentity, Hub};
use busloket_node::sync::{prepare_upload, settle};
use busloket_sync::at_rest::AtRestKey;
use busloket_sync::protocol::{BATCH_BYTES, bound_actor, decode_answer};
use busloket_sync::record::{
    Delivery, EventId, EventKind, NewEvent, NewRequest, Origin, Person, RequestRecord,
};
use busloket_sync::store::Store;
use busloket_sync::terms::{
    AuthStrength, Channel, DeliveryMethod, DeviceId, Language, Relation, RequestId,
};
use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;

const BUSES: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    /// A citizen makes a request on this bus.
    Create { bus: usize },
    /// Bus staff act on one of the bus's requests.
    BusEvent { bus: usize, pick: usize, kind: u8 },
    /// The city acts on one of the bus's requests, at the hub.
    HubEvent { bus: usize, pick: usize, kind: u8 },
    /// A sync round: delivered both ways, the upload lost, or the answer lost.
    Round { bus: usize, fate: Fate },
    /// The bus gives up waiting on an upload that is still on its way…
    Hold { bus: usize },
    /// …and it reaches the hub later, out of order.
    Deliver { pick: usize },
}

#[derive(Debug, Clone, Copy)]
enum Fate {
    Delivered,
    UploadLost,
    AnswerLost,
}

fn op() -> impl Strategy<Value = Op> {
    let bus = 0..BUSES;
    prop_oneof![
        3 => bus.clone().prop_map(|bus| Op::Create { bus }),
        4 => (bus.clone(), any::<usize>(), 0u8..5).prop_map(|(bus, pick, kind)| Op::BusEvent { bus, pick, kind }),
        2 => (bus.clone(), any::<usize>(), 0u8..4).prop_map(|(bus, pick, kind)| Op::HubEvent { bus, pick, kind }),
        4 => (bus.clone(), prop_oneof![
            3 => Just(Fate::Delivered),
            1 => Just(Fate::UploadLost),
            1 => Just(Fate::AnswerLost),
        ]).prop_map(|(bus, fate)| Op::Round { bus, fate }),
        1 => bus.prop_map(|bus| Op::Hold { bus }),
        1 => any::<usize>().prop_map(|pick| Op::Deliver { pick }),
    ]
}

struct Bus {
    device: DeviceId,
    key: SigningKey,
    actor: ActorId,
    identity: DeviceIdentity,
    store: Store,
    _dir: tempfile::TempDir,
    requests: Vec<RequestId>,
}

struct World {
    hub: Hub<SledStorage>,
    _hub_dir: tempfile::TempDir,
    buses: Vec<Bus>,
    /// Uploads on their way, whose bus stopped waiting.
    in_flight: Vec<(usize, Vec<u8>)>,
    /// Every event someone appended successfully, per request.
    made: BTreeMap<RequestId, BTreeSet<EventId>>,
    tick: u32,
}

fn at(tick: u32) -> DateTime<Utc> {
    DateTime::from_timestamp(1_749_974_400 + i64::from(tick), 0).unwrap()
}

impl World {
    fn new() -> World {
        let hub_dir = tempfile::tempdir().unwrap();
        let storage = SledStorage::open(hub_dir.path(), AtRestKey::from_bytes([1; 32])).unwrap();
        let hub = Hub::new(Arc::new(storage), b"the hub's SubjectPublicKeyInfo").unwrap();
        let buses = (0..BUSES)
            .map(|n| {
                let dir = tempfile::tempdir().unwrap();
                let key = SigningKey::from_bytes(&[n as u8 + 10; 32]);
                let device: DeviceId = format!("bus-{n}").parse().unwrap();
                let public_key = key.verifying_key().to_bytes();
                Bus {
                    actor: bound_actor(&public_key, [n as u8; 8]),
                    identity: DeviceIdentity {
                        id: device.clone(),
                        public_key,
                        serial: vec![n as u8 + 1],
                    },
                    device,
                    key,
                    store: Store::open(dir.path(), AtRestKey::from_bytes([2; 32])).unwrap(),
                    _dir: dir,
                    requests: Vec::new(),
                }
            })
            .collect();
        World {
            hub,
            _hub_dir: hub_dir,
            buses,
            in_flight: Vec::new(),
            made: BTreeMap::new(),
            tick: 0,
        }
    }

    fn next_tick(&mut self) -> u32 {
        self.tick += 1;
        self.tick
    }

    fn event(&mut self, by: &str, device: &DeviceId, kind: EventKind) -> NewEvent {
        let tick = self.next_tick();
        NewEvent {
            id: EventId::new(1_749_974_400_000 + u64::from(tick), [tick as u8; 10]),
            at: at(tick),
            by: by.into(),
            device: device.clone(),
            kind,
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Create { bus } => self.create(bus),
            Op::BusEvent { bus, pick, kind } => {
                let Some(id) = pick_request(&self.buses[bus].requests, pick) else {
                    return;
                };
                let device = self.buses[bus].device.clone();
                let event = self.event("staff:jan", &device, bus_kind(kind));
                let event_id = event.id;
                let actor = self.buses[bus].actor.clone();
                if self.buses[bus]
                    .store
                    .update(id, |record| record.append(&actor, event))
                    .is_ok()
                {
                    self.made.entry(id).or_default().insert(event_id);
                }
            }
            Op::HubEvent { bus, pick, kind } => {
                let Some(id) = pick_request(&self.buses[bus].requests, pick) else {
                    return;
                };
                let event = self.event("hub:clerk", &"hub".parse().unwrap(), hub_kind(kind));
                let event_id = event.id;
                // The hub may not have the request yet, or refuse the event: both fine.
                if self.hub.append_event(id, event).is_ok() {
                    self.made.entry(id).or_default().insert(event_id);
                }
            }
            Op::Round { bus, fate } => {
                self.round(bus, fate);
            }
            Op::Hold { bus } => {
                let now = at(self.next_tick());
                let b = &self.buses[bus];
                let prepared =
                    prepare_upload(&b.store, &b.key, &b.device, now, BATCH_BYTES).unwrap();
                self.in_flight.push((bus, prepared.body));
            }
            Op::Deliver { pick } => {
                if self.in_flight.is_empty() {
                    return;
                }
                let (bus, body) = self.in_flight.remove(pick % self.in_flight.len());
                let now = at(self.next_tick());
                // A stale upload may be refused as replayed; its bus stopped waiting anyway.
                let _ = self.hub.receive(&self.buses[bus].identity, &body, now);
            }
        }
    }

    fn create(&mut self, bus: usize) {
        let tick = self.next_tick();
        let id = RequestId::new(1_749_974_400_000 + u64::from(tick), [bus as u8; 10]);
        let submitted = EventId::new(1_749_974_400_000 + u64::from(tick), [0xEE; 10]);
        let b = &mut self.buses[bus];
        let new = new_request(id, &b.device, at(tick));
        let mut record = RequestRecord::create(&new, b.actor.clone(), submitted, "kiosk:k1")
            .expect("a valid request");
        b.store.insert_new(&mut record).unwrap();
        b.requests.push(id);
        self.made.entry(id).or_default().insert(submitted);
    }

    /// One round of `bus`; whether the hub took the upload.
    fn round(&mut self, bus: usize, fate: Fate) -> bool {
        let now = at(self.next_tick());
        let b = &self.buses[bus];
        let prepared = prepare_upload(&b.store, &b.key, &b.device, now, BATCH_BYTES).unwrap();
        if let Fate::UploadLost = fate {
            return false;
        }
        let Ok(body) = self.hub.receive(&b.identity, &prepared.body, now) else {
            return false;
        };
        if let Fate::AnswerLost = fate {
            return true;
        }
        let answer = decode_answer(&body, &b.device, prepared.counter).unwrap();
        settle(&b.store, &prepared, answer).unwrap();
        true
    }

    /// The link is good again: every bus syncs until nothing is left to say.
    fn heal(&mut self) {
        for _ in 0..6 {
            for bus in 0..BUSES {
                assert!(
                    self.round(bus, Fate::Delivered),
                    "a round over a good link must be taken"
                );
            }
        }
    }

    fn check_converged(&mut self) {
        for bus in &self.buses {
            assert_eq!(
                bus.store.outbox_len(),
                0,
                "{}: outbox not empty",
                bus.device
            );
            for id in &bus.requests {
                let mut on_bus = bus.store.load(*id).unwrap().expect("the bus keeps it");
                let mut at_hub = self.hub.request(*id).unwrap().expect("the hub has it");
                let (mut a, mut b) = (on_bus.heads(), at_hub.heads());
                a.sort();
                b.sort();
                assert_eq!(
                    a, b,
                    "{id}: heads differ between {} and the hub",
                    bus.device
                );
                let (view_bus, view_hub) = (on_bus.view().unwrap(), at_hub.view().unwrap());
                assert_eq!(view_bus, view_hub, "{id}: records differ");
                let have: BTreeSet<EventId> =
                    view_bus.events.iter().map(|event| event.id).collect();
                let made = &self.made[id];
                assert!(
                    made.is_subset(&have),
                    "{id}: events lost: {:?}",
                    made.difference(&have).collect::<Vec<_>>()
                );
            }
        }
    }
}

fn pick_request(requests: &[RequestId], pick: usize) -> Option<RequestId> {
    (!requests.is_empty()).then(|| requests[pick % requests.len()])
}

fn bus_kind(kind: u8) -> EventKind {
    match kind {
        0 => EventKind::ReceiptPrinted {
            printer: "receipt".into(),
        },
        1 => EventKind::Printed {
            printer: "laser".into(),
        },
        2 => EventKind::HandedOver,
        3 => EventKind::Cancelled {
            reason: "the citizen left".into(),
        },
        _ => EventKind::Approved,
    }
}

fn hub_kind(kind: u8) -> EventKind {
    match kind {
        0 => EventKind::Approved,
        1 => EventKind::Rejected {
            reason: "not the person concerned".into(),
        },
        2 => EventKind::Issued {
            document_id: "doc-1".into(),
        },
        _ => EventKind::Cancelled {
            reason: "duplicate request".into(),
        },
    }
}

/// A made-up citizen (a valid national-number checksum, no real person).
fn new_request(id: RequestId, device: &DeviceId, at: DateTime<Utc>) -> NewRequest {
    let person = Person {
        national_number: "85.07.31-003.28".parse().unwrap(),
        name: "Marie Peeters".into(),
    };
    NewRequest {
        id,
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
        authentication: AuthStrength::CardRead,
        purpose: None,
        origin: Origin {
            device: device.clone(),
            station: "kiosk-1".into(),
            stop: Some("markt".parse().unwrap()),
            at,
            whereabouts: Default::default(),
        },
        queue_number: 1,
        evidence: None,
        requester_postcode: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn every_replica_converges_and_no_event_is_lost(ops in proptest::collection::vec(op(), 1..60)) {
        let mut world = World::new();
        for op in ops {
            world.apply(op);
        }
        // Late uploads still on their way arrive (and are refused or harmless).
        while !world.in_flight.is_empty() {
            world.apply(Op::Deliver { pick: 0 });
        }
        world.heal();
        world.check_converged();
    }
}
