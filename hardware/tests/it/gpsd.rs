//! `GpsdSource` against a real gpsd fed by gpsfake (routes written with `gps::nmea`), gpsd killed
//! and restarted on the same port, gpsd absent, a silent gpsd, and a loopback "gpsd" that sends
//! what gpsd_proto 1.0 cannot read.
//!
//! gpsfake must be installed (`cargo xtask deps`); without it these tests fail and say so.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use busloket_hardware::gps::gpsfake::{Gpsfake, free_port};
use busloket_hardware::gps::nmea::{samples_along, write_log};
use busloket_hardware::gps::route::{Point, distance_m};
use busloket_hardware::{
    FixMode, GpsFix, GpsLink, GpsState, GpsdOptions, GpsdSource, PositionSource, Route,
};
use chrono::{TimeZone, Utc};
use tokio::sync::watch;

/// Long enough for gpsfake to loop its log once or twice.
const PATIENCE: Duration = Duration::from_secs(30);

const A: Point = Point {
    latitude: 50.8279,
    longitude: 3.2649,
};
const B: Point = Point {
    latitude: 50.8247,
    longitude: 3.2640,
};
const C: Point = Point {
    latitude: 50.8301,
    longitude: 3.2628,
};

/// 40 m/s: gpsfake plays a sample every 0.2 s, so a lap takes a few seconds.
const SPEED: f64 = 40.0;

fn log_of(route: &Route) -> String {
    let start = Utc.with_ymd_and_hms(2025, 3, 14, 9, 30, 0).unwrap();
    write_log(&samples_along(route, start, Duration::from_secs(1)))
}

fn gpsfake(route: &Route) -> Gpsfake {
    Gpsfake::start(&log_of(route)).unwrap_or_else(|error| panic!("{error}"))
}

fn standing_at(point: Point) -> Route {
    Route::starting_at(point.latitude, point.longitude).dwell(Duration::from_secs(10))
}

/// Within a metre of the point (the log's ddmm.mmmm is good to 0.2 m).
fn is_at(fix: &GpsFix, point: Point) -> bool {
    distance_m(position(fix), point) < 1.0
}

fn position(fix: &GpsFix) -> Point {
    Point {
        latitude: fix.latitude,
        longitude: fix.longitude,
    }
}

/// Metres from `point` to the segment `from`–`to` (flat Earth: segments of a few hundred m).
fn distance_to_segment_m(point: Point, from: Point, to: Point) -> f64 {
    let metres = |p: Point| {
        (
            (p.longitude - from.longitude) * 111_320.0 * from.latitude.to_radians().cos(),
            (p.latitude - from.latitude) * 111_320.0,
        )
    };
    let (px, py) = metres(point);
    let (bx, by) = metres(to);
    let along = ((px * bx + py * by) / (bx * bx + by * by)).clamp(0.0, 1.0);
    ((px - along * bx).powi(2) + (py - along * by).powi(2)).sqrt()
}

/// Follows the states until `done` says the ones seen so far suffice.
async fn record_until(
    changes: &mut watch::Receiver<GpsState>,
    mut done: impl FnMut(&[GpsState]) -> bool,
) -> Vec<GpsState> {
    let mut seen = vec![changes.borrow_and_update().clone()];
    while !done(&seen) {
        match tokio::time::timeout(PATIENCE, changes.changed()).await {
            Ok(Ok(())) => seen.push(changes.borrow_and_update().clone()),
            Ok(Err(_)) => panic!("the source ended; seen: {seen:?}"),
            Err(_) => panic!("nothing new within {PATIENCE:?}; seen: {seen:?}"),
        }
    }
    seen
}

async fn wait_for_state(
    changes: &mut watch::Receiver<GpsState>,
    what: &str,
    wanted: impl FnMut(&GpsState) -> bool,
) -> GpsState {
    let waited = tokio::time::timeout(PATIENCE, changes.wait_for(wanted))
        .await
        .map(|found| found.map(|state| state.clone()));
    match waited {
        Ok(Ok(state)) => state,
        Ok(Err(_)) => panic!("the source ended before {what}"),
        Err(_) => panic!("no {what} within {PATIENCE:?}: {:?}", *changes.borrow()),
    }
}

async fn wait_for_link(source: &GpsdSource, what: &str, wanted: impl FnMut(&GpsLink) -> bool) {
    let mut health = source.subscribe_health();
    let mut wanted = wanted;
    let waited = tokio::time::timeout(PATIENCE, health.wait_for(|health| wanted(&health.link)))
        .await
        .map(|found| found.map(|_| ()));
    match waited {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => panic!("the source ended before {what}"),
        Err(_) => panic!("not {what} within {PATIENCE:?}: {}", *health.borrow()),
    }
}

fn is_fix_at(state: &GpsState, point: Point) -> bool {
    matches!(state, GpsState::Fix(fix) if is_at(fix, point))
}

/// The stops a list of states passes, in order, each once per visit.
fn visits(states: &[GpsState], stops: &[(char, Point)]) -> String {
    let mut visits = String::new();
    for state in states {
        let GpsState::Fix(fix) = state else { continue };
        if let Some((name, _)) = stops.iter().find(|(_, point)| is_at(fix, *point))
            && !visits.ends_with(*name)
        {
            visits.push(*name);
        }
    }
    visits
}

#[tokio::test]
async fn a_route_through_three_stops_arrives_in_order_with_its_positions_and_times() {
    let route = Route::starting_at(A.latitude, A.longitude)
        .dwell(Duration::from_secs(4))
        .drive_to(B.latitude, B.longitude, SPEED)
        .dwell(Duration::from_secs(4))
        .drive_to(C.latitude, C.longitude, SPEED)
        .dwell(Duration::from_secs(4));
    let gpsfake = gpsfake(&route);
    let before = Utc::now();
    let source = GpsdSource::start(gpsfake.address()).unwrap();
    let mut changes = source.subscribe();

    let stops = [('A', A), ('B', B), ('C', C)];
    // The log loops (C jumps back to A); four visits give three transitions.
    let states = record_until(&mut changes, |states| visits(states, &stops).len() >= 5).await;
    let visits = visits(&states, &stops);
    assert!(
        "ABCABCABC".contains(&visits),
        "stops in the route's order: {visits}"
    );

    let fixes: Vec<&GpsFix> = states
        .iter()
        .filter_map(|state| match state {
            GpsState::Fix(fix) => Some(fix),
            GpsState::NoFix => None,
        })
        .collect();
    assert!(fixes.len() > 20, "{} fixes", fixes.len());
    for fix in &fixes {
        let off_route = distance_to_segment_m(position(fix), A, B).min(distance_to_segment_m(
            position(fix),
            B,
            C,
        ));
        assert!(off_route < 1.0, "{fix:?} is {off_route} m off the route");
        assert_eq!(fix.at.date_naive(), route_date(), "GPS time from the log");
        assert!(before <= fix.received_at && fix.received_at <= Utc::now());
        let speed = fix.speed_mps.expect("RMC carries the speed");
        if [A, B, C].iter().all(|stop| !is_at(fix, *stop)) {
            assert!((speed - SPEED).abs() < 0.1, "driving at {speed} m/s");
        }
    }
    assert!(
        fixes
            .iter()
            .any(|fix| is_at(fix, B) && fix.speed_mps == Some(0.0)),
        "standing at B"
    );
    // GGA carries the altitude: 3D. gpsd sometimes ends a cycle after the RMC alone, which is
    // 2D with the same position (seen at gpsfake's 0.1 s between sentences under load).
    let three_d = fixes
        .iter()
        .filter(|fix| fix.mode == FixMode::ThreeD)
        .count();
    assert!(
        three_d * 2 > fixes.len(),
        "{three_d} of {} fixes in 3D",
        fixes.len()
    );
    assert_eq!(
        source.health().link,
        GpsLink::Connected {
            address: gpsfake.address()
        }
    );
    assert_eq!(source.health().skipped_lines, 0);
    gpsfake.stop().unwrap();
}

fn route_date() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2025, 3, 14).unwrap()
}

#[tokio::test]
async fn a_tunnel_loses_the_fix_and_the_exit_finds_it_again() {
    let route = Route::starting_at(A.latitude, A.longitude)
        .dwell(Duration::from_secs(5))
        .drive_without_fix_to(B.latitude, B.longitude, SPEED)
        .dwell(Duration::from_secs(5));
    let gpsfake = gpsfake(&route);
    let source = GpsdSource::start(gpsfake.address()).unwrap();
    let mut changes = source.subscribe();

    // Wherever the log is when we connect, the next pass goes A, tunnel, B.
    wait_for_state(&mut changes, "a fix at A", |state| is_fix_at(state, A)).await;
    wait_for_state(&mut changes, "the tunnel", |state| {
        *state == GpsState::NoFix
    })
    .await;
    let exit = wait_for_state(&mut changes, "a fix again", |state| {
        matches!(state, GpsState::Fix(_))
    })
    .await;
    assert!(is_fix_at(&exit, B), "out of the tunnel at B: {exit:?}");
    assert!(source.health().is_ok(), "no fix in a tunnel is not a fault");
    gpsfake.stop().unwrap();
}

#[tokio::test]
async fn gpsd_killed_is_no_fix_and_unreachable_and_a_new_gpsd_on_the_port_is_followed_again() {
    let first = gpsfake(&standing_at(A));
    let port = first.port();
    let source = GpsdSource::start(first.address()).unwrap();
    let mut changes = source.subscribe();
    wait_for_state(&mut changes, "a fix at A", |state| is_fix_at(state, A)).await;

    first.stop().unwrap();
    wait_for_state(&mut changes, "no fix", |state| *state == GpsState::NoFix).await;
    wait_for_link(&source, "connection refused", |link| {
        matches!(link, GpsLink::Unreachable { reason, .. } if reason == "connection refused")
    })
    .await;
    assert_eq!(
        source.health().to_string(),
        format!("gpsd at 127.0.0.1:{port} not reachable: connection refused")
    );
    assert_eq!(source.current(), GpsState::NoFix);

    let second = Gpsfake::start_on_port(&log_of(&standing_at(B)), port)
        .unwrap_or_else(|error| panic!("{error}"));
    wait_for_state(&mut changes, "a fix at B from the new gpsd", |state| {
        is_fix_at(state, B)
    })
    .await;
    assert!(source.health().is_ok(), "{}", source.health());
    second.stop().unwrap();
}

#[tokio::test]
async fn gpsd_absent_is_no_fix_with_the_reason_and_is_retried() {
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let source = GpsdSource::start(address.clone()).unwrap();
    assert_eq!(source.current(), GpsState::NoFix);
    wait_for_link(&source, "unreachable", |link| {
        matches!(link, GpsLink::Unreachable { .. })
    })
    .await;
    assert_eq!(
        source.health().to_string(),
        format!("gpsd at {address} not reachable: connection refused")
    );
    assert!(!source.health().is_ok());

    // gpsd turns up: the retries find it.
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let (_connection, _stop) = serve_gpsd(listener, vec![tpv_at(C)]);
    let mut changes = source.subscribe();
    wait_for_state(&mut changes, "a fix at C", |state| is_fix_at(state, C)).await;
}

#[tokio::test]
async fn lines_gpsd_proto_cannot_read_are_skipped_and_counted_and_the_stream_goes_on() {
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (watch_command, _stop) = serve_gpsd(
        listener,
        vec![
            r#"{"class":"TOFF","device":"/dev/pps0","real_sec":1741944600,"real_nsec":0,"clock_sec":1741944600,"clock_nsec":1200,"precision":-20}"#.into(),
            r#"{"class":"DEVICE","path":"/dev/ttyACM0","driver":"u-blox","activated":"2025-03-14T09:29:58.000Z","bps":115200,"parity":"N","stopbits":1,"cycle":1.00}"#.into(),
            r#"{"class":"TPV","mode":3,"lat":50.8,,"lon":}"#.into(),
            tpv_at(A),
        ],
    );
    let source = GpsdSource::start(address).unwrap();
    let mut changes = source.subscribe();

    let state = wait_for_state(&mut changes, "the good TPV", |state| {
        matches!(state, GpsState::Fix(_))
    })
    .await;
    assert!(is_fix_at(&state, A), "{state:?}");
    let health = source.health();
    assert_eq!(health.skipped_lines, 3, "{health}");
    assert!(health.is_ok(), "{health}");
    assert_eq!(
        watch_command.recv_timeout(PATIENCE).unwrap(),
        "?WATCH={\"enable\":true,\"json\":true};\r\n"
    );
}

#[tokio::test]
async fn a_gpsd_that_falls_silent_is_no_fix_not_a_frozen_position() {
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (_watch_command, _stop) = serve_gpsd(listener, vec![tpv_at(A)]);
    let options = GpsdOptions {
        stale_after: Duration::from_secs(1),
        ..GpsdOptions::default()
    };
    let source = GpsdSource::start_with(address, options).unwrap();
    let mut changes = source.subscribe();

    wait_for_state(&mut changes, "a fix at A", |state| is_fix_at(state, A)).await;
    wait_for_state(&mut changes, "no fix", |state| *state == GpsState::NoFix).await;
    assert!(
        matches!(source.health().link, GpsLink::Silent { .. }),
        "{}",
        source.health()
    );
}

fn tpv_at(point: Point) -> String {
    format!(
        r#"{{"class":"TPV","device":"/dev/ttyACM0","mode":3,"time":"2025-03-14T09:30:05.000Z","lat":{},"lon":{},"altMSL":58.0,"speed":0.0}}"#,
        point.latitude, point.longitude
    )
}

/// A loopback "gpsd" for one client: greets as gpsd 3.22, reads the watch command (handed to
/// the test through the first channel), answers as gpsd does, then sends `lines` and keeps the
/// connection open until the second value is dropped.
fn serve_gpsd(
    listener: TcpListener,
    lines: Vec<String>,
) -> (mpsc::Receiver<String>, mpsc::Sender<()>) {
    let (watch_sender, watch_command) = mpsc::channel();
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let (mut connection, _) = listener.accept().unwrap();
        connection
            .write_all(b"{\"class\":\"VERSION\",\"release\":\"3.22\",\"rev\":\"3.22\",\"proto_major\":3,\"proto_minor\":14}\r\n")
            .unwrap();
        let mut command = String::new();
        BufReader::new(connection.try_clone().unwrap())
            .read_line(&mut command)
            .unwrap();
        watch_sender.send(command).unwrap();
        let mut answer = String::from(
            "{\"class\":\"DEVICES\",\"devices\":[{\"class\":\"DEVICE\",\"path\":\"/dev/ttyACM0\",\"activated\":\"2025-03-14T09:29:58.000Z\",\"native\":0,\"bps\":9600}]}\r\n\
             {\"class\":\"WATCH\",\"enable\":true,\"json\":true,\"nmea\":false,\"raw\":0,\"scaled\":false,\"timing\":false,\"split24\":false,\"pps\":false}\r\n",
        );
        for line in lines {
            answer.push_str(&line);
            answer.push_str("\r\n");
        }
        connection.write_all(answer.as_bytes()).unwrap();
        // Until the test ends (its sender dropped).
        let _ = stopped.recv();
    });
    (watch_command, stop)
}
