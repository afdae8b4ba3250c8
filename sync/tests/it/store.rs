//! The store: round trip, indexes that follow the status, compaction, reopening, wrong keys, key
//! files, corrupted chunks, refused updates and queue numbers. Bytes on disk are inspected and
//! damaged by opening the sled database directly while the store is closed.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use busloket_sync::at_rest::{AtRestError, AtRestKey};
use busloket_sync::record::{EligibilityOutcome, EventKind, RecordError, RequestRecord, Status};
use busloket_sync::store::{Corruption, Store, StoreError};
use chrono::NaiveDate;

use crate::support::{actor, event_id, key, new_event, new_request, raw_db, request_id};

fn record(n: u32) -> RequestRecord {
    RequestRecord::create(
        &new_request(n),
        actor(1),
        event_id(10_000 + n),
        "kiosk:kiosk-1",
    )
    .unwrap()
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 15).unwrap()
}

fn eligible() -> EventKind {
    EventKind::EligibilityDecided {
        outcome: EligibilityOutcome::Automatic,
        reason: None,
    }
}

/// Every key and value of every tree, read with sled directly (the store must be closed).
fn raw_contents(dir: &Path) -> BTreeMap<(Vec<u8>, Vec<u8>), Vec<u8>> {
    let db = raw_db(dir);
    let mut contents = BTreeMap::new();
    for name in db.tree_names() {
        for item in db.open_tree(&name).unwrap().iter() {
            let (key, value) = item.unwrap();
            contents.insert((name.to_vec(), key.to_vec()), value.to_vec());
        }
    }
    contents
}

fn chunk_keys(dir: &Path, id: busloket_sync::terms::RequestId) -> Vec<Vec<u8>> {
    let db = raw_db(dir);
    let chunks = db.open_tree("chunks").unwrap();
    chunks
        .scan_prefix(id.as_bytes())
        .keys()
        .map(|key| key.unwrap().to_vec())
        .collect()
}

#[test]
fn a_record_round_trips_with_its_summary() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), key(1)).unwrap();
    let mut original = record(1);
    let summary = store.insert_new(&mut original).unwrap();
    assert_eq!(summary.id, request_id(1));
    assert_eq!(summary.status, Status::Submitted);
    assert_eq!(summary.subject_number, "85.07.31-xxx.xx");
    assert_eq!(summary.day, day());
    assert_eq!(summary.queue_number, 2);
    assert_eq!(store.summary(request_id(1)).unwrap(), Some(summary));
    let loaded = store.load(request_id(1)).unwrap().unwrap();
    assert_eq!(loaded.view().unwrap(), original.view().unwrap());
    assert_eq!(store.count(), 1);
    assert!(store.load(request_id(2)).unwrap().is_none());
    assert!(store.summary(request_id(2)).unwrap().is_none());

    let again = store.insert_new(&mut record(1)).unwrap_err();
    assert!(
        matches!(again, StoreError::AlreadyExists { id } if id == request_id(1)),
        "{again}"
    );
    let missing = store.update(request_id(2), |_| Ok(())).unwrap_err();
    assert!(matches!(missing, StoreError::NotFound { .. }), "{missing}");
}

#[test]
fn indexes_follow_the_status() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), key(1)).unwrap();
    for n in [3, 1, 2] {
        store.insert_new(&mut record(n)).unwrap();
    }
    let mut other_stop = new_request(4);
    other_stop.origin.stop = Some("kerkplein".parse().unwrap());
    let mut other = RequestRecord::create(&other_stop, actor(1), event_id(4), "staff:jan").unwrap();
    store.insert_new(&mut other).unwrap();

    assert_eq!(
        store.ids_by_status(Status::Submitted).unwrap(),
        (1..=4).map(request_id).collect::<Vec<_>>()
    );
    let today: Vec<_> = store
        .summaries_by_day(day())
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(
        today,
        (1..=4).map(request_id).collect::<Vec<_>>(),
        "sorted by creation time"
    );
    let markt = store
        .summaries_by_stop(&"markt".parse().unwrap(), day())
        .unwrap();
    assert_eq!(
        markt.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![request_id(1), request_id(2), request_id(3)]
    );
    assert!(
        store
            .summaries_by_day(day().succ_opt().unwrap())
            .unwrap()
            .is_empty()
    );

    let (_, summary) = store
        .update(request_id(2), |record| {
            record.append(&actor(1), new_event(1, 900, "hub:rules", "hub", eligible()))
        })
        .unwrap();
    assert_eq!(summary.status, Status::Ready);
    assert_eq!(summary.updated_at, crate::support::time(900));
    assert_eq!(
        store.ids_by_status(Status::Ready).unwrap(),
        vec![request_id(2)]
    );
    assert_eq!(
        store.ids_by_status(Status::Submitted).unwrap(),
        vec![request_id(1), request_id(3), request_id(4)]
    );
    let today = store.summaries_by_day(day()).unwrap();
    assert_eq!(today.len(), 4);
    assert_eq!(today[1].status, Status::Ready);
}

#[test]
fn a_refused_or_empty_update_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), key(1)).unwrap();
    store.insert_new(&mut record(1)).unwrap();
    let refused = store
        .update(request_id(1), |record| {
            record.append(
                &actor(1),
                new_event(1, 900, "staff:jan", "bus-1", EventKind::HandedOver),
            )
        })
        .unwrap_err();
    assert!(
        matches!(
            refused,
            StoreError::Refused {
                source: RecordError::NotAllowedNow { .. },
                ..
            }
        ),
        "{refused}"
    );
    let (answer, summary) = store
        .update(request_id(1), |record| record.status())
        .unwrap();
    assert_eq!(
        (answer, summary.status),
        (Status::Submitted, Status::Submitted)
    );
    drop(store);
    assert_eq!(
        chunk_keys(dir.path(), request_id(1)).len(),
        1,
        "only the snapshot"
    );
}

#[test]
fn compaction_keeps_the_view_and_shrinks_the_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let mut mirror = record(1);
    Store::open(dir.path(), key(1))
        .unwrap()
        .insert_new(&mut record(1))
        .unwrap();
    let steps = [
        eligible(),
        EventKind::Issued {
            document_id: "D-1".into(),
        },
        EventKind::ReceiptPrinted {
            printer: "thermal".into(),
        },
        EventKind::Printed {
            printer: "laser".into(),
        },
        EventKind::Printed {
            printer: "laser".into(),
        },
        EventKind::Printed {
            printer: "laser".into(),
        },
        EventKind::Printed {
            printer: "laser".into(),
        },
        EventKind::HandedOver,
    ];
    let mut counts = Vec::new();
    for (n, kind) in steps.into_iter().enumerate() {
        let event = || new_event(n as u32, 900 + n as i64, "staff:jan", "bus-1", kind.clone());
        mirror.append(&actor(1), event()).unwrap();
        let store = Store::open(dir.path(), key(1)).unwrap();
        store
            .update(request_id(1), |record| record.append(&actor(1), event()))
            .unwrap();
        assert_eq!(
            store.load(request_id(1)).unwrap().unwrap().view().unwrap(),
            mirror.view().unwrap(),
            "step {n}"
        );
        drop(store);
        counts.push(chunk_keys(dir.path(), request_id(1)).len());
    }
    // The chunk count grows with each update and falls back to one at each compaction.
    assert!(
        counts.windows(2).any(|pair| pair[1] < pair[0]),
        "no compaction in {counts:?}"
    );
    assert!(counts.iter().all(|count| *count <= 8), "{counts:?}");
    let keys = chunk_keys(dir.path(), request_id(1));
    assert_eq!(keys[0][16], 0, "a snapshot first");
    let sequence = u64::from_be_bytes(keys[0][17..].try_into().unwrap());
    assert!(sequence > 0, "a new snapshot replaced the first");
    let store = Store::open(dir.path(), key(1)).unwrap();
    assert_eq!(
        store.load(request_id(1)).unwrap().unwrap().view().unwrap(),
        mirror.view().unwrap()
    );
    assert_eq!(
        store.summary(request_id(1)).unwrap().unwrap().status,
        Status::HandedOver
    );
}

#[test]
fn reopening_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), key(1)).unwrap();
    let mut views = Vec::new();
    for n in 1..=5 {
        let mut record = record(n);
        store.insert_new(&mut record).unwrap();
        views.push(record.view().unwrap());
    }
    store
        .update(request_id(3), |record| {
            record.append(&actor(1), new_event(1, 900, "hub:rules", "hub", eligible()))
        })
        .unwrap();
    views[2] = store.load(request_id(3)).unwrap().unwrap().view().unwrap();
    assert_eq!(store.next_queue_number(day()).unwrap(), 1);
    drop(store);

    let store = Store::open(dir.path(), key(1)).unwrap();
    assert_eq!(store.count(), 5);
    for (n, view) in (1..=5).zip(&views) {
        assert_eq!(
            &store.load(request_id(n)).unwrap().unwrap().view().unwrap(),
            view
        );
    }
    assert_eq!(
        store.ids_by_status(Status::Ready).unwrap(),
        vec![request_id(3)]
    );
    assert_eq!(
        store.next_queue_number(day()).unwrap(),
        2,
        "the counter survives"
    );
}

#[test]
fn a_wrong_key_is_refused_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), key(1)).unwrap();
    store.insert_new(&mut record(1)).unwrap();
    drop(store);
    let before = raw_contents(dir.path());

    let error = Store::open(dir.path(), key(2)).err().unwrap();
    assert!(
        matches!(&error, StoreError::WrongKey { path } if path == dir.path()),
        "{error}"
    );
    assert!(error.to_string().contains("wrong key"), "{error}");
    assert_eq!(raw_contents(dir.path()), before);
    let store = Store::open(dir.path(), key(1)).unwrap();
    assert!(store.load(request_id(1)).unwrap().is_some());
}

#[test]
fn the_key_file_must_be_private_and_apart_from_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let key_path = dir.path().join("at-rest.key");
    AtRestKey::generate_file(&key_path).unwrap();
    fs::set_permissions(&key_path, fs::Permissions::from_mode(0o644)).unwrap();
    let error = Store::open_with_key_file(&store_dir, &key_path)
        .err()
        .unwrap();
    assert!(
        matches!(
            error,
            StoreError::Key(AtRestError::Permissions { mode: 0o644, .. })
        ),
        "{error}"
    );
    fs::set_permissions(&key_path, fs::Permissions::from_mode(0o600)).unwrap();
    Store::open_with_key_file(&store_dir, &key_path)
        .unwrap()
        .insert_new(&mut record(1))
        .unwrap();

    let inside = store_dir.join("at-rest.key");
    fs::copy(&key_path, &inside).unwrap();
    let error = Store::open_with_key_file(&store_dir, &inside)
        .err()
        .unwrap();
    assert!(
        matches!(error, StoreError::KeyInsideStore { .. }),
        "{error}"
    );
    let sneaky = store_dir.join("sub/../at-rest.key");
    assert!(matches!(
        Store::open_with_key_file(&store_dir, &sneaky),
        Err(StoreError::KeyInsideStore { .. })
    ));
    let link = dir.path().join("link.key");
    std::os::unix::fs::symlink(&inside, &link).unwrap();
    assert!(matches!(
        Store::open_with_key_file(&store_dir, &link),
        Err(StoreError::KeyInsideStore { .. })
    ));
}

#[test]
fn a_corrupted_chunk_fails_its_record_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), key(1)).unwrap();
    store.insert_new(&mut record(1)).unwrap();
    store.insert_new(&mut record(2)).unwrap();
    store
        .update(request_id(2), |record| {
            record.append(&actor(1), new_event(1, 900, "hub:rules", "hub", eligible()))
        })
        .unwrap();
    drop(store);
    {
        let db = raw_db(dir.path());
        let chunks = db.open_tree("chunks").unwrap();
        let (chunk, mut value) = chunks
            .scan_prefix(request_id(2).as_bytes())
            .last()
            .unwrap()
            .unwrap();
        let mut bytes = value.to_vec();
        bytes[40] ^= 0x20;
        value = bytes.into();
        chunks.insert(chunk, value).unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(dir.path(), key(1)).unwrap();
    let error = store.load(request_id(2)).err().unwrap();
    assert!(
        matches!(&error, StoreError::Corrupt { id, what, cause: Corruption::Sealed(AtRestError::Open) }
            if *id == request_id(2) && what == "chunk 1"),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "the stored chunk 1 of request {} is unreadable",
            request_id(2)
        )
    );
    assert!(matches!(
        store.update(request_id(2), |_| Ok(())),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(
        store.load(request_id(1)).unwrap().is_some(),
        "the other record still loads"
    );
    assert_eq!(
        store.summaries_by_day(day()).unwrap().len(),
        2,
        "summaries are kept apart"
    );
}

#[test]
fn a_chunk_moved_to_another_record_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), key(1)).unwrap();
    store.insert_new(&mut record(1)).unwrap();
    store.insert_new(&mut record(2)).unwrap();
    drop(store);
    {
        let db = raw_db(dir.path());
        let chunks = db.open_tree("chunks").unwrap();
        let (_, value) = chunks
            .scan_prefix(request_id(1).as_bytes())
            .next()
            .unwrap()
            .unwrap();
        let (target, _) = chunks
            .scan_prefix(request_id(2).as_bytes())
            .next()
            .unwrap()
            .unwrap();
        chunks.insert(target, value).unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(dir.path(), key(1)).unwrap();
    assert!(matches!(
        store.load(request_id(2)),
        Err(StoreError::Corrupt {
            cause: Corruption::Sealed(_),
            ..
        })
    ));
}

#[test]
fn queue_numbers_count_per_day() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), key(1)).unwrap();
    let numbers: Vec<u32> = (0..3)
        .map(|_| store.next_queue_number(day()).unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3]);
    assert_eq!(
        store.next_queue_number(day().succ_opt().unwrap()).unwrap(),
        1
    );
    assert_eq!(store.next_queue_number(day()).unwrap(), 4);
}

#[test]
fn a_store_in_use_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let _open = Store::open(dir.path(), key(1)).unwrap();
    let error = Store::open(dir.path(), key(1)).unwrap_err();
    assert!(
        matches!(&error, StoreError::InUse { path } if path == dir.path()),
        "{error}"
    );
}
