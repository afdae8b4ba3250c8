//! The simulated GPS: a fixed stop stamped by its clock, no fix, and changes seen by subscribers.

use std::sync::{Arc, Mutex};

use busloket_hardware::{GpsFix, GpsState, PositionSource, SimGps};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};

fn fake_clock(start: DateTime<Utc>) -> (Arc<Mutex<DateTime<Utc>>>, busloket_hardware::gps::Clock) {
    let now = Arc::new(Mutex::new(start));
    let read = Arc::clone(&now);
    (now, Arc::new(move || *read.lock().unwrap()))
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 30, 0).unwrap()
}

#[test]
fn a_fixed_stop_reports_fresh_fixes_at_the_same_place() {
    let (now, clock) = fake_clock(start());
    let gps: Arc<dyn PositionSource> = Arc::new(SimGps::fixed_with_clock(50.8275, 3.2650, clock));

    let expected = |at| {
        GpsState::Fix(GpsFix {
            latitude: 50.8275,
            longitude: 3.2650,
            speed_mps: Some(0.0),
            at,
        })
    };
    assert_eq!(gps.current(), expected(start()));

    *now.lock().unwrap() += TimeDelta::seconds(90);
    assert_eq!(gps.current(), expected(start() + TimeDelta::seconds(90)));
}

#[test]
fn the_system_clock_version_stamps_now() {
    let before = Utc::now();
    let GpsState::Fix(fix) = SimGps::fixed(50.8, 3.26).current() else {
        panic!("a fixed stop has a fix");
    };
    assert!(before <= fix.at && fix.at <= Utc::now());
    assert_eq!(SimGps::no_fix().current(), GpsState::NoFix);
}

#[tokio::test]
async fn subscribers_see_the_bus_move_and_lose_its_fix() {
    let (now, clock) = fake_clock(start());
    let gps = SimGps::no_fix_with_clock(clock);
    let mut changes = gps.subscribe();
    assert_eq!(*changes.borrow_and_update(), GpsState::NoFix);

    *now.lock().unwrap() += TimeDelta::minutes(5);
    let moved = GpsFix {
        latitude: 50.8300,
        longitude: 3.2700,
        speed_mps: Some(8.3),
        at: start(),
    };
    gps.set(GpsState::Fix(moved.clone()));

    changes.changed().await.unwrap();
    let stamped = GpsFix {
        at: start() + TimeDelta::minutes(5),
        ..moved
    };
    assert_eq!(*changes.borrow_and_update(), GpsState::Fix(stamped.clone()));
    assert_eq!(gps.current(), GpsState::Fix(stamped));

    gps.set(GpsState::NoFix);
    changes.changed().await.unwrap();
    assert_eq!(*changes.borrow_and_update(), GpsState::NoFix);
    assert_eq!(gps.current(), GpsState::NoFix);
}

#[test]
fn states_serialise_with_a_state_tag() {
    let fix = GpsState::Fix(GpsFix {
        latitude: 50.0,
        longitude: 4.0,
        speed_mps: None,
        at: start(),
    });
    let json = serde_json::to_value(&fix).unwrap();
    assert_eq!(json["state"], "fix");
    assert_eq!(json["latitude"], 50.0);
    assert_eq!(serde_json::from_value::<GpsState>(json).unwrap(), fix);
    assert_eq!(
        serde_json::to_value(GpsState::NoFix).unwrap(),
        serde_json::json!({"state": "no-fix"})
    );
}
