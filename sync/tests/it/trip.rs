//! The trip log in the bus's store: appended in order, read from a number on, acknowledged,
//! kept across a restart.

use busloket_sync::at_rest::AtRestKey;
use busloket_sync::record::StopSource;
use busloket_sync::stops::Position;
use busloket_sync::store::{Store, StoreError};
use busloket_sync::trip::{TripEntry, TripEvent};

use crate::support::time;

fn point(second: i64, north: f64) -> TripEntry {
    TripEntry {
        at: time(second),
        event: TripEvent::Point {
            position: Position {
                latitude: 50.8279 + north / 111_195.0,
                longitude: 3.2649,
            },
            speed_mps: Some(8.0),
        },
    }
}

#[test]
fn entries_are_numbered_read_back_acknowledged_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let key = AtRestKey::from_bytes([7; 32]);
    let arrived = TripEntry {
        at: time(60),
        event: TripEvent::Arrived {
            stop: "demo-markt".parse().unwrap(),
            source: StopSource::Gps,
            position: None,
        },
    };
    {
        let store = Store::open(dir.path(), key.clone()).unwrap();
        assert_eq!(
            store
                .append_trip(&[point(0, 0.0), point(30, 250.0)])
                .unwrap(),
            2
        );
        assert_eq!(
            store.append_trip(std::slice::from_ref(&arrived)).unwrap(),
            3
        );
        let all = store.trip_since(0, 10).unwrap();
        assert_eq!(all.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(all[2].1, arrived);
        assert_eq!(store.trip_since(1, 1).unwrap()[0], (2, point(30, 250.0)));
        store.acknowledge_trip(2).unwrap();
        // Never back.
        store.acknowledge_trip(1).unwrap();
        assert_eq!(store.trip_acknowledged().unwrap(), 2);
    }
    let store = Store::open(dir.path(), key).unwrap();
    assert_eq!(store.trip_acknowledged().unwrap(), 2);
    assert_eq!(store.trip_since(2, 10).unwrap(), vec![(3, arrived)]);
    assert_eq!(store.append_trip(&[point(90, 500.0)]).unwrap(), 4);
    assert!(store.trip_since(4, 10).unwrap().is_empty());
}

#[test]
fn a_damaged_entry_is_named_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let key = AtRestKey::from_bytes([7; 32]);
    {
        let store = Store::open(dir.path(), key.clone()).unwrap();
        store.append_trip(&[point(0, 0.0)]).unwrap();
    }
    {
        let db = sled::open(dir.path()).unwrap();
        let tree = db.open_tree("trip").unwrap();
        tree.insert(1u64.to_be_bytes(), &b"not sealed"[..]).unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(dir.path(), key).unwrap();
    let error = store.trip_since(0, 10).unwrap_err();
    assert!(
        matches!(error, StoreError::TripEntry { number: 1 }),
        "{error}"
    );
}

#[test]
fn retention_removes_old_entries_the_hub_has_and_numbering_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), AtRestKey::from_bytes([7; 32])).unwrap();
    store
        .append_trip(&[point(0, 0.0), point(60, 250.0), point(120, 500.0)])
        .unwrap();
    // Not acknowledged: kept, however old.
    assert_eq!(store.purge_trip(time(1_000)).unwrap(), 0);
    store.acknowledge_trip(2).unwrap();
    // Only what the hub has and is older than the cut-off.
    assert_eq!(store.purge_trip(time(30)).unwrap(), 1);
    assert_eq!(store.trip_since(0, 10).unwrap().len(), 2);
    assert_eq!(store.purge_trip(time(1_000)).unwrap(), 1);
    let left = store.trip_since(0, 10).unwrap();
    assert_eq!(left, vec![(3, point(120, 500.0))]);
    store.acknowledge_trip(3).unwrap();
    assert_eq!(store.purge_trip(time(1_000)).unwrap(), 1);
    // An empty log numbers on from what the hub has.
    assert_eq!(store.append_trip(&[point(200, 0.0)]).unwrap(), 4);
}
