//! The engine over a real sled store, without HTTP: acknowledgements, resends, restarts, the
//! city's events reaching the bus, per-request refusals, and answers in batches.

use std::sync::Arc;

use automerge::{AutoCommit, ChangeHash, ObjType, ROOT, transaction::Transactable};
use busloket_hub::storage::{HubStorage, SledStorage};
use busloket_hub::sync::{DeviceIdentity, Hub};
use busloket_sync::at_rest::AtRestKey;
use busloket_sync::protocol::{
    ANSWER_BATCH_BYTES, Answer, OutgoingDoc, Payload, TripLine, build_upload,
};
use busloket_sync::record::{EventKind, NewEvent, RequestRecord};
use busloket_sync::stops::Position;
use busloket_sync::terms::RequestId;
use busloket_sync::trip::{TripEntry, TripEvent};
use ed25519_dalek::SigningKey;

use crate::support::{Bus, device, event_id, request_id, time};

const HUB_KEY: &[u8] = b"the hub's SubjectPublicKeyInfo, for the actor";

fn open(dir: &std::path::Path) -> Hub<dyn HubStorage> {
    let storage: Arc<dyn HubStorage> =
        Arc::new(SledStorage::open(dir, AtRestKey::from_bytes([4; 32])).unwrap());
    Hub::new(storage, HUB_KEY).unwrap()
}

fn identity(bus: &Bus) -> DeviceIdentity {
    DeviceIdentity {
        id: bus.id.clone(),
        public_key: bus.public_key(),
        serial: vec![1, 2, 3],
    }
}

fn bus(number: u8) -> Bus {
    Bus::new(
        &format!("bus-{number}"),
        SigningKey::from_bytes(&[number; 32]),
        number,
    )
}

/// One round: the bus uploads its outbox and applies the answer.
fn round(hub: &Hub<dyn HubStorage>, bus: &mut Bus, now: chrono::DateTime<chrono::Utc>) -> Answer {
    let body = bus.upload();
    let answer = hub.receive(&identity(bus), &body, now).unwrap();
    bus.apply(&answer)
}

fn heads(record: &mut RequestRecord) -> Vec<[u8; 32]> {
    record.heads().iter().map(|hash| hash.0).collect()
}

fn hub_event(n: u32, kind: EventKind) -> NewEvent {
    NewEvent {
        id: event_id(10_000 + n),
        at: time(7200),
        by: "staff:it".into(),
        device: device("hub"),
        kind,
    }
}

/// Rejects every request of `ids` at the hub with a reason of 200 000 letters drawn from `seed`
/// that do not compress much (Automerge compresses large columns), so that a few fill an answer.
fn reject_with_long_reasons(hub: &Hub<dyn HubStorage>, ids: &[RequestId], mut seed: u64) {
    for (n, id) in ids.iter().enumerate() {
        let reason: String = (0..200_000)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                char::from(b'a' + ((seed >> 33) % 26) as u8)
            })
            .collect();
        hub.append_event(*id, hub_event(n as u32, EventKind::Rejected { reason }))
            .unwrap();
    }
}

/// An answer's payloads stay within the batch, unless one document alone is larger.
fn assert_within_the_batch(answer: &Answer) {
    let payload: usize = answer
        .docs
        .iter()
        .filter_map(|doc| doc.payload.as_ref().map(Payload::len))
        .sum();
    assert!(
        payload <= ANSWER_BATCH_BYTES || answer.docs.len() == 1,
        "{payload} bytes in {} documents",
        answer.docs.len()
    );
}

fn assert_all_rejected(bus: &mut Bus, ids: &[RequestId]) {
    for id in ids {
        assert_eq!(
            bus.records.get_mut(id).unwrap().status().unwrap().code(),
            "rejected"
        );
    }
}

#[test]
fn fifty_requests_are_acknowledged_a_resend_changes_nothing_and_a_restart_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut bus = bus(1);
    let ids: Vec<_> = (0..50).map(|n| bus.create(1, n)).collect();
    let body = bus.upload();
    let (first, again);
    {
        let hub = open(dir.path());
        first = hub.receive(&identity(&bus), &body, time(4000)).unwrap();
        // The link dropped: the bus never saw the answer and sends the same bytes again.
        again = hub.receive(&identity(&bus), &body, time(4001)).unwrap();
    }
    let answer = bus.apply(&again);
    let first = busloket_sync::protocol::decode_answer(&first, &bus.id, 1).unwrap();
    assert_eq!(answer.docs.len(), 50);
    assert_eq!(first.docs.len(), 50);
    assert!(answer.refused.is_empty() && !answer.more);
    assert!(
        answer.answer_seq > first.answer_seq,
        "every answer has its own checkpoint"
    );
    for doc in &answer.docs {
        let id = RequestId::from_bytes(doc.id);
        assert_eq!(
            doc.heads,
            heads(bus.records.get_mut(&id).unwrap()),
            "same heads"
        );
        assert_eq!(doc.payload, None, "the bus has everything");
    }
    assert!(bus.outbox().is_empty());

    // Reopened: everything is there, once.
    let hub = open(dir.path());
    assert_eq!(hub.storage().held_count(&bus.id).unwrap(), 50);
    for id in &ids {
        let mut stored = hub.request(*id).unwrap().unwrap();
        let record = bus.records.get_mut(id).unwrap();
        assert_eq!(stored.heads(), record.heads());
        assert_eq!(stored.events().unwrap().len(), 1, "nothing duplicated");
        assert_eq!(stored.view().unwrap(), record.view().unwrap());
    }
    let state = hub.storage().device_state(&bus.id).unwrap();
    assert_eq!(state.last_counter, Some(1));
    assert!(
        hub.storage().manifest(&bus.id, 1).unwrap().is_some(),
        "the manifest is archived"
    );
    // A new round after the restart goes on where it was.
    bus.records
        .get_mut(&ids[0])
        .unwrap()
        .append(&bus.actor.clone(), hub_event(1, EventKind::Approved))
        .unwrap();
    let answer = round(&hub, &mut bus, time(5000));
    assert_eq!(answer.docs.len(), 1);
    assert!(bus.outbox().is_empty());
}

#[test]
fn an_event_of_the_city_reaches_the_bus_and_stops_once_the_bus_confirms() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path());
    let mut bus = bus(2);
    let mut other = bus_other();
    let ids: Vec<_> = (0..3).map(|n| bus.create(2, n)).collect();
    round(&hub, &mut bus, time(4000));
    // Another bus is not concerned.
    other.create(3, 0);
    round(&hub, &mut other, time(4000));

    let view = hub
        .append_event(ids[1], hub_event(1, EventKind::Approved))
        .unwrap();
    assert_eq!(view.status.code(), "approved");

    // The bus's next upload (nothing new of its own) gets the event.
    let answer = round(&hub, &mut bus, time(4100));
    assert_eq!(answer.docs.len(), 1);
    assert_eq!(answer.docs[0].id, *ids[1].as_bytes());
    assert!(matches!(answer.docs[0].payload, Some(Payload::Changes(_))));
    let record = bus.records.get_mut(&ids[1]).unwrap();
    assert_eq!(record.status().unwrap().code(), "approved");
    let mut at_hub = hub.request(ids[1]).unwrap().unwrap();
    assert_eq!(record.heads(), at_hub.heads(), "heads converge");
    assert!(bus.outbox().is_empty());

    // The bus confirmed (answer_applied): the next answer does not send it again.
    let answer = round(&hub, &mut bus, time(4200));
    assert!(answer.docs.is_empty(), "{:?}", answer.docs);

    // An answer that was lost is sent again: the hub waits for the confirmation.
    hub.append_event(ids[2], hub_event(2, EventKind::Approved))
        .unwrap();
    let lost = bus.upload();
    let _ = hub.receive(&identity(&bus), &lost, time(4300)).unwrap();
    let answer = round(&hub, &mut bus, time(4301));
    assert_eq!(answer.docs.len(), 1, "sent again: the bus never confirmed");
    assert_eq!(
        bus.records
            .get_mut(&ids[2])
            .unwrap()
            .status()
            .unwrap()
            .code(),
        "approved"
    );
    let other_answer = round(&hub, &mut other, time(4400));
    assert!(
        other_answer.docs.is_empty(),
        "the other bus holds none of these"
    );
}

fn bus_other() -> Bus {
    bus(3)
}

#[test]
fn missing_base_and_invalid_record_are_refused_per_request_and_the_others_applied() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path());
    let mut bus = bus(4);
    let good = bus.create(4, 1);
    let orphan = bus.create(4, 2);
    // The bus believes the hub has `orphan` up to its creation (it does not) and sends only
    // the later change.
    let base = bus.records.get_mut(&orphan).unwrap().heads();
    let actor = bus.actor.clone();
    bus.records
        .get_mut(&orphan)
        .unwrap()
        .append(&actor, hub_event(1, EventKind::Approved))
        .unwrap();
    bus.acked.insert(orphan, base);

    // A document of this bus's own actor that is no request record at all.
    let bogus_id = request_id(4, 3);
    let mut bogus = AutoCommit::new().with_actor(bus.actor.clone());
    bogus
        .put_object(ROOT, "not-a-request", ObjType::Map)
        .unwrap();
    bogus.commit();
    let bogus_heads = bogus.get_heads();
    let bogus_doc = OutgoingDoc {
        id: bogus_id,
        base: Vec::new(),
        heads: bogus_heads.clone(),
        changes: bogus
            .get_changes(&[])
            .iter()
            .map(|c| c.hash())
            .collect::<Vec<ChangeHash>>(),
        payload: Payload::Document(bogus.save()),
    };

    bus.counter += 1;
    let docs = vec![
        OutgoingDoc::from_record(good, bus.records.get_mut(&good).unwrap(), &[]),
        OutgoingDoc::from_record(
            orphan,
            bus.records.get_mut(&orphan).unwrap(),
            &bus.acked[&orphan].clone(),
        ),
        bogus_doc,
    ];
    let body = build_upload(&bus.key, &bus.header(), docs);
    let answer = bus.apply(&hub.receive(&identity(&bus), &body, time(4000)).unwrap());
    let codes: Vec<(_, _)> = answer
        .refused
        .iter()
        .map(|refusal| (refusal.id, refusal.code.as_str()))
        .collect();
    assert_eq!(
        codes,
        vec![
            (*orphan.as_bytes(), "missing-base"),
            (*bogus_id.as_bytes(), "invalid-record")
        ]
    );
    assert_eq!(answer.docs.len(), 1);
    assert!(
        hub.request(good).unwrap().is_some(),
        "the good request is applied"
    );
    assert!(
        hub.request(orphan).unwrap().is_none(),
        "nothing of the orphan is kept"
    );
    assert!(hub.request(bogus_id).unwrap().is_none());
    let quarantine = hub.storage().quarantine_entries(&bus.id).unwrap();
    assert_eq!(quarantine.len(), 1);
    assert_eq!(quarantine[0].code, "invalid-record");
    assert_eq!(quarantine[0].request, Some(*bogus_id.as_bytes()));

    // missing-base reset the acknowledged heads: the next round sends it whole and it lands.
    let answer = {
        let body = bus.upload_of(&[orphan]);
        bus.apply(&hub.receive(&identity(&bus), &body, time(4100)).unwrap())
    };
    assert!(answer.refused.is_empty(), "{:?}", answer.refused);
    assert_eq!(
        hub.request(orphan)
            .unwrap()
            .unwrap()
            .status()
            .unwrap()
            .code(),
        "approved"
    );
}

#[test]
fn a_large_answer_sets_more_and_drains_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path());
    let mut first = bus(5);
    // Requests with a long rejection reason each, so that a few fill the answer's megabyte.
    let ids: Vec<_> = (0..20).map(|n| first.create(5, n)).collect();
    round(&hub, &mut first, time(4000));
    reject_with_long_reasons(&hub, &ids, 0x5eed);
    let mut rounds = 0;
    let mut received = 0;
    loop {
        rounds += 1;
        let answer = round(&hub, &mut first, time(5000 + rounds));
        assert_within_the_batch(&answer);
        received += answer.docs.len();
        if !answer.more {
            break;
        }
        assert!(rounds < 20, "the batches never drain");
    }
    assert!(
        rounds >= 3,
        "20 × ~120 kB needs several answers, took {rounds}"
    );
    assert_eq!(received, 20);
    assert_all_rejected(&mut first, &ids);
    let answer = round(&hub, &mut first, time(6000));
    assert!(answer.docs.is_empty() && !answer.more);
}

#[test]
fn a_lower_or_reused_counter_is_replayed_but_an_exact_resend_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path());
    let mut bus = bus(6);
    bus.create(6, 1);
    let first = bus.upload();
    hub.receive(&identity(&bus), &first, time(4000)).unwrap();
    bus.create(6, 2);
    let second = bus.upload();
    hub.receive(&identity(&bus), &second, time(4001)).unwrap();
    let refusal = hub
        .receive(&identity(&bus), &first, time(4002))
        .unwrap_err();
    assert_eq!((refusal.code, refusal.status), ("replayed", 409));
    // The same counter with other bytes is not a resend.
    bus.counter -= 1;
    bus.create(6, 3);
    let forged = bus.upload();
    let refusal = hub
        .receive(&identity(&bus), &forged, time(4003))
        .unwrap_err();
    assert_eq!(refusal.code, "replayed");
    assert!(hub.receive(&identity(&bus), &second, time(4004)).is_ok());
    assert!(
        hub.storage()
            .quarantine_entries(&bus.id)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn need_whole_answers_only_requests_the_device_holds() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path());
    let mut owner = bus(6);
    let theirs = owner.create(6, 1);
    round(&hub, &mut owner, time(4000));

    // Another bus asks for a request it never held: nothing of it comes back.
    let mut prying = bus(7);
    let own = prying.create(7, 1);
    round(&hub, &mut prying, time(4100));
    prying.need_whole = vec![theirs, own];
    let answer = round(&hub, &mut prying, time(4200));
    let ids: Vec<_> = answer.docs.iter().map(|doc| doc.id).collect();
    assert_eq!(ids, vec![*own.as_bytes()], "only its own request, whole");
    assert!(matches!(answer.docs[0].payload, Some(Payload::Document(_))));
    assert!(!prying.records.contains_key(&theirs));

    // The owner gets its own whole.
    owner.need_whole = vec![theirs];
    let answer = round(&hub, &mut owner, time(4300));
    assert_eq!(answer.docs.len(), 1);
    assert!(matches!(answer.docs[0].payload, Some(Payload::Document(_))));
}

#[test]
fn need_whole_documents_count_against_the_answer_batch() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path());
    let mut first = bus(8);
    let ids: Vec<_> = (0..12).map(|n| first.create(8, n)).collect();
    round(&hub, &mut first, time(4000));
    reject_with_long_reasons(&hub, &ids, 0xbeef);
    // The bus asks for every one whole: they cannot all go in one answer.
    let mut remaining = ids.clone();
    let mut rounds = 0;
    loop {
        rounds += 1;
        first.need_whole = remaining.clone();
        let answer = round(&hub, &mut first, time(5000 + rounds));
        assert_within_the_batch(&answer);
        remaining.retain(|id| !answer.docs.iter().any(|doc| doc.id == *id.as_bytes()));
        if !answer.more {
            break;
        }
        assert!(rounds < 20, "the batches never drain");
    }
    assert!(rounds >= 2, "12 × ~120 kB needs several answers");
    assert!(remaining.is_empty(), "{} never sent", remaining.len());
    assert_all_rejected(&mut first, &ids);
}

/// Trip log lines numbered from 1 (positions north of the Markt).
fn trip_lines(numbers: std::ops::RangeInclusive<u64>) -> Vec<TripLine> {
    numbers
        .map(|number| TripLine {
            number,
            entry: TripEntry {
                at: time(number as i64 * 30),
                event: TripEvent::Point {
                    position: Position {
                        latitude: 50.8279 + number as f64 / 1000.0,
                        longitude: 3.2649,
                    },
                    speed_mps: Some(8.0),
                },
            },
        })
        .collect()
}

#[test]
fn the_trip_log_is_stored_in_order_once_and_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path());
    let mut bus = bus(1);
    bus.trip = trip_lines(1..=3);
    assert_eq!(round(&hub, &mut bus, time(100)).trip_acked, 3);
    // The answer was lost: the bus sends 1 to 5; the hub keeps 4 and 5, nothing twice.
    bus.trip = trip_lines(1..=5);
    assert_eq!(round(&hub, &mut bus, time(200)).trip_acked, 5);
    // A gap (6 is missing): nothing taken, the answer says where the hub is.
    bus.trip = trip_lines(7..=8);
    assert_eq!(round(&hub, &mut bus, time(300)).trip_acked, 5);
    let stored = hub.storage().trip(&bus.id).unwrap();
    assert_eq!(
        stored.iter().map(|(number, _)| *number).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(stored[3].1, trip_lines(4..=4)[0].entry);
    // Another bus's log is its own.
    assert!(hub.storage().trip(&device("bus-2")).unwrap().is_empty());
}
