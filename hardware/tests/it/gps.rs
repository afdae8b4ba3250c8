//! The simulated GPS: a fixed stop stamped by its clock, no fix, changes seen by subscribers,
//! and a route driven in a loop.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use busloket_hardware::{FixMode, GpsFix, GpsHealth, GpsState, PositionSource, Route, SimGps};
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
            mode: FixMode::ThreeD,
            at,
            received_at: at,
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
    assert_eq!(fix.received_at, fix.at);
    assert_eq!(SimGps::no_fix().current(), GpsState::NoFix);
    assert_eq!(SimGps::no_fix().health(), GpsHealth::simulated());
    assert!(SimGps::no_fix().health().is_ok());
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
        mode: FixMode::TwoD,
        at: start(),
        received_at: start(),
    };
    gps.set(GpsState::Fix(moved.clone()));

    changes.changed().await.unwrap();
    let stamped = GpsFix {
        at: start() + TimeDelta::minutes(5),
        received_at: start() + TimeDelta::minutes(5),
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
        mode: FixMode::ThreeD,
        at: start(),
        received_at: start() + TimeDelta::milliseconds(300),
    });
    let json = serde_json::to_value(&fix).unwrap();
    assert_eq!(json["state"], "fix");
    assert_eq!(json["latitude"], 50.0);
    assert_eq!(json["mode"], "3d");
    assert_eq!(json["at"], "2026-11-23T09:30:00Z");
    assert_eq!(json["received_at"], "2026-11-23T09:30:00.300Z");
    assert_eq!(serde_json::from_value::<GpsState>(json).unwrap(), fix);
    assert_eq!(
        serde_json::to_value(GpsState::NoFix).unwrap(),
        serde_json::json!({"state": "no-fix"})
    );
}

/// Three stops 0.01° of latitude apart (1112 m), driven at 10 m/s with 60 s at each, the last
/// leg through a tunnel.
fn three_stops() -> Route {
    Route::starting_at(50.80, 3.26)
        .dwell(Duration::from_secs(60))
        .drive_to(50.81, 3.26, 10.0)
        .dwell(Duration::from_secs(60))
        .drive_without_fix_to(50.82, 3.26, 10.0)
        .dwell(Duration::from_secs(60))
}

fn latitude(state: &GpsState) -> f64 {
    match state {
        GpsState::Fix(fix) => fix.latitude,
        GpsState::NoFix => panic!("expected a fix, got none"),
    }
}

#[test]
fn a_driving_bus_is_where_the_route_puts_it_by_its_clock_and_loops() {
    let (now, clock) = fake_clock(start());
    let gps = SimGps::driving_with_clock(three_stops(), clock, Duration::from_secs(3600)).unwrap();
    let at = |seconds: i64| {
        *now.lock().unwrap() = start() + TimeDelta::seconds(seconds);
        gps.current()
    };
    assert_eq!(latitude(&at(30)), 50.80);
    let GpsState::Fix(driving) = at(60 + 55) else {
        panic!("driving with a fix");
    };
    assert!(
        (driving.latitude - 50.80495).abs() < 1e-4,
        "{}",
        driving.latitude
    );
    assert_eq!(driving.speed_mps, Some(10.0));
    assert_eq!(driving.at, start() + TimeDelta::seconds(115));
    assert_eq!(latitude(&at(60 + 111 + 30)), 50.81);
    assert_eq!(at(60 + 111 + 60 + 50), GpsState::NoFix, "in the tunnel");
    assert_eq!(latitude(&at(60 + 111 + 60 + 111 + 30)), 50.82);
    let lap = three_stops().duration().as_secs_f64();
    assert!((lap - 402.4).abs() < 0.1, "{lap}");
    // The second lap starts at the first stop again.
    assert_eq!(latitude(&at(403 + 30)), 50.80);
}

#[tokio::test]
async fn subscribers_see_the_driving_bus_at_each_tick_until_it_parks() {
    let (now, clock) = fake_clock(start());
    let gps = SimGps::driving_with_clock(three_stops(), clock, Duration::from_millis(10)).unwrap();
    let mut changes = gps.subscribe();
    assert_eq!(latitude(&changes.borrow_and_update()), 50.80);

    *now.lock().unwrap() = start() + TimeDelta::seconds(60 + 111 + 60 + 50);
    let in_tunnel = tokio::time::timeout(
        Duration::from_secs(5),
        changes.wait_for(|state| *state == GpsState::NoFix),
    )
    .await
    .is_ok();
    assert!(in_tunnel, "the tick publishes the tunnel");

    *now.lock().unwrap() = start() + TimeDelta::seconds(60 + 111 + 60 + 111 + 30);
    let at_third_stop = tokio::time::timeout(
        Duration::from_secs(5),
        changes.wait_for(|state| matches!(state, GpsState::Fix(fix) if fix.latitude == 50.82)),
    )
    .await
    .is_ok();
    assert!(at_third_stop, "the tick publishes the third stop");

    // Set by hand, the bus parks: the ticks no longer move it.
    gps.set(GpsState::NoFix);
    *now.lock().unwrap() = start() + TimeDelta::seconds(30);
    assert_eq!(gps.current(), GpsState::NoFix);
}
