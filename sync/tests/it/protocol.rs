//! The sync protocol: an upload opens as it was built, and every way to tamper with one is
//! refused with its own code.

use automerge::{ActorId, ChangeHash};
use busloket_sync::protocol::{
    self, Answer, AnswerDoc, OutgoingDoc, Payload, ProtocolError, Upload, UploadHeader,
    VerifiedPayload, actor_is_bound, bound_actor, build_upload, decode_answer, encode_answer,
    open_upload,
};
use busloket_sync::record::{EventKind, RequestRecord};
use ed25519_dalek::{Signer, SigningKey};
use proptest::prelude::*;

use crate::support::{device, event_id, new_event, new_request, request_id, time};

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn actor_of(key: &SigningKey) -> ActorId {
    bound_actor(key.verifying_key().as_bytes(), [9; 8])
}

fn header(counter: u64) -> UploadHeader {
    UploadHeader {
        device: device("bus-1"),
        counter,
        created_at: time(0),
        answer_applied: 0,
        need_whole: Vec::new(),
        files: Vec::new(),
        trip: Vec::new(),
    }
}

fn record(n: u32, actor: ActorId) -> RequestRecord {
    RequestRecord::create(&new_request(n), actor, event_id(n * 100), "kiosk:k1").unwrap()
}

fn approve(record: &mut RequestRecord, actor: &ActorId, n: u32) {
    record
        .append(
            actor,
            new_event(n, 120, "staff:jan", "bus-1", EventKind::Approved),
        )
        .unwrap();
}

/// The upload's inner layout, to tamper with it.
fn unpack(body: &[u8]) -> Upload {
    postcard::from_bytes(&zstd::decode_all(body).unwrap()).unwrap()
}

fn pack(upload: &Upload) -> Vec<u8> {
    zstd::encode_all(&postcard::to_stdvec(upload).unwrap()[..], 3).unwrap()
}

fn open(body: &[u8], signer: &SigningKey) -> Result<protocol::VerifiedUpload, ProtocolError> {
    open_upload(body, &device("bus-1"), &signer.verifying_key())
}

#[test]
fn actors_are_bound_to_their_key_only() {
    let (mine, theirs) = (key(1), key(2));
    let actor = actor_of(&mine);
    assert!(actor_is_bound(&actor, mine.verifying_key().as_bytes()));
    assert!(!actor_is_bound(&actor, theirs.verifying_key().as_bytes()));
    let other_replica = bound_actor(mine.verifying_key().as_bytes(), [8; 8]);
    assert_ne!(
        actor, other_replica,
        "two stores of one device never share an actor"
    );
    assert!(actor_is_bound(
        &other_replica,
        mine.verifying_key().as_bytes()
    ));
    assert!(!actor_is_bound(
        &ActorId::from([0u8; 8]),
        mine.verifying_key().as_bytes()
    ));
}

#[test]
fn a_whole_document_and_then_its_new_changes_open_and_apply_at_the_hub() {
    let bus = key(1);
    let actor = actor_of(&bus);
    let mut on_bus = record(1, actor.clone());
    let first = OutgoingDoc::from_record(request_id(1), &mut on_bus, &[]);
    assert!(matches!(first.payload, Payload::Document(_)));
    let body = build_upload(&bus, &header(1), vec![first]);
    let opened = open(&body, &bus).unwrap();
    assert_eq!(opened.manifest.counter, 1);
    let [doc] = &opened.docs[..] else {
        panic!("one request")
    };
    doc.check_actors(bus.verifying_key().as_bytes(), |_| false)
        .unwrap();
    let VerifiedPayload::Document(document) = &doc.payload else {
        panic!("the whole document")
    };
    let (mut at_hub, _) =
        RequestRecord::from_document(automerge::AutoCommit::clone(document)).unwrap();
    assert_eq!(at_hub.heads(), on_bus.heads());
    let mut hashes: Vec<_> = doc.changes.iter().map(|change| change.hash).collect();
    let mut expected = on_bus.change_hashes();
    hashes.sort();
    expected.sort();
    assert_eq!(hashes, expected);

    let acked = at_hub.heads();
    approve(&mut on_bus, &actor, 2);
    let second = OutgoingDoc::from_record(request_id(1), &mut on_bus, &acked);
    let Payload::Changes(changes) = &second.payload else {
        panic!("changes since the acknowledged heads")
    };
    assert_eq!(changes.len(), 1);
    let opened = open(&build_upload(&bus, &header(2), vec![second]), &bus).unwrap();
    let doc = &opened.docs[0];
    assert_eq!(doc.base, acked);
    let VerifiedPayload::Changes(changes) = &doc.payload else {
        panic!("the changes")
    };
    at_hub.apply_changes(changes.clone()).unwrap();
    // Applying the same changes again is harmless.
    at_hub.apply_changes(changes.clone()).unwrap();
    assert_eq!(at_hub.heads(), on_bus.heads());
    assert_eq!(at_hub.view().unwrap().status, on_bus.view().unwrap().status);
}

/// An upload carrying request 1 as changes (so a byte of a change can be flipped).
fn changes_upload(bus: &SigningKey) -> Vec<u8> {
    let actor = actor_of(bus);
    let mut on_bus = record(1, actor.clone());
    let base = on_bus.heads();
    approve(&mut on_bus, &actor, 2);
    let doc = OutgoingDoc::from_record(request_id(1), &mut on_bus, &base);
    build_upload(bus, &header(3), vec![doc])
}

#[test]
fn a_flipped_byte_anywhere_is_refused() {
    let bus = key(1);
    let body = changes_upload(&bus);
    let upload = unpack(&body);

    // In a change: it no longer parses, or it hashes to something the manifest did not sign.
    let Payload::Changes(changes) = &upload.payloads[0] else {
        panic!("changes")
    };
    for position in [0, 9, changes[0].len() / 2, changes[0].len() - 1] {
        let mut tampered = upload.clone();
        let Payload::Changes(changes) = &mut tampered.payloads[0] else {
            unreachable!()
        };
        changes[0][position] ^= 0x01;
        let error = open(&pack(&tampered), &bus).unwrap_err();
        assert!(
            matches!(
                error,
                ProtocolError::BadPayload { .. } | ProtocolError::HashMismatch { .. }
            ),
            "byte {position}: {error}"
        );
    }

    // In the manifest: the signature no longer verifies.
    let mut tampered = upload.clone();
    let last = tampered.manifest.len() - 1;
    tampered.manifest[last] ^= 0x01;
    let error = open(&pack(&tampered), &bus).unwrap_err();
    assert_eq!(error.code(), "bad-signature");

    // In the compressed body: zstd's checksum or the postcard layout catches it.
    let mut tampered = body.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x01;
    assert!(open(&tampered, &bus).is_err());
}

#[test]
fn a_manifest_signed_by_another_device_is_refused() {
    let (bus, other) = (key(1), key(2));
    let body = changes_upload(&other);
    assert_eq!(open(&body, &bus).unwrap_err().code(), "bad-signature");
}

#[test]
fn a_manifest_that_names_another_device_is_refused() {
    let bus = key(1);
    let body = changes_upload(&bus);
    let error = open_upload(&body, &device("bus-2"), &bus.verifying_key()).unwrap_err();
    assert_eq!(error.code(), "wrong-device");
    assert!(error.to_string().contains("bus-1"));
}

#[test]
fn a_change_made_by_another_devices_actor_is_refused_unless_the_hub_has_it() {
    let (bus, other) = (key(1), key(2));
    let mut foreign = record(1, actor_of(&other));
    let doc = OutgoingDoc::from_record(request_id(1), &mut foreign, &[]);
    let opened = open(&build_upload(&bus, &header(1), vec![doc]), &bus).unwrap();
    let doc = &opened.docs[0];
    let error = doc
        .check_actors(bus.verifying_key().as_bytes(), |_| false)
        .unwrap_err();
    assert_eq!(error.code(), "foreign-actor");
    // A change the hub already has (it sent it to the bus) may come back from anyone.
    doc.check_actors(bus.verifying_key().as_bytes(), |_| true)
        .unwrap();
}

/// Re-signs `upload` after `tamper` changed its manifest: what a device that holds its key could
/// send.
fn resigned(bus: &SigningKey, tamper: impl FnOnce(&mut protocol::Manifest)) -> Vec<u8> {
    let mut upload = unpack(&changes_upload(bus));
    let mut manifest: protocol::Manifest = postcard::from_bytes(&upload.manifest).unwrap();
    tamper(&mut manifest);
    upload.manifest = postcard::to_stdvec(&manifest).unwrap();
    upload.signature = bus.sign(&upload.manifest).to_bytes().to_vec();
    pack(&upload)
}

#[test]
fn a_signed_manifest_that_does_not_match_its_payload_is_refused() {
    let bus = key(1);
    let wrong_hash = resigned(&bus, |m| m.docs[0].changes[0][0] ^= 1);
    assert_eq!(open(&wrong_hash, &bus).unwrap_err().code(), "hash-mismatch");

    let missing = resigned(&bus, |m| m.docs[0].changes.clear());
    assert_eq!(open(&missing, &bus).unwrap_err().code(), "change-count");

    let other_heads = resigned(&bus, |m| m.docs[0].heads = vec![[7; 32]]);
    assert_eq!(open(&other_heads, &bus).unwrap_err().code(), "bad-heads");

    let no_heads = resigned(&bus, |m| m.docs[0].heads.clear());
    assert_eq!(open(&no_heads, &bus).unwrap_err().code(), "bad-heads");

    let other_domain = resigned(&bus, |m| m.domain = "busloket-sync-answer-v1".into());
    assert_eq!(open(&other_domain, &bus).unwrap_err().code(), "bad-domain");

    let fewer_payloads = resigned(&bus, |m| m.docs.push(m.docs[0].clone()));
    assert_eq!(
        open(&fewer_payloads, &bus).unwrap_err().code(),
        "bad-encoding"
    );
}

#[test]
fn oversized_and_inflating_bodies_are_refused_before_parsing() {
    let bus = key(1);
    let huge = vec![0u8; protocol::MAX_BODY_BYTES + 1];
    assert_eq!(open(&huge, &bus).unwrap_err().code(), "too-large");
    // 64 MiB of zeros compress to a few kilobytes.
    let bomb = zstd::encode_all(&vec![0u8; 64 << 20][..], 19).unwrap();
    assert!(bomb.len() < protocol::MAX_BODY_BYTES);
    assert_eq!(open(&bomb, &bus).unwrap_err().code(), "too-large");
    assert_eq!(
        open(b"not zstd at all", &bus).unwrap_err().code(),
        "bad-encoding"
    );
    let trailing = [zstd::encode_all(&b"\x00"[..], 3).unwrap()].concat();
    assert_eq!(open(&trailing, &bus).unwrap_err().code(), "bad-encoding");
}

#[test]
fn an_answer_opens_only_for_its_device_and_upload() {
    let answer = Answer {
        domain: protocol::ANSWER_DOMAIN.into(),
        device: "bus-1".into(),
        counter: 4,
        answer_seq: 17,
        docs: vec![AnswerDoc {
            id: *request_id(1).as_bytes(),
            heads: vec![[3; 32]],
            payload: None,
        }],
        refused: Vec::new(),
        files: Vec::new(),
        more: false,
        trip_acked: 0,
    };
    let body = encode_answer(&answer);
    assert_eq!(decode_answer(&body, &device("bus-1"), 4).unwrap(), answer);
    assert_eq!(
        decode_answer(&body, &device("bus-1"), 5)
            .unwrap_err()
            .code(),
        "wrong-answer"
    );
    assert_eq!(
        decode_answer(&body, &device("bus-2"), 4)
            .unwrap_err()
            .code(),
        "wrong-device"
    );
    let heads: Vec<ChangeHash> = protocol::from_wire(&answer.docs[0].heads);
    assert_eq!(protocol::to_wire(&heads), answer.docs[0].heads);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever arrives, opening it answers with an error or an upload, never a panic.
    #[test]
    fn arbitrary_bodies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let bus = key(1);
        let _ = open(&bytes, &bus);
        let _ = open(&zstd::encode_all(&bytes[..], 1).unwrap(), &bus);
        let _ = decode_answer(&zstd::encode_all(&bytes[..], 1).unwrap(), &device("bus-1"), 1);
    }
}

#[test]
fn trip_log_lines_are_signed_and_must_come_in_order() {
    use busloket_sync::protocol::TripLine;
    use busloket_sync::trip::{TripEntry, TripEvent};
    let bus = key(1);
    let line = |number: u64| TripLine {
        number,
        entry: TripEntry {
            at: time(number as i64),
            event: TripEvent::FixLost,
        },
    };
    let mut in_order = header(1);
    in_order.trip = vec![line(1), line(2)];
    let opened = open(&build_upload(&bus, &in_order, Vec::new()), &bus).unwrap();
    assert_eq!(opened.manifest.trip, in_order.trip);
    let mut backwards = header(2);
    backwards.trip = vec![line(2), line(1)];
    let error = open(&build_upload(&bus, &backwards, Vec::new()), &bus).unwrap_err();
    assert!(matches!(error, ProtocolError::BadEncoding(_)), "{error}");
}
