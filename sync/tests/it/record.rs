//! The request record by example: creation, the lifecycle rules of `append`, a concurrent
//! conflict and its resolution (snapshot of the merged view), a request created twice, and the
//! checks `load` makes.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT, ReadDoc};
use busloket_sync::record::{
    ConflictKind, EligibilityOutcome, EventKind, Fix, RecordError, RequestRecord, SCHEMA_VERSION,
    Status, StopSource, Whereabouts,
};
use busloket_sync::terms::{DeliveryMethod, HolderAlgorithm};
use expect_test::expect;

use crate::support::{actor, event_id, new_event, new_request, time};

fn created(n: u32) -> RequestRecord {
    RequestRecord::create(
        &new_request(n),
        actor(1),
        event_id(1000 + n),
        "kiosk:kiosk-1",
    )
    .unwrap()
}

fn eligible() -> EventKind {
    EventKind::EligibilityDecided {
        outcome: EligibilityOutcome::Automatic,
        reason: None,
    }
}

#[test]
fn a_new_record_holds_its_fields_and_the_submission() {
    let record = created(1);
    let view = record.view().unwrap();
    assert_eq!(view.schema, u64::from(SCHEMA_VERSION));
    assert_eq!(view.fields, new_request(1));
    assert_eq!(view.status, Status::Submitted);
    assert_eq!(view.events.len(), 1);
    assert_eq!(view.events[0].kind, EventKind::Submitted);
    assert_eq!(view.events[0].at, new_request(1).origin.at);
    assert!(view.conflicts.is_empty() && view.field_conflicts.is_empty());
    assert_eq!(record.id().unwrap(), new_request(1).id);
}

#[test]
fn create_refuses_an_incomplete_request() {
    let mut new = new_request(1);
    new.delivery.method = DeliveryMethod::Email;
    let error = RequestRecord::create(&new, actor(1), event_id(1), "kiosk:kiosk-1")
        .err()
        .unwrap();
    assert!(
        matches!(error, RecordError::Incomplete(reason) if reason.contains("e-mail")),
        "{error}"
    );
    new.delivery.email = Some("marie@example.org".into());
    new.queue_number = 0;
    assert!(RequestRecord::create(&new, actor(1), event_id(1), "kiosk:kiosk-1").is_err());
}

#[test]
fn append_follows_the_lifecycle() {
    let mut record = created(1);
    let staff = |n, kind| new_event(n, 100 + i64::from(n), "staff:jan", "bus-1", kind);
    let error = record
        .append(&actor(1), staff(1, EventKind::HandedOver))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "`handed-over` cannot be recorded while the request is `submitted`"
    );
    assert!(matches!(
        record.append(&actor(1), staff(1, EventKind::Submitted)),
        Err(RecordError::NotAllowedNow {
            event: "submitted",
            ..
        })
    ));
    let resolution = EventKind::Resolved {
        note: "nothing".into(),
        kept: vec![],
    };
    assert!(matches!(
        record.append(&actor(1), staff(1, resolution)),
        Err(RecordError::NotAllowedNow {
            event: "resolved",
            ..
        })
    ));
    record.append(&actor(1), staff(1, eligible())).unwrap();
    let blank = staff(
        9,
        EventKind::Issued {
            document_id: " ".into(),
        },
    );
    assert!(matches!(
        record.append(&actor(1), blank),
        Err(RecordError::Incomplete(_))
    ));
    assert_eq!(
        format!("{record:?}"),
        format!("RequestRecord {{ id: Some({:?}), .. }}", new_request(1).id)
    );
    assert!(matches!(
        record.append(&actor(1), staff(1, EventKind::Approved)),
        Err(RecordError::DuplicateEvent(_))
    ));
    record
        .append(
            &actor(1),
            staff(
                2,
                EventKind::Issued {
                    document_id: "D-1".into(),
                },
            ),
        )
        .unwrap();
    record
        .append(
            &actor(1),
            staff(
                3,
                EventKind::Printed {
                    printer: "laser".into(),
                },
            ),
        )
        .unwrap();
    record
        .append(&actor(1), staff(4, EventKind::HandedOver))
        .unwrap();
    assert_eq!(record.status().unwrap(), Status::HandedOver);
    let events = record.events().unwrap();
    assert_eq!(events.len(), 5);
    assert_eq!(events[4].seen.len(), 4, "each event saw all before it");
}

/// The bus prints while the hub cancels: a conflict until central IT resolves it.
#[test]
fn a_concurrent_cancel_and_print_conflict_until_resolved() {
    let mut bus = created(1);
    bus.append(&actor(1), new_event(1, 100, "hub:rules", "hub", eligible()))
        .unwrap();
    bus.append(
        &actor(1),
        new_event(
            2,
            110,
            "hub:issuer",
            "hub",
            EventKind::Issued {
                document_id: "D-1".into(),
            },
        ),
    )
    .unwrap();
    let mut hub = RequestRecord::load(&bus.save()).unwrap();
    let print = new_event(
        3,
        200,
        "staff:jan",
        "bus-1",
        EventKind::Printed {
            printer: "laser".into(),
        },
    );
    bus.append(&actor(1), print).unwrap();
    let cancel = new_event(
        4,
        190,
        "staff:central",
        "hub",
        EventKind::Cancelled {
            reason: "asked by phone".into(),
        },
    );
    hub.append(&actor(9), cancel).unwrap();

    bus.merge(&mut hub).unwrap();
    hub.merge(&mut bus).unwrap();
    let view = bus.view().unwrap();
    assert_eq!(view, hub.view().unwrap());
    assert_eq!(view.status, Status::InConflict);
    assert_eq!(view.conflicts.len(), 1);
    assert_eq!(view.conflicts[0].kind, ConflictKind::CancelVsDelivery);
    // While in conflict, only a resolution is accepted.
    let handed = new_event(5, 300, "staff:jan", "bus-1", EventKind::HandedOver);
    assert!(matches!(
        bus.append(&actor(1), handed),
        Err(RecordError::NotAllowedNow {
            status: "in-conflict",
            ..
        })
    ));
    let stranger = EventKind::Resolved {
        note: "?".into(),
        kept: vec![event_id(1)],
    };
    let stranger = new_event(6, 400, "staff:central", "hub", stranger);
    assert!(matches!(
        hub.append(&actor(9), stranger),
        Err(RecordError::NotInConflict(_))
    ));

    let keep_print = EventKind::Resolved {
        note: "the citizen has the document".into(),
        kept: vec![event_id(3)],
    };
    hub.append(
        &actor(9),
        new_event(7, 400, "staff:central", "hub", keep_print),
    )
    .unwrap();
    bus.merge(&mut hub).unwrap();
    let view = bus.view().unwrap();
    assert_eq!(view.status, Status::Printed);
    assert_eq!(view.overruled, vec![event_id(4)]);
    let json = serde_json::to_string_pretty(&serde_json::json!({
        "status": view.status,
        "conflicts": view.conflicts,
        "overruled": view.overruled,
        "events": view.events.iter().map(|e| format!("{} {} {} seen={}", e.at.format("%H:%M:%S"), e.kind.code(), e.by, e.seen.len())).collect::<Vec<_>>(),
    }))
    .unwrap();
    expect![[r#"
        {
          "conflicts": [],
          "events": [
            "08:01:00 submitted kiosk:kiosk-1 seen=0",
            "08:01:40 eligibility-decided hub:rules seen=1",
            "08:01:50 issued hub:issuer seen=2",
            "08:03:10 cancelled staff:central seen=3",
            "08:03:20 printed staff:jan seen=3",
            "08:06:40 resolved staff:central seen=5"
          ],
          "overruled": [
            "0197729a-3c04-7000-8000-000000000004"
          ],
          "status": "printed"
        }"#]]
    .assert_eq(&json);
}

#[test]
fn a_request_created_twice_shows_both_creations() {
    let mut one = created(1);
    let mut other_fields = new_request(1);
    other_fields.subject.name = "Maria Peeters".into();
    let mut two =
        RequestRecord::create(&other_fields, actor(2), event_id(2000), "staff:jan").unwrap();
    one.merge(&mut two).unwrap();
    let view = one.view().unwrap();
    assert_eq!(view.status, Status::InConflict);
    assert_eq!(view.conflicts.len(), 1);
    assert_eq!(view.conflicts[0].kind, ConflictKind::TwoSubmissions);
    assert_eq!(view.field_conflicts.len(), 1);
    assert_eq!(view.field_conflicts[0].field, "subject");
    assert_eq!(view.events.len(), 2, "both event lists are read");
    let keep = EventKind::Resolved {
        note: "same person".into(),
        kept: vec![event_id(1001)],
    };
    one.append(&actor(9), new_event(3, 500, "staff:central", "hub", keep))
        .unwrap();
    assert_eq!(one.status().unwrap(), Status::Submitted);
}

#[test]
fn merge_refuses_another_request() {
    let mut one = created(1);
    let mut two = created(2);
    assert!(matches!(
        one.merge(&mut two),
        Err(RecordError::DifferentRequest { .. })
    ));
}

#[test]
fn save_load_and_incremental_round_trip() {
    let mut record = created(1);
    let snapshot = record.save();
    let heads = record.heads();
    record
        .append(&actor(1), new_event(1, 100, "hub:rules", "hub", eligible()))
        .unwrap();
    let delta = record.save_after(&heads);
    assert_eq!(
        record.save_incremental(),
        delta,
        "the first incremental after a save is the same delta"
    );
    let mut loaded = RequestRecord::load(&snapshot).unwrap();
    loaded.load_incremental(&delta).unwrap();
    assert_eq!(loaded.view().unwrap(), record.view().unwrap());
    assert!(loaded.missing_dependencies().is_empty());
    assert_eq!(time(100), loaded.events().unwrap()[1].at);
}

#[test]
fn load_checks_the_schema_and_the_fields() {
    let bytes = created(1).save();
    let mut doc = AutoCommit::load(&bytes).unwrap();
    doc.put(ROOT, "schema", 2u64).unwrap();
    let error = RequestRecord::load(&doc.save()).err().unwrap();
    assert_eq!(
        error.to_string(),
        "the record has schema version 2; this program reads version 1"
    );

    let mut doc = AutoCommit::load(&bytes).unwrap();
    doc.delete(ROOT, "document").unwrap();
    assert!(
        matches!(RequestRecord::load(&doc.save()), Err(RecordError::Missing { field }) if field == "document")
    );

    let mut doc = AutoCommit::load(&bytes).unwrap();
    doc.put(ROOT, "relation", "cousin").unwrap();
    let error = RequestRecord::load(&doc.save()).err().unwrap();
    assert_eq!(
        error.to_string(),
        "the record's `relation` is invalid: unknown relation `cousin`"
    );

    assert!(matches!(
        RequestRecord::load(b"not automerge"),
        Err(RecordError::Automerge(_))
    ));
}

#[test]
fn card_evidence_is_kept_and_checked() {
    let with_card = created(1);
    let evidence = with_card
        .view()
        .unwrap()
        .fields
        .evidence
        .expect("request 1 was made with a card");
    assert_eq!(evidence.applet_version, 0x18);
    assert!(evidence.chip_verified && evidence.register_signature_verified);
    let holder = evidence
        .holder
        .clone()
        .expect("request 1 was signed with the PIN");
    assert_eq!(holder.algorithm, HolderAlgorithm::EcdsaP384Sha384);
    assert_eq!(holder.signature, vec![0x5A; 96]);
    assert_eq!(
        created(3).view().unwrap().fields.evidence.unwrap().holder,
        None
    );
    assert_eq!(created(2).view().unwrap().fields.evidence, None);

    let mut reloaded = RequestRecord::load(&created(1).save()).unwrap();
    assert_eq!(reloaded.view().unwrap().fields.evidence, Some(evidence));
    let mut doc = AutoCommit::load(&reloaded.save()).unwrap();
    let (_, map) = doc.get(ROOT, "evidence").unwrap().unwrap();
    doc.put(&map, "identity_file_sha256", "not a hash").unwrap();
    let error = RequestRecord::load(&doc.save()).err().unwrap();
    assert!(error.to_string().contains("evidence"), "{error}");

    let mut doc = AutoCommit::load(&created(1).save()).unwrap();
    let (_, map) = doc.get(ROOT, "evidence").unwrap().unwrap();
    let (_, holder) = doc.get(&map, "holder").unwrap().unwrap();
    doc.put(&holder, "signature", "not bytes").unwrap();
    let error = RequestRecord::load(&doc.save()).err().unwrap();
    assert!(error.to_string().contains("signature"), "{error}");
}

#[test]
fn the_whereabouts_are_kept_and_checked() {
    let fix = Fix {
        latitude: 51.05434,
        longitude: 3.71742,
        at: time(30),
        speed_mps: Some(0.4),
    };
    let mut new = new_request(1);
    new.origin.whereabouts = Whereabouts {
        stop_source: Some(StopSource::Staff),
        fix: Some(fix),
        clock_skew_ms: Some(-125_000),
    };
    let mut record = RequestRecord::create(&new, actor(1), event_id(1), "kiosk:kiosk-1").unwrap();
    let reloaded = RequestRecord::load(&record.save()).unwrap();
    assert_eq!(reloaded.view().unwrap().fields.origin, new.origin);
    // A request without them (no receiver, or made before they were written) reads as none.
    assert_eq!(
        created(2).view().unwrap().fields.origin.whereabouts,
        Whereabouts::default()
    );

    let refused = |whereabouts: Whereabouts, stop: bool| {
        let mut new = new_request(1);
        new.origin.whereabouts = whereabouts;
        if !stop {
            new.origin.stop = None;
        }
        RequestRecord::create(&new, actor(1), event_id(1), "kiosk:kiosk-1")
            .err()
            .map(|error| error.to_string())
    };
    let bad_fix = |latitude: f64, speed: f64| Whereabouts {
        fix: Some(Fix {
            latitude,
            speed_mps: Some(speed),
            ..fix
        }),
        ..Whereabouts::default()
    };
    assert!(
        refused(bad_fix(91.0, 0.0), true)
            .unwrap()
            .contains("latitude within ±90")
    );
    assert!(refused(bad_fix(f64::NAN, 0.0), true).is_some());
    assert!(refused(bad_fix(51.0, -1.0), true).is_some());
    let source_without_stop = Whereabouts {
        stop_source: Some(StopSource::Gps),
        ..Whereabouts::default()
    };
    assert!(
        refused(source_without_stop, false)
            .unwrap()
            .contains("stop source needs a stop")
    );

    // A fix that another replica wrote badly is refused on load, naming the field.
    let mut doc = AutoCommit::load(&record.save()).unwrap();
    let (_, origin) = doc.get(ROOT, "origin").unwrap().unwrap();
    let (_, map) = doc.get(&origin, "fix").unwrap().unwrap();
    doc.put(&map, "latitude", "north").unwrap();
    let error = RequestRecord::load(&doc.save()).err().unwrap().to_string();
    assert!(error.contains("`fix`: `latitude`"), "{error}");
    let mut doc = AutoCommit::load(&record.save()).unwrap();
    doc.put(&origin, "stop_source", "guess").unwrap();
    let error = RequestRecord::load(&doc.save()).err().unwrap().to_string();
    assert!(error.contains("unknown stop source"), "{error}");
}

#[test]
fn the_requester_postcode_is_kept_and_checked() {
    // Request 1 was made with a card read: it keeps the postcode of the card's address.
    let new = new_request(1);
    assert_eq!(new.requester_postcode.map(|p| p.number()), Some(8510));
    let mut record = created(1);
    let reloaded = RequestRecord::load(&record.save()).unwrap();
    assert_eq!(
        reloaded.view().unwrap().fields.requester_postcode,
        new.requester_postcode
    );
    // A typed identity keeps none, and reads as none.
    assert_eq!(created(2).view().unwrap().fields.requester_postcode, None);

    // A postcode another replica wrote badly is refused on load, naming the field.
    let mut doc = AutoCommit::load(&record.save()).unwrap();
    doc.put(ROOT, "requester_postcode", "85").unwrap();
    let error = RequestRecord::load(&doc.save()).err().unwrap().to_string();
    assert!(error.contains("requester_postcode"), "{error}");
    assert!(error.contains("unknown postcode `85`"), "{error}");
}
