//! Where the bus is, end to end: the real gpsd fed by gpsfake from an NMEA log made here, the
//! real `busloket-node` following it with the stop schedule the real `busloket-hub` syncs to it
//! (`deploy/stops.example.toml`: three stops in Kortrijk, 60 m each), over the emulated LTE link.
//!
//! The route: standing at demo-markt (with a fix that jumps 50 km for 0.4 s), driving to
//! demo-station through a tunnel without a fix, standing at the station's edge with a noisy fix
//! that crosses its radius, and driving away to a place far from any stop. The stops the node
//! reports must follow it, once each, and requests made meanwhile must carry the right stop.
//!
//! gpsfake plays a sentence every 0.1 s and the log has two sentences (RMC, GGA) a sample, so
//! the route is sampled every 0.2 s with GPS times 0.2 s apart from the moment gpsfake starts:
//! GPS time runs with the system clock (no false skew), speeds between fixes are the route's,
//! and the 30 s without a fix before "unknown" is measured on the same time as the tunnel.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use busloket_e2e::city::City;
use busloket_e2e::lte::LteLink;
use busloket_e2e::sync::{StatusWatch, SyncedNode, TestHub, submit_one};
use busloket_hardware::gps::gpsfake::{Gpsfake, free_port};
use busloket_hardware::gps::nmea::{Sample, samples_along, write_log};
use busloket_hardware::gps::route::{Point, Route, distance_m};
use chrono::Utc;
use serde_json::Value;

/// The stops of `deploy/stops.example.toml` on the route, and their radius.
const MARKT: Point = Point {
    latitude: 50.8279,
    longitude: 3.2649,
};
const STATION: Point = Point {
    latitude: 50.8247,
    longitude: 3.2640,
};
const RADIUS_M: f64 = 60.0;
/// The radius beyond which the node has the bus leave a stop of 60 m (the tracker's
/// `exit_radius_m`: half the radius more, at least 25 m).
const EXIT_RADIUS_M: f64 = 90.0;
/// South of the station, 400 m from it and further from every other stop.
const OPEN: Point = Point {
    latitude: 50.8211,
    longitude: 3.2640,
};

/// 36 km/h.
const SPEED: f64 = 10.0;
/// A sample per cycle of gpsfake: two sentences, 0.1 s apart.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(200);
const STAND_AT_MARKT: Duration = Duration::from_secs(20);
/// When the fix jumps 50 km, after the start, for two samples: fewer than the five agreeing
/// refused fixes the node would take as the receiver finding the bus again.
const JUMP_AT: Duration = Duration::from_secs(14);
const JUMPED_SAMPLES: usize = 2;
const JUMP_NORTH_M: f64 = 50_000.0;
/// Standing at the station's edge: still, then with the fix wandering.
const STAND_AT_EDGE: Duration = Duration::from_secs(5);
const NOISY_AT_EDGE: Duration = Duration::from_secs(25);
/// The edge: this far from the station's centre, inside its radius; the noise reaches this far
/// around it, so the fixes cross the radius but never the exit radius.
const EDGE_M: f64 = 50.0;
const NOISE_M: f64 = 30.0;
/// After the route: long enough that gpsfake, which loops its log, is stopped before it starts
/// again.
const STAND_IN_THE_OPEN: Duration = Duration::from_secs(90);

/// `metres` from `from` towards `to`, on the straight line between them.
fn toward(from: Point, to: Point, metres: f64) -> Point {
    let part = metres / distance_m(from, to);
    Point {
        latitude: from.latitude + (to.latitude - from.latitude) * part,
        longitude: from.longitude + (to.longitude - from.longitude) * part,
    }
}

fn route() -> Route {
    let between = distance_m(MARKT, STATION);
    let tunnel_entry = toward(MARKT, STATION, between * 0.35);
    // 127 m without a fix: 13 s, less than the 30 s a stop or a drive is kept without one.
    let tunnel_exit = toward(MARKT, STATION, between * 0.7);
    let edge = toward(STATION, MARKT, EDGE_M);
    Route::starting_at(MARKT.latitude, MARKT.longitude)
        .dwell(STAND_AT_MARKT)
        .drive_to(tunnel_entry.latitude, tunnel_entry.longitude, SPEED)
        .drive_without_fix_to(tunnel_exit.latitude, tunnel_exit.longitude, SPEED)
        .drive_to(edge.latitude, edge.longitude, SPEED)
        .dwell(STAND_AT_EDGE)
        .noisy(NOISY_AT_EDGE, NOISE_M, 5)
        .drive_to(OPEN.latitude, OPEN.longitude, SPEED)
        .dwell(STAND_IN_THE_OPEN)
}

/// The route's samples from now, with the jump put in.
fn samples(route: &Route) -> Vec<Sample> {
    let mut samples = samples_along(route, Utc::now(), SAMPLE_INTERVAL);
    let first = (JUMP_AT.as_millis() / SAMPLE_INTERVAL.as_millis()) as usize;
    for sample in &mut samples[first..first + JUMPED_SAMPLES] {
        let fix = sample
            .fix
            .as_mut()
            .expect("standing at the Markt, with a fix");
        fix.latitude += JUMP_NORTH_M / 111_320.0;
    }
    samples
}

fn position_of(value: &Value) -> Option<Point> {
    Some(Point {
        latitude: value["latitude"].as_f64()?,
        longitude: value["longitude"].as_f64()?,
    })
}

/// Where the node says the bus is, as the test records it: `unknown`, `driving` or
/// `at-stop <stop>`.
fn location(position: &Value) -> String {
    match position["location"].as_str() {
        Some("at-stop") => format!("at-stop {}", position["gps_stop"].as_str().unwrap_or("?")),
        Some(other) => other.to_owned(),
        None => format!("no location in {position}"),
    }
}

/// A request made while the bus stood at `stop`, which is `near` there.
struct Made {
    id: String,
    stop: &'static str,
    near: Point,
    what: &'static str,
}

/// What the node said while gpsfake played the route.
struct Drive {
    locations: Vec<String>,
    made: Vec<Made>,
    /// The position after the route.
    last: Value,
}

/// Opens the node's event stream, starts gpsfake (this runs on a thread in the bus namespace,
/// so its gpsd listens there, on `port`), and reads the position after every event until the
/// bus has left the station; a request is made on arriving at each stop and after the jump.
async fn drive(
    client: reqwest::Client,
    base: String,
    token: String,
    port: u16,
    route: Route,
) -> Result<Drive> {
    let mut watch = StatusWatch::open(client.clone(), base.clone(), token.clone()).await?;
    let gpsfake = Gpsfake::start_on_port(&write_log(&samples(&route)), port)?;
    let deadline = tokio::time::Instant::now() + route.duration();
    let mut locations: Vec<String> = Vec::new();
    let mut made = Vec::new();
    loop {
        let position = watch.position().await?;
        let here = location(&position);
        if locations.last() != Some(&here) {
            locations.push(here.clone());
        }
        // A request on arriving at each stop, and one at the Markt once the jump was refused.
        let jumped = position["jumps"].as_u64().unwrap_or(0) > 0;
        let wanted = match here.as_str() {
            "at-stop demo-markt" if jumped => {
                Some(("demo-markt", MARKT, "at the Markt after the jump"))
            }
            "at-stop demo-markt" => Some(("demo-markt", MARKT, "at the Markt")),
            "at-stop demo-station" => Some(("demo-station", STATION, "at the station's edge")),
            _ => None,
        };
        if let Some((stop, near, what)) = wanted
            && !made.iter().any(|made: &Made| made.what == what)
        {
            let id = submit_one(&client, &base, &token, made.len()).await?;
            made.push(Made {
                id,
                stop,
                near,
                what,
            });
        }
        if locations.ends_with(&["at-stop demo-station".to_owned(), "driving".to_owned()]) {
            break;
        }
        if !watch.changed_before(deadline).await? {
            bail!(
                "the route ended before the bus left the station; locations: {locations:?}, the last position: {position:#}"
            );
        }
    }
    gpsfake.stop()?;
    let last = watch.position().await?;
    Ok(Drive {
        locations,
        made,
        last,
    })
}

#[test]
fn the_stops_the_node_reports_follow_the_route_through_a_tunnel_a_noisy_edge_and_a_jump()
-> Result<()> {
    let route = route();
    // The log is sound: the noise at the edge crosses the stop's radius (a tracker without
    // hysteresis would flap) but never its exit radius (leaving would be right).
    let standing_near_the_station: Vec<f64> = samples_along(&route, Utc::now(), SAMPLE_INTERVAL)
        .iter()
        .filter_map(|sample| sample.fix)
        .filter(|fix| fix.speed_mps < 2.0)
        .map(|fix| {
            distance_m(
                STATION,
                Point {
                    latitude: fix.latitude,
                    longitude: fix.longitude,
                },
            )
        })
        .filter(|metres| *metres < 200.0)
        .collect();
    ensure!(
        standing_near_the_station
            .iter()
            .any(|metres| *metres > RADIUS_M + 5.0),
        "the noise never leaves the radius: {standing_near_the_station:?}"
    );
    ensure!(
        standing_near_the_station
            .iter()
            .all(|metres| *metres < EXIT_RADIUS_M - 2.0),
        "the noise reaches the exit radius: {standing_near_the_station:?}"
    );

    let link = LteLink::up("position")?;
    let city = City::new(&[&link.hub_addr().to_string()])?;
    let hub = TestHub::start(&link, &city)?;
    let port = link.in_bus(free_port)?;
    let node = SyncedNode::start_with_gpsd(
        &link,
        &city,
        &hub,
        "bus-position-1",
        &format!("127.0.0.1:{port}"),
    )?;
    node.sync_until(&link, Duration::from_secs(60), |status| {
        status["last_success"].is_string()
    })
    .with_context(|| {
        format!(
            "no round\nnode log:\n{}\nhub log:\n{}",
            node.log(),
            hub.log()
        )
    })?;
    let before = node.position_until(&link, Duration::from_secs(30), |position| {
        position["stops_known"] == 3
    })?;
    // No fix yet: the configured stop holds.
    assert_eq!(before["location"], "unknown", "{before:#}");
    assert_eq!(before["stop_source"], "configured", "{before:#}");

    let started = std::time::Instant::now();
    let driven = node
        .call(&link, move |client, base, token| {
            drive(client, base, token, port, route)
        })
        .with_context(|| format!("node log:\n{}", node.log()))?;
    eprintln!(
        "the route was followed in {:?}: {:?}",
        started.elapsed(),
        driven.locations
    );

    assert_eq!(
        driven.locations,
        [
            "unknown",
            "at-stop demo-markt",
            "driving",
            "at-stop demo-station",
            "driving"
        ],
        "node log:\n{}",
        node.log()
    );
    // Every change of location, as the node logged it: none missed between two reads above.
    let log = node.log();
    let changes: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("location changed"))
        .map(|line| match line {
            _ if line.ends_with("AtStop(StopId(\"demo-markt\"))") => "at-stop demo-markt",
            _ if line.ends_with("AtStop(StopId(\"demo-station\"))") => "at-stop demo-station",
            _ if line.ends_with("Driving") => "driving",
            _ if line.ends_with("Unknown") => "unknown",
            _ => line,
        })
        .collect();
    assert_eq!(changes, driven.locations[1..], "{log}");
    eprintln!(
        "jumps refused: {}, the clock's skew from GPS time: {} ms",
        driven.last["jumps"], driven.last["clock_skew_ms"]
    );

    // The jump was refused and counted, and the fix kept is where the bus was.
    let last = &driven.last;
    let jumps = last["jumps"].as_u64().unwrap_or(0);
    assert!(jumps >= 1, "{last:#}");
    let jump = last["last_jump"]["distance_m"].as_f64().unwrap_or(0.0);
    assert!((jump - JUMP_NORTH_M).abs() < 1_000.0, "{last:#}");
    let skew = last["clock_skew_ms"].as_i64().context("a skew")?;
    // Started with the log, gpsd trails it by a second or so; the node warns beyond 30 s.
    assert!(
        skew.abs() < 10_000,
        "GPS time runs with the clock: {last:#}"
    );
    assert_eq!(last["clock_skew_warning"], false, "{last:#}");

    let whats: Vec<&str> = driven.made.iter().map(|made| made.what).collect();
    assert_eq!(
        whats,
        [
            "at the Markt",
            "at the Markt after the jump",
            "at the station's edge"
        ]
    );
    let made = driven.made;
    let views = made
        .into_iter()
        .map(|made| {
            let view = node.get(&link, &format!("/api/v1/requests/{}", made.id))?;
            Ok((made, view))
        })
        .collect::<Result<Vec<_>>>()?;
    for (
        Made {
            stop, near, what, ..
        },
        view,
    ) in &views
    {
        let origin = &view["origin"];
        let whereabouts = &origin["whereabouts"];
        assert_eq!(origin["stop"], *stop, "{what}: {origin:#}");
        assert_eq!(whereabouts["stop_source"], "gps", "{what}: {origin:#}");
        let fix = position_of(&whereabouts["fix"])
            .with_context(|| format!("{what}: no fix recorded: {origin:#}"))?;
        let off = distance_m(*near, fix);
        assert!(off < EXIT_RADIUS_M, "{what}: the fix is {off} m away");
        let skew = whereabouts["clock_skew_ms"].as_i64();
        assert!(
            skew.is_some_and(|skew| skew.abs() < 10_000),
            "{what}: {origin:#}"
        );
    }

    // The trip log reaches the hub with the next sync: both arrivals, the departures, the
    // tunnel's gap is not there (13 s, under the grace), the refused jump is.
    let synced_at = chrono::Utc::now();
    node.sync_until(&link, Duration::from_secs(60), move |status| {
        status["last_success"]
            .as_str()
            .and_then(|at| at.parse::<chrono::DateTime<chrono::Utc>>().ok())
            .is_some_and(|at| at > synced_at)
    })?;
    let trip = hub.call(&link, |client, url, cookie| async move {
        Ok(client
            .get(format!("{url}/api/v1/devices/bus-position-1/trip"))
            .header(reqwest::header::COOKIE, cookie)
            .send()
            .await?
            .error_for_status()?
            .json::<Value>()
            .await?)
    })?;
    let events: Vec<String> = trip["lines"]
        .as_array()
        .context("trip lines")?
        .iter()
        .map(|line| {
            let event = &line["event"];
            match event.as_str() {
                Some(unit) => unit.to_owned(),
                None => event
                    .as_object()
                    .and_then(|object| object.keys().next().cloned())
                    .unwrap_or_default(),
            }
        })
        .collect();
    let arrivals: Vec<&Value> = trip["lines"]
        .as_array()
        .context("trip lines")?
        .iter()
        .filter_map(|line| line["event"].get("Arrived"))
        .collect();
    assert_eq!(arrivals.len(), 2, "{events:?}");
    assert_eq!(arrivals[0]["stop"], "demo-markt", "{trip:#}");
    assert_eq!(arrivals[1]["stop"], "demo-station", "{trip:#}");
    assert!(events.iter().any(|event| event == "Jump"), "{events:?}");
    assert!(
        events.iter().filter(|event| *event == "Departed").count() >= 1,
        "{events:?}"
    );
    let km = trip["route_km"].as_f64().context("route_km")?;
    assert!(km > 0.2, "the bus drove: {trip:#}");

    // The indicators count the requests at their stops (each made by another citizen: a visit
    // each) and the bus's kilometres; the page is kept to be looked at.
    let (indicators, page) = hub.call(&link, |client, url, cookie| async move {
        let get = |path: &'static str| {
            client
                .get(format!("{url}{path}"))
                .header(reqwest::header::COOKIE, cookie.clone())
                .send()
        };
        let json = get("/api/v1/indicators")
            .await?
            .error_for_status()?
            .json::<Value>()
            .await?;
        let page = get("/indicators?lang=nl")
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok((json, page))
    })?;
    let stops: Vec<(String, u64, u64)> = indicators["stops"]
        .as_array()
        .context("stops")?
        .iter()
        .map(|stop| {
            (
                stop["stop"].as_str().unwrap_or("none").to_owned(),
                stop["visits"].as_u64().unwrap_or(0),
                stop["requests"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        stops,
        [
            ("demo-markt".to_owned(), 2, 2),
            ("demo-station".to_owned(), 1, 1)
        ],
        "{indicators:#}"
    );
    let totals = &indicators["totals"];
    assert_eq!(totals["visits_estimated"], 3, "{totals:#}");
    let bus_km = totals["bus_km"].as_f64().context("bus_km")?;
    assert!((bus_km - km).abs() < 0.01, "{bus_km} vs the trip's {km}");
    assert!(page.contains("Grote Markt") && page.contains(r#"role="img""#));
    screenshot_page("hub-indicators", &page)?;
    Ok(())
}

/// Renders a page the hub served (kept under `target/e2e/`; it needs nothing but itself) in
/// headless Chromium and saves its screenshot there.
fn screenshot_page(name: &str, html: &str) -> Result<()> {
    let file = busloket_e2e::artifacts_dir().join(format!("{name}.html"));
    std::fs::write(&file, html)?;
    tokio::runtime::Runtime::new()?.block_on(async {
        let browser = busloket_e2e::Browser::start(1280, 2000).await?;
        browser
            .client
            .goto(&format!("file://{}", file.display()))
            .await?;
        browser.screenshot(name).await?;
        browser.close().await
    })
}
