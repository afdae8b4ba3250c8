//! The store's sync state on the bus: the outbox follows local writes and not the hub's, an
//! acknowledgement takes out only requests whose heads the hub has, the hub's changes apply
//! with their summary and indexes, the upload counter never repeats, retention purges only
//! finished and acknowledged requests and keeps their redacted summaries, everything survives a
//! reopen and a SIGKILL, and (a property) no interleaving of local writes, the hub's changes and
//! answers ever drops a local change the hub does not have.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use automerge::ChangeHash;
use busloket_sync::at_rest::AtRestKey;
use busloket_sync::protocol::{OutgoingDoc, Payload, SyncedFile};
use busloket_sync::record::{EventKind, RecordError, RequestRecord, Status};
use busloket_sync::store::{Acknowledgement, RemoteApply, Store, StoreError};
use busloket_sync::terms::RequestId;
use chrono::NaiveDate;
use proptest::collection::vec;
use proptest::prelude::*;

use crate::support::{
    actor, device, event_id, key, new_event, new_request, raw_db, request_id, time,
};

/// The bus's actor, and the hub's.
const BUS: u8 = 1;
const HUB: u8 = 9;

fn record(n: u32) -> RequestRecord {
    RequestRecord::create(
        &new_request(n),
        actor(BUS),
        event_id(10_000 + n),
        "kiosk:kiosk-1",
    )
    .unwrap()
}

/// A copy of `record` as another replica (the hub) would hold it.
fn copy(record: &mut RequestRecord) -> RequestRecord {
    RequestRecord::load(&record.save()).unwrap()
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 15).unwrap()
}

/// Appends `kind` as event `n` at `seconds`, made by `who` with `actor_n`.
fn append(record: &mut RequestRecord, actor_n: u8, n: u32, seconds: i64, kind: EventKind) {
    let by = if actor_n == HUB {
        "hub:rules"
    } else {
        "staff:jan"
    };
    let device_name = if actor_n == HUB { "hub" } else { "bus-1" };
    record
        .append(
            &actor(actor_n),
            new_event(n, seconds, by, device_name, kind),
        )
        .unwrap();
}

fn local(store: &Store, id: RequestId, n: u32, seconds: i64, kind: EventKind) {
    store
        .update(id, |record| {
            record.append(
                &actor(BUS),
                new_event(n, seconds, "staff:jan", "bus-1", kind),
            )
        })
        .unwrap();
}

fn printed() -> EventKind {
    EventKind::ReceiptPrinted {
        printer: "thermal".into(),
    }
}

fn cancelled() -> EventKind {
    EventKind::Cancelled {
        reason: "citizen left".into(),
    }
}

/// What the hub sends of `record` to a bus that has `base`.
fn payload_since(record: &mut RequestRecord, base: &[ChangeHash]) -> Payload {
    let id = record.id().unwrap();
    OutgoingDoc::from_record(id, record, base).payload
}

fn sorted(mut heads: Vec<ChangeHash>) -> Vec<ChangeHash> {
    heads.sort();
    heads
}

fn heads_of(store: &Store, id: RequestId) -> Vec<ChangeHash> {
    sorted(store.load(id).unwrap().unwrap().heads())
}

fn ack(acked: Vec<(RequestId, Vec<ChangeHash>)>) -> Acknowledgement {
    Acknowledgement {
        acked,
        ..Acknowledgement::default()
    }
}

/// Acknowledges `id` with the heads it has now, as the answer to its upload would.
fn ack_current(store: &Store, id: RequestId) {
    store
        .acknowledge(&ack(vec![(id, heads_of(store, id))]))
        .unwrap();
}

#[test]
fn the_outbox_follows_local_writes_and_not_the_hubs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), key(1)).unwrap();
    assert_eq!(store.outbox_len(), 0);
    let mut bus_record = record(1);
    store.insert_new(&mut bus_record).unwrap();
    store.insert_new(&mut record(2)).unwrap();
    assert_eq!(store.outbox().unwrap(), vec![request_id(1), request_id(2)]);
    assert_eq!(store.outbox_len(), 2);
    assert!(store.acked_heads(request_id(1)).unwrap().is_empty());
    assert_eq!(
        store.current_heads(request_id(1)).unwrap(),
        sorted(bus_record.heads())
    );

    ack_current(&store, request_id(1));
    assert_eq!(store.outbox().unwrap(), vec![request_id(2)]);
    local(&store, request_id(1), 1, 600, printed());
    assert_eq!(
        store.outbox().unwrap(),
        vec![request_id(1), request_id(2)],
        "a local update puts it back"
    );
    ack_current(&store, request_id(1));

    // The hub's change to request 1 and the hub's new request 3 leave the outbox alone.
    let mut hub_record = copy(&mut store.load(request_id(1)).unwrap().unwrap());
    let base = hub_record.heads();
    append(&mut hub_record, HUB, 2, 700, EventKind::Approved);
    let applied = store
        .apply_remote(request_id(1), &payload_since(&mut hub_record, &base))
        .unwrap();
    assert_eq!(applied, RemoteApply::Updated);
    let mut hub_new =
        RequestRecord::create(&new_request(3), actor(HUB), event_id(3), "staff:an").unwrap();
    let created = store
        .apply_remote(request_id(3), &payload_since(&mut hub_new, &[]))
        .unwrap();
    assert_eq!(created, RemoteApply::Created);
    assert_eq!(store.outbox().unwrap(), vec![request_id(2)]);
    assert_eq!(heads_of(&store, request_id(1)), sorted(hub_record.heads()));
    assert_eq!(
        store.current_heads(request_id(1)).unwrap(),
        sorted(hub_record.heads()),
        "the heads tree follows the hub's changes too"
    );
    drop(store);

    let store = Store::open(dir.path(), key(1)).unwrap();
    assert_eq!(store.outbox().unwrap(), vec![request_id(2)]);
    assert_eq!(
        store.current_heads(request_id(3)).unwrap(),
        sorted(hub_new.heads())
    );
}

#[test]
fn an_acknowledgement_takes_out_only_requests_whose_heads_the_hub_has() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), key(1)).unwrap();
    store.insert_new(&mut record(1)).unwrap();
    store.insert_new(&mut record(2)).unwrap();
    let first = store.outgoing(request_id(1)).unwrap().unwrap();
    let second = store.outgoing(request_id(2)).unwrap().unwrap();
    assert!(
        matches!(first.payload, Payload::Document(_)),
        "the hub has nothing yet"
    );
    assert!(first.base.is_empty());
    // Request 2 changes while the upload is on its way.
    local(&store, request_id(2), 1, 600, printed());

    store
        .acknowledge(&ack(vec![
            (request_id(1), first.heads.clone()),
            (request_id(2), second.heads.clone()),
        ]))
        .unwrap();
    assert_eq!(store.outbox().unwrap(), vec![request_id(2)]);
    assert_eq!(
        store.acked_heads(request_id(1)).unwrap(),
        sorted(first.heads)
    );
    assert_eq!(
        store.acked_heads(request_id(2)).unwrap(),
        sorted(second.heads.clone())
    );

    // The next upload of request 2 carries only the change the hub lacks.
    let again = store.outgoing(request_id(2)).unwrap().unwrap();
    assert_eq!(again.base, second.heads);
    assert_eq!(again.changes.len(), 1);
    assert!(matches!(&again.payload, Payload::Changes(changes) if changes.len() == 1));
    store
        .acknowledge(&ack(vec![(request_id(2), again.heads.clone())]))
        .unwrap();
    assert!(store.outbox().unwrap().is_empty());
    assert!(store.outgoing(request_id(2)).unwrap().unwrap().is_empty());
    assert!(store.outgoing(request_id(9)).unwrap().is_none());

    // Heads the record does not have cannot be the hub's acknowledgement of it: the request
    // stays in the outbox and goes whole next time.
    local(&store, request_id(1), 2, 900, printed());
    store
        .acknowledge(&ack(vec![(request_id(1), vec![ChangeHash([7; 32])])]))
        .unwrap();
    assert_eq!(store.outbox().unwrap(), vec![request_id(1)]);
    let whole = store.outgoing(request_id(1)).unwrap().unwrap();
    assert!(whole.base.is_empty() && matches!(whole.payload, Payload::Document(_)));
    // An acknowledgement of a request the store never had is ignored.
    store
        .acknowledge(&ack(vec![(request_id(9), vec![ChangeHash([7; 32])])]))
        .unwrap();
    assert!(store.acked_heads(request_id(9)).unwrap().is_empty());
}

#[test]
fn reset_set_aside_need_whole_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), key(1)).unwrap();
    for n in 1..=3 {
        store.insert_new(&mut record(n)).unwrap();
        ack_current(&store, request_id(n));
    }
    assert_eq!(store.outbox_len(), 0);

    // missing-base: the acknowledged heads go, the request goes (back) into the outbox whole.
    store
        .acknowledge(&Acknowledgement {
            reset: vec![request_id(1)],
            need_whole: vec![request_id(3)],
            answer_applied: 7,
            files: vec![SyncedFile {
                name: "crl".into(),
                version: 3,
                bytes: b"-----BEGIN X509 CRL-----".to_vec(),
            }],
            ..Acknowledgement::default()
        })
        .unwrap();
    assert!(store.acked_heads(request_id(1)).unwrap().is_empty());
    assert_eq!(store.outbox().unwrap(), vec![request_id(1)]);
    assert!(matches!(
        store.outgoing(request_id(1)).unwrap().unwrap().payload,
        Payload::Document(_)
    ));
    let state = store.sync_state().unwrap();
    assert_eq!(state.need_whole, vec![request_id(3)]);
    assert_eq!(state.answer_applied, 7);
    assert_eq!(state.files.len(), 1);
    assert_eq!(
        (state.files[0].name.as_str(), state.files[0].version),
        ("crl", 3)
    );
    assert_eq!(
        store.synced_file("crl").unwrap().unwrap().bytes,
        b"-----BEGIN X509 CRL-----"
    );
    assert!(store.synced_file("staff").unwrap().is_none());

    // invalid-record: out of the outbox, remembered; a later acknowledgement forgets it.
    local(&store, request_id(2), 1, 600, printed());
    store
        .acknowledge(&Acknowledgement {
            set_aside: vec![request_id(2)],
            answer_applied: 8,
            files: vec![
                SyncedFile {
                    name: "crl".into(),
                    version: 4,
                    bytes: b"newer".to_vec(),
                },
                SyncedFile {
                    name: "staff".into(),
                    version: 1,
                    bytes: b"[[staff]]".to_vec(),
                },
            ],
            ..Acknowledgement::default()
        })
        .unwrap();
    assert_eq!(store.outbox().unwrap(), vec![request_id(1)]);
    drop(store);

    let store = Store::open(dir.path(), key(1)).unwrap();
    let state = store.sync_state().unwrap();
    assert_eq!(state.set_aside, vec![request_id(2)]);
    assert!(state.need_whole.is_empty(), "each answer replaces the list");
    assert_eq!(state.answer_applied, 8);
    let versions: Vec<_> = state
        .files
        .iter()
        .map(|file| (file.name.as_str(), file.version))
        .collect();
    assert_eq!(versions, [("crl", 4), ("staff", 1)]);
    assert_eq!(store.synced_file("crl").unwrap().unwrap().bytes, b"newer");
    assert!(store.acked_heads(request_id(1)).unwrap().is_empty());
    ack_current(&store, request_id(2));
    assert!(store.sync_state().unwrap().set_aside.is_empty());
    drop(store);

    // Synced files are sealed: the staff list names clerks.
    let db = raw_db(dir.path());
    let sealed = db
        .open_tree("synced_files")
        .unwrap()
        .get("staff")
        .unwrap()
        .unwrap();
    assert!(!sealed.windows(9).any(|window| window == b"[[staff]]"));
}

#[test]
fn the_hubs_changes_apply_with_their_summary_and_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), key(1)).unwrap();
    let mut hub_record =
        RequestRecord::create(&new_request(5), actor(HUB), event_id(5), "staff:an").unwrap();
    let id = request_id(5);
    let document = payload_since(&mut hub_record, &[]);
    assert_eq!(
        store.apply_remote(id, &document).unwrap(),
        RemoteApply::Created
    );
    assert_eq!(
        store.apply_remote(id, &document).unwrap(),
        RemoteApply::Unchanged
    );
    assert_eq!(store.ids_by_status(Status::Submitted).unwrap(), vec![id]);
    let summary = store.summary(id).unwrap().unwrap();
    assert_eq!((summary.status, summary.day), (Status::Submitted, day()));
    assert!(store.outbox().unwrap().is_empty());

    // The hub approves: the status index moves.
    let base = hub_record.heads();
    append(&mut hub_record, HUB, 1, 600, EventKind::Approved);
    let approval = payload_since(&mut hub_record, &base);
    assert!(matches!(approval, Payload::Changes(_)));
    assert_eq!(
        store.apply_remote(id, &approval).unwrap(),
        RemoteApply::Updated
    );
    assert_eq!(store.ids_by_status(Status::Approved).unwrap(), vec![id]);
    assert!(store.ids_by_status(Status::Submitted).unwrap().is_empty());
    let summary = store.summary(id).unwrap().unwrap();
    assert_eq!(
        (summary.status, summary.updated_at),
        (Status::Approved, time(600))
    );
    assert_eq!(store.summaries_by_day(day()).unwrap(), vec![summary]);
    assert_eq!(
        store.apply_remote(id, &approval).unwrap(),
        RemoteApply::Unchanged
    );

    // Changes whose start the store lacks: nothing is stored.
    let base = hub_record.heads();
    append(&mut hub_record, HUB, 2, 700, printed());
    let middle = hub_record.heads();
    append(&mut hub_record, HUB, 3, 800, printed());
    let last_only = payload_since(&mut hub_record, &middle);
    let before = heads_of(&store, id);
    assert_eq!(
        store.apply_remote(id, &last_only).unwrap(),
        RemoteApply::MissingDependencies
    );
    drop(store);
    let store = Store::open(dir.path(), key(1)).unwrap();
    assert_eq!(heads_of(&store, id), before, "nothing of it was stored");
    assert_eq!(store.current_heads(id).unwrap(), before);
    assert_eq!(
        store
            .apply_remote(id, &payload_since(&mut hub_record, &base))
            .unwrap(),
        RemoteApply::Updated
    );
    assert_eq!(heads_of(&store, id), sorted(hub_record.heads()));

    // A request the store lacks, from changes without its start: not created.
    let mut other =
        RequestRecord::create(&new_request(6), actor(HUB), event_id(6), "staff:an").unwrap();
    let start = other.heads();
    append(&mut other, HUB, 4, 600, EventKind::Approved);
    assert_eq!(
        store
            .apply_remote(request_id(6), &payload_since(&mut other, &start))
            .unwrap(),
        RemoteApply::MissingDependencies
    );
    assert!(store.summary(request_id(6)).unwrap().is_none());
    assert_eq!(store.count(), 1);
    // ... but from all its changes, it is.
    let all_changes = Payload::Changes(
        other
            .changes_since(&[])
            .iter()
            .map(|change| change.raw_bytes().to_vec())
            .collect(),
    );
    assert_eq!(
        store.apply_remote(request_id(6), &all_changes).unwrap(),
        RemoteApply::Created
    );
    assert_eq!(
        store.summary(request_id(6)).unwrap().unwrap().status,
        Status::Approved
    );

    // Another request's document under this id, and bytes that are no document, are refused.
    let mut seventh =
        RequestRecord::create(&new_request(7), actor(HUB), event_id(7), "staff:an").unwrap();
    let error = store
        .apply_remote(request_id(8), &payload_since(&mut seventh, &[]))
        .unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::Refused {
                source: RecordError::DifferentRequest { .. },
                ..
            }
        ),
        "{error}"
    );
    let error = store
        .apply_remote(id, &Payload::Changes(vec![b"not automerge".to_vec()]))
        .unwrap_err();
    assert!(matches!(error, StoreError::Refused { .. }), "{error}");
    assert_eq!(store.count(), 2);
    assert!(store.outbox().unwrap().is_empty());
}

#[test]
fn local_changes_the_hub_lacks_keep_their_request_in_the_outbox_through_a_merge() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), key(1)).unwrap();
    store.insert_new(&mut record(1)).unwrap();
    let id = request_id(1);
    let upload = store.outgoing(id).unwrap().unwrap();
    let mut hub_record = RequestRecord::load(&upload.payload.to_automerge_bytes()).unwrap();
    append(&mut hub_record, HUB, 1, 600, EventKind::Approved);
    local(&store, id, 2, 650, printed());

    let answer = payload_since(&mut hub_record, &upload.heads);
    assert_eq!(
        store.apply_remote(id, &answer).unwrap(),
        RemoteApply::Updated
    );
    store
        .acknowledge(&ack(vec![(id, hub_record.heads())]))
        .unwrap();
    assert_eq!(
        store.outbox().unwrap(),
        vec![id],
        "the local print is not at the hub"
    );
    let view = store.load(id).unwrap().unwrap().view().unwrap();
    assert_eq!(view.status, Status::Approved);
    assert_eq!(view.events.len(), 3);
    let next = store.outgoing(id).unwrap().unwrap();
    assert_eq!(next.changes.len(), 1, "only the print");
}

#[test]
fn the_upload_counter_survives_a_reopen_and_never_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), key(1)).unwrap();
    assert_eq!(store.sync_state().unwrap().last_counter, 0);
    let counters: Vec<u64> = (0..3)
        .map(|_| store.next_upload_counter(0).unwrap())
        .collect();
    assert_eq!(counters, [1, 2, 3]);
    drop(store);
    let store = Store::open(dir.path(), key(1)).unwrap();
    assert_eq!(store.sync_state().unwrap().last_counter, 3);
    assert_eq!(store.next_upload_counter(0).unwrap(), 4);
}

/// A restored or reinstalled store starts from the clock, past any counter the hub accepted
/// from the bus before, and never goes back when the clock does.
#[test]
fn the_upload_counter_follows_the_clock_after_a_restore() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), key(1)).unwrap();
    let now = 1_750_000_000_000;
    assert_eq!(store.next_upload_counter(now).unwrap(), now);
    // Two uploads in one millisecond, or a clock set back: one more than the last.
    assert_eq!(store.next_upload_counter(now).unwrap(), now + 1);
    assert_eq!(store.next_upload_counter(now - 60_000).unwrap(), now + 2);
    drop(store);
    let store = Store::open(dir.path(), key(1)).unwrap();
    assert_eq!(store.sync_state().unwrap().last_counter, now + 2);
    assert_eq!(store.next_upload_counter(now + 500).unwrap(), now + 500);
}

/// 2025-06-15 20:00 UTC: the end of the bus's day.
fn end_of_day() -> chrono::DateTime<chrono::Utc> {
    time(12 * 3600)
}

#[test]
fn retention_purges_only_finished_acknowledged_old_requests() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), key(1)).unwrap();
    for n in 1..=6 {
        store.insert_new(&mut record(n)).unwrap();
    }
    // 1: cancelled and acknowledged: purged. 2: cancelled, not uploaded since. 3: cancelled and
    // acknowledged, then changed by the hub without an acknowledgement. 4: open. 5: cancelled
    // after the cut-off. 6: cancelled and acknowledged: purged.
    for n in [1, 2, 3, 6] {
        local(&store, request_id(n), n, 600, cancelled());
    }
    local(&store, request_id(5), 5, 13 * 3600, cancelled());
    for n in [1, 3, 4, 5, 6] {
        ack_current(&store, request_id(n));
    }
    let mut hub_record = copy(&mut store.load(request_id(3)).unwrap().unwrap());
    let base = hub_record.heads();
    append(&mut hub_record, HUB, 30, 700, printed());
    store
        .apply_remote(request_id(3), &payload_since(&mut hub_record, &base))
        .unwrap();
    let outbox = store.outbox().unwrap();
    assert_eq!(outbox, vec![request_id(2)]);
    let log_before = store
        .access_log()
        .head()
        .unwrap()
        .map_or(0, |head| head.seq);

    let purged = store
        .purge_acknowledged(end_of_day(), end_of_day(), &device("bus-1"))
        .unwrap();
    assert_eq!(purged, 2);
    assert_eq!(store.outbox().unwrap(), outbox, "the outbox is untouched");
    for n in [1, 6] {
        let id = request_id(n);
        assert!(store.load(id).unwrap().is_none());
        let summary = store.summary(id).unwrap().unwrap();
        assert!(summary.purged);
        assert_eq!(summary.status, Status::Cancelled);
        assert_eq!(
            (
                summary.subject_name.as_str(),
                summary.subject_number.as_str()
            ),
            ("", "")
        );
        assert_eq!(summary.queue_number, n + 1);
        assert!(store.acked_heads(id).unwrap().is_empty());
        assert!(store.current_heads(id).unwrap().is_empty());
    }
    for n in 2..=5 {
        assert!(
            store.load(request_id(n)).unwrap().is_some(),
            "request {n} kept"
        );
        assert!(!store.summary(request_id(n)).unwrap().unwrap().purged);
    }
    // Lists and indicators still count every request.
    assert_eq!(store.summaries_by_day(day()).unwrap().len(), 6);
    assert_eq!(
        store.ids_by_status(Status::Cancelled).unwrap(),
        [1, 2, 3, 5, 6].map(request_id).to_vec()
    );
    assert_eq!(store.count(), 6);

    // One access-log entry per purge, naming no one in its text.
    let entries = store.access_log().entries(log_before + 1, 10).unwrap();
    assert_eq!(entries.len(), 2);
    for (entry, n) in entries.iter().zip([1, 6]) {
        let entry = &entry.entry;
        assert_eq!(entry.request, Some(request_id(n)));
        assert_eq!(entry.who, "node:retention");
        assert!(entry.purpose.starts_with("purged"), "{}", entry.purpose);
        assert!(!entry.purpose.contains("Peeters"));
        assert_eq!(entry.at, end_of_day());
    }
    assert_eq!(store.access_log().verify().unwrap(), log_before + 2);

    // Again: nothing left to purge. A purged request stays purged.
    assert_eq!(
        store
            .purge_acknowledged(end_of_day(), end_of_day(), &device("bus-1"))
            .unwrap(),
        0
    );
    let id = request_id(1);
    assert_eq!(
        store
            .apply_remote(id, &payload_since(&mut record(1), &[]))
            .unwrap(),
        RemoteApply::Unchanged
    );
    assert!(
        store.load(id).unwrap().is_none(),
        "the hub's copy does not bring it back"
    );
    assert!(matches!(
        store.insert_new(&mut record(1)),
        Err(StoreError::AlreadyExists { .. })
    ));
    assert!(matches!(
        store.update(id, |_| Ok(())),
        Err(StoreError::NotFound { .. })
    ));
    assert!(store.outgoing(id).unwrap().is_none());
    store
        .acknowledge(&ack(vec![(id, vec![ChangeHash([7; 32])])]))
        .unwrap();
    assert!(store.acked_heads(id).unwrap().is_empty());
    drop(store);

    // On disk: no chunk, and a summary without the name or the national number.
    let db = raw_db(dir.path());
    for n in [1, 6] {
        let id = request_id(n);
        let chunks = db.open_tree("chunks").unwrap();
        assert_eq!(chunks.scan_prefix(id.as_bytes()).count(), 0);
        for tree in ["heads", "acked", "outbox"] {
            assert!(
                !db.open_tree(tree)
                    .unwrap()
                    .contains_key(id.as_bytes())
                    .unwrap()
            );
        }
        let sealed = db
            .open_tree("summaries")
            .unwrap()
            .get(id.as_bytes())
            .unwrap()
            .unwrap();
        let place = [b"summaries/".as_slice(), id.as_bytes()].concat();
        let json = String::from_utf8(key(1).open(&place, &sealed).unwrap()).unwrap();
        for personal in ["Marie", "Peeters", "85.07.31", "003.28", "xxx.xx"] {
            assert!(!json.contains(personal), "{personal} in {json}");
        }
        assert!(json.contains("\"purged\":true"), "{json}");
    }
    let kept = db
        .open_tree("chunks")
        .unwrap()
        .scan_prefix(request_id(2).as_bytes())
        .count();
    assert!(kept > 0);
}

#[test]
fn a_store_made_before_the_sync_state_puts_every_record_in_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), key(1)).unwrap();
    store.insert_new(&mut record(1)).unwrap();
    store.insert_new(&mut record(2)).unwrap();
    local(&store, request_id(2), 1, 600, printed());
    let heads = [
        heads_of(&store, request_id(1)),
        heads_of(&store, request_id(2)),
    ];
    drop(store);
    {
        let db = raw_db(dir.path());
        for tree in ["heads", "outbox"] {
            db.drop_tree(tree).unwrap();
        }
        db.open_tree("meta").unwrap().remove("sync-layout").unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(dir.path(), key(1)).unwrap();
    assert_eq!(store.outbox().unwrap(), vec![request_id(1), request_id(2)]);
    assert_eq!(store.current_heads(request_id(1)).unwrap(), heads[0]);
    assert_eq!(store.current_heads(request_id(2)).unwrap(), heads[1]);
}

#[test]
fn every_sync_write_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let reopen = |store: Store| {
        drop(store);
        Store::open(dir.path(), key(1)).unwrap()
    };
    let store = Store::open(dir.path(), key(1)).unwrap();
    store.insert_new(&mut record(1)).unwrap();
    let store = reopen(store);
    assert_eq!(store.outbox().unwrap(), vec![request_id(1)]);
    local(&store, request_id(1), 1, 600, cancelled());
    let store = reopen(store);
    let heads = heads_of(&store, request_id(1));
    assert_eq!(store.current_heads(request_id(1)).unwrap(), heads);
    ack_current(&store, request_id(1));
    let store = reopen(store);
    assert_eq!(store.acked_heads(request_id(1)).unwrap(), heads);
    assert!(store.outbox().unwrap().is_empty());
    let mut hub_record =
        RequestRecord::create(&new_request(2), actor(HUB), event_id(2), "staff:an").unwrap();
    store
        .apply_remote(request_id(2), &payload_since(&mut hub_record, &[]))
        .unwrap();
    let store = reopen(store);
    assert_eq!(heads_of(&store, request_id(2)), sorted(hub_record.heads()));
    assert_eq!(store.next_upload_counter(0).unwrap(), 1);
    let store = reopen(store);
    assert_eq!(store.next_upload_counter(0).unwrap(), 2);
    store
        .purge_acknowledged(end_of_day(), end_of_day(), &device("bus-1"))
        .unwrap();
    let store = reopen(store);
    assert!(store.summary(request_id(1)).unwrap().unwrap().purged);
    assert!(store.load(request_id(1)).unwrap().is_none());
}

const CHILD_ROLE: &str = "BUSLOKET_SYNC_CRASH_CHILD";
const THIS_TEST: &str = "store_sync::the_sync_state_survives_sigkill";
const LINES_BEFORE_KILL: usize = 90;
const CHILD_LIMIT: u32 = 5_000;

/// A child inserts a request, acknowledges it and takes an upload counter, in a loop, printing
/// each once the store returned; the parent kills it and checks every printed step.
#[test]
fn the_sync_state_survives_sigkill() {
    if let Some(dir) = std::env::var_os(CHILD_ROLE) {
        return sync_child(Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("at-rest.key");
    AtRestKey::generate_file(&key_path).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", THIS_TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_ROLE, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (mut inserted, mut acked, mut counters) = (Vec::new(), Vec::new(), Vec::new());
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("inserted"), Some(id)) => inserted.push(id.parse::<RequestId>().unwrap()),
            (Some("acked"), Some(id)) => acked.push(id.parse::<RequestId>().unwrap()),
            (Some("counter"), Some(counter)) => counters.push(counter.parse::<u64>().unwrap()),
            _ => continue,
        }
        if inserted.len() + acked.len() + counters.len() >= LINES_BEFORE_KILL {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(
        inserted.len() + acked.len() + counters.len() >= LINES_BEFORE_KILL,
        "the child ended early: {status}"
    );

    let store = Store::open_with_key_file(&dir.path().join("store"), &key_path).unwrap();
    let outbox = store.outbox().unwrap();
    for id in &inserted {
        let heads = heads_of(&store, *id);
        assert_eq!(store.current_heads(*id).unwrap(), heads);
        if acked.contains(id) {
            assert!(!outbox.contains(id), "{id} was acknowledged");
            assert_eq!(store.acked_heads(*id).unwrap(), heads);
        } else {
            assert!(
                outbox.contains(id) || store.acked_heads(*id).unwrap() == heads,
                "{id} was saved and is neither in the outbox nor acknowledged"
            );
        }
    }
    let last = counters.iter().max().copied().unwrap_or(0);
    assert!(store.sync_state().unwrap().last_counter >= last);
    assert!(
        store.next_upload_counter(0).unwrap() > last,
        "a counter came back"
    );
}

fn sync_child(dir: &Path) {
    let store = Store::open_with_key_file(&dir.join("store"), &dir.join("at-rest.key")).unwrap();
    for n in 1..=CHILD_LIMIT {
        store.insert_new(&mut record(n)).unwrap();
        println!("inserted {}", request_id(n));
        ack_current(&store, request_id(n));
        println!("acked {}", request_id(n));
        println!("counter {}", store.next_upload_counter(0).unwrap());
    }
}

/// One step of the property below. Indexes pick a request (or a pending answer) modulo.
#[derive(Debug, Clone)]
enum Step {
    /// A clerk on the bus prints a receipt of request i.
    Local(usize),
    /// Someone at the hub prints one of its copy of request i.
    Hub(usize),
    /// The bus uploads request i; the hub takes it and its answer is on its way.
    Upload(usize),
    /// The hub sends its copy of request i unasked (it changed there).
    Push(usize),
    /// Answer k arrives: the bus applies it and acknowledges.
    Deliver(usize),
    /// Answer k is lost with the link.
    Lose(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..3usize).prop_map(Step::Local),
        (0..3usize).prop_map(Step::Hub),
        (0..3usize).prop_map(Step::Upload),
        (0..3usize).prop_map(Step::Push),
        (0..8usize).prop_map(Step::Deliver),
        (0..8usize).prop_map(Step::Lose),
    ]
}

/// An answer of the hub about one request.
struct PendingAnswer {
    id: RequestId,
    heads: Vec<ChangeHash>,
    payload: Option<Payload>,
}

/// The hub of the property: a replica per request, never losing anything.
fn hub_takes(hub: &mut HashMap<RequestId, RequestRecord>, upload: &OutgoingDoc) -> PendingAnswer {
    let bytes = upload.payload.to_automerge_bytes();
    let record = match hub.get_mut(&upload.id) {
        Some(record) => {
            record.load_incremental(&bytes).unwrap();
            record
        }
        None => hub
            .entry(upload.id)
            .or_insert_with(|| RequestRecord::load(&bytes).unwrap()),
    };
    assert!(record.missing_dependencies().is_empty());
    let changes: Vec<Vec<u8>> = record
        .changes_since(&upload.heads)
        .iter()
        .map(|change| change.raw_bytes().to_vec())
        .collect();
    PendingAnswer {
        id: upload.id,
        heads: record.heads(),
        payload: (!changes.is_empty()).then_some(Payload::Changes(changes)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Whatever the order of local writes, the hub's changes, uploads and (late, lost) answers,
    /// a request is out of the outbox only when the hub has every change of it, and it leaves
    /// the outbox only in an acknowledgement of exactly its current heads.
    #[test]
    fn no_interleaving_loses_a_local_change(steps in vec(step(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), key(1)).unwrap();
        let ids: Vec<RequestId> = (1..=3).map(request_id).collect();
        for n in 1..=3 {
            store.insert_new(&mut record(n)).unwrap();
        }
        let mut hub: HashMap<RequestId, RequestRecord> = HashMap::new();
        let mut pending: Vec<PendingAnswer> = Vec::new();
        for (n, step) in steps.into_iter().enumerate() {
            let n = n as u32 + 1;
            let before = store.outbox().unwrap();
            let mut acknowledged: Option<(RequestId, Vec<ChangeHash>)> = None;
            match step {
                Step::Local(i) => local(&store, ids[i], n, 600 + i64::from(n), printed()),
                Step::Hub(i) => {
                    if let Some(record) = hub.get_mut(&ids[i]) {
                        append(record, HUB, 1_000 + n, 600 + i64::from(n), printed());
                    }
                }
                Step::Upload(i) => {
                    let upload = store.outgoing(ids[i]).unwrap().unwrap();
                    pending.push(hub_takes(&mut hub, &upload));
                }
                Step::Push(i) => {
                    if let Some(record) = hub.get_mut(&ids[i]) {
                        pending.push(PendingAnswer {
                            id: ids[i],
                            heads: record.heads(),
                            payload: Some(Payload::Document(record.save())),
                        });
                    }
                }
                Step::Deliver(k) if !pending.is_empty() => {
                    let answer = pending.remove(k % pending.len());
                    let applied = match &answer.payload {
                        Some(payload) => store.apply_remote(answer.id, payload).unwrap(),
                        None => RemoteApply::Unchanged,
                    };
                    prop_assert_ne!(applied, RemoteApply::MissingDependencies);
                    acknowledged = Some((answer.id, sorted(answer.heads.clone())));
                    store.acknowledge(&ack(vec![(answer.id, answer.heads)])).unwrap();
                }
                Step::Lose(k) if !pending.is_empty() => {
                    pending.remove(k % pending.len());
                }
                Step::Deliver(_) | Step::Lose(_) => {}
            }
            let outbox = store.outbox().unwrap();
            for id in &ids {
                let heads = heads_of(&store, *id);
                prop_assert_eq!(&store.current_heads(*id).unwrap(), &heads);
                if outbox.contains(id) {
                    continue;
                }
                let hub_record = hub.get_mut(id);
                prop_assert!(hub_record.is_some(), "{} out of the outbox, unknown to the hub", id);
                let hub_record = hub_record.unwrap();
                for head in &heads {
                    prop_assert!(hub_record.has_change(head), "{} lost change {}", id, head);
                }
                if before.contains(id) {
                    prop_assert_eq!(
                        acknowledged.as_ref(),
                        Some(&(*id, heads.clone())),
                        "{} left the outbox without an acknowledgement of its heads", id
                    );
                }
            }
        }
    }
}
