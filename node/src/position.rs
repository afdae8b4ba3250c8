//! Where the bus is: the stop [`tracker`] over the receiver's fixes and the stop schedule the
//! hub syncs (synced file `stops`), the stop staff set by hand, and the clock's skew from GPS
//! time. [`PositionService::here`] is what a new request is stamped with.
//!
//! The stop a request gets, in order: the one staff set by hand (until they clear it, or the
//! day ends); the one the fixes say; the configured stop of a node that does not move, while
//! the fixes say nothing (no receiver, no fix, or no stop schedule from the hub yet).

pub mod tracker;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use busloket_hardware::{GpsFix, GpsHealth, GpsState, PositionSource};
use busloket_sync::record::{Fix, StopSource, Whereabouts};
use busloket_sync::stops::{Position, StopSchedule};
use busloket_sync::store::Store;
use busloket_sync::terms::StopId;
use busloket_sync::trip::{Thinner, TripEntry, TripEvent};
use chrono::{DateTime, Local, NaiveDate, TimeDelta, Utc};
use serde::Serialize;

use self::tracker::{Jump, Location, Sample, Tracker};
use crate::events::{Events, NodeEvent, Shutdown};

/// A skew beyond this between the system clock and GPS time is shown to staff: the request
/// times come from the system clock.
pub const SKEW_WARNING: TimeDelta = TimeDelta::seconds(30);
/// How often the tracker is told there is still no fix (for its grace period).
const NO_FIX_TICK: std::time::Duration = std::time::Duration::from_secs(5);

/// What a new request is stamped with.
#[derive(Debug, Clone, PartialEq)]
pub struct Here {
    pub stop: Option<StopId>,
    pub whereabouts: Whereabouts,
}

/// A stop set by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManualStop {
    /// `None`: staff said the bus is at no stop.
    pub stop: Option<StopId>,
    pub by: String,
    pub at: DateTime<Utc>,
}

/// The position as the staff console shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PositionStatus {
    /// `unknown`, `driving` or `at-stop`, from the fixes.
    pub location: &'static str,
    /// The stop the fixes say.
    pub gps_stop: Option<StopId>,
    /// The stop requests get now, and how it is known.
    pub stop: Option<StopId>,
    pub stop_name: Option<String>,
    pub stop_source: Option<StopSource>,
    pub manual: Option<ManualStop>,
    pub fix: Option<GpsFix>,
    /// The system clock minus GPS time at the last fix, in ms.
    pub clock_skew_ms: Option<i64>,
    pub clock_skew_warning: bool,
    pub health: GpsHealth,
    /// Fixes refused as jumps since the start, and the last one.
    pub jumps: u64,
    pub last_jump: Option<JumpSeen>,
    pub stops_known: usize,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct JumpSeen {
    pub distance_m: f64,
    pub seconds: f64,
    pub at: DateTime<Utc>,
}

/// Staff asked for a stop the schedule does not have.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("there is no stop `{0}` in the stop schedule")]
pub struct UnknownStop(pub StopId);

pub struct PositionService {
    source: Arc<dyn PositionSource>,
    configured: Option<StopId>,
    events: Events,
    inner: Mutex<Inner>,
}

struct Inner {
    tracker: Tracker,
    schedule: Arc<StopSchedule>,
    manual: Option<ManualStop>,
    /// The last fix taken, as received.
    fix: Option<GpsFix>,
    last_jump: Option<JumpSeen>,
    skew_warned: bool,
    thinner: Thinner,
    /// The last fix seen, taken or refused: its time and position.
    last_seen: Option<(DateTime<Utc>, f64, f64)>,
    /// Trip log entries not yet in the store.
    trip: Vec<TripEntry>,
}

impl PositionService {
    pub fn new(
        source: Arc<dyn PositionSource>,
        configured: Option<StopId>,
        events: Events,
    ) -> PositionService {
        PositionService {
            source,
            configured,
            events,
            inner: Mutex::new(Inner {
                tracker: Tracker::new(),
                schedule: Arc::new(StopSchedule::default()),
                manual: None,
                fix: None,
                last_jump: None,
                skew_warned: false,
                thinner: Thinner::new(),
                last_seen: None,
                trip: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Held only to read or change the state, never across an `.await`.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn schedule(&self) -> Arc<StopSchedule> {
        self.lock().schedule.clone()
    }

    /// Takes the hub's stop schedule (synced file `stops`). One that does not parse changes
    /// nothing and is logged.
    pub fn take_schedule_file(&self, bytes: &[u8]) {
        match StopSchedule::parse(&String::from_utf8_lossy(bytes)) {
            Ok(schedule) => {
                tracing::info!(stops = schedule.stops.len(), "stop schedule taken");
                self.lock().schedule = Arc::new(schedule);
                self.events.send(NodeEvent::Device);
            }
            Err(error) => {
                tracing::error!(
                    "the hub's stop schedule is not valid; keeping the one in use: {error}"
                );
            }
        }
    }

    /// Sets the stop by hand (`Some(stop)`, or `None` for "at no stop"), or clears what was set
    /// (`clear`). Recorded as such in every request made meanwhile.
    pub fn set_manual(
        &self,
        stop: Option<StopId>,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<(), UnknownStop> {
        let mut inner = self.lock();
        if let Some(stop) = &stop
            && inner.schedule.get(stop).is_none()
            && self.configured.as_ref() != Some(stop)
        {
            return Err(UnknownStop(stop.clone()));
        }
        tracing::info!(stop = ?stop.as_ref().map(StopId::as_str), by, "stop set by hand");
        let position = last_position(&inner);
        if let Some(ManualStop {
            stop: Some(before), ..
        }) = &inner.manual
        {
            let before = before.clone();
            inner.trip.push(TripEntry {
                at: now,
                event: TripEvent::Departed {
                    stop: before,
                    position,
                },
            });
        }
        if let Some(stop) = &stop {
            inner.trip.push(TripEntry {
                at: now,
                event: TripEvent::Arrived {
                    stop: stop.clone(),
                    source: StopSource::Staff,
                    position,
                },
            });
        }
        inner.manual = Some(ManualStop {
            stop,
            by: by.to_owned(),
            at: now,
        });
        drop(inner);
        self.events.send(NodeEvent::Device);
        Ok(())
    }

    pub fn clear_manual(&self, by: &str) {
        let mut inner = self.lock();
        let cleared = inner.manual.take();
        if let Some(ManualStop {
            stop: Some(stop), ..
        }) = &cleared
        {
            let position = last_position(&inner);
            inner.trip.push(TripEntry {
                at: Utc::now(),
                event: TripEvent::Departed {
                    stop: stop.clone(),
                    position,
                },
            });
        }
        drop(inner);
        if cleared.is_some() {
            tracing::info!(by, "stop set by hand cleared; back to the GPS");
            self.events.send(NodeEvent::Device);
        }
    }

    /// What a request made `now` is stamped with.
    pub fn here(&self, now: DateTime<Utc>) -> Here {
        let mut inner = self.lock();
        expire_manual(&mut inner, now);
        let (stop, stop_source) = effective_stop(&inner, self.configured.as_ref());
        let fix = current_fix(&inner);
        Here {
            stop,
            whereabouts: Whereabouts {
                stop_source,
                fix: fix.map(|fix| Fix {
                    latitude: fix.latitude,
                    longitude: fix.longitude,
                    at: fix.at,
                    speed_mps: fix.speed_mps,
                }),
                clock_skew_ms: fix.map(skew_ms),
            },
        }
    }

    pub fn status(&self, now: DateTime<Utc>) -> PositionStatus {
        let mut inner = self.lock();
        expire_manual(&mut inner, now);
        let (stop, stop_source) = effective_stop(&inner, self.configured.as_ref());
        let fix = current_fix(&inner).cloned();
        let skew = fix.as_ref().map(skew_ms);
        PositionStatus {
            location: match inner.tracker.location() {
                Location::Unknown => "unknown",
                Location::Driving => "driving",
                Location::AtStop(_) => "at-stop",
            },
            gps_stop: match inner.tracker.location() {
                Location::AtStop(stop) => Some(stop.clone()),
                _ => None,
            },
            stop_name: stop
                .as_ref()
                .and_then(|stop| inner.schedule.get(stop))
                .map(|stop| stop.name.clone()),
            stop,
            stop_source,
            manual: inner.manual.clone(),
            fix,
            clock_skew_ms: skew,
            clock_skew_warning: skew.is_some_and(skew_is_large),
            health: self.source.health(),
            jumps: inner.tracker.jumps(),
            last_jump: inner.last_jump,
            stops_known: inner.schedule.stops.len(),
        }
    }

    /// Follows the receiver until shutdown: every new state goes to the tracker, and while
    /// there is no fix the tracker hears so every few seconds.
    pub async fn run(self: Arc<Self>, shutdown: Shutdown, store: Arc<Store>) {
        let mut receiver = self.source.subscribe();
        let mut tick = tokio::time::interval(NO_FIX_TICK);
        loop {
            let state = tokio::select! {
                () = shutdown.cancelled() => return,
                changed = receiver.changed() => {
                    if changed.is_err() {
                        tracing::warn!("the GPS source stopped; the position stays unknown");
                        return;
                    }
                    receiver.borrow_and_update().clone()
                }
                _ = tick.tick() => self.source.current(),
            };
            self.observe(state, Utc::now());
            self.write_trip(&store).await;
        }
    }

    /// Writes the trip log entries made since the last call to the store; on failure they
    /// stay here for the next call.
    async fn write_trip(&self, store: &Arc<Store>) {
        let entries = std::mem::take(&mut self.lock().trip);
        if entries.is_empty() {
            return;
        }
        let store = store.clone();
        let written = tokio::task::spawn_blocking(move || {
            let result = store.append_trip(&entries);
            (entries, result)
        })
        .await;
        match written {
            Ok((_, Ok(_))) => {}
            Ok((entries, Err(error))) => {
                tracing::error!(
                    "the trip log could not be written; kept for the next try: {error}"
                );
                let mut inner = self.lock();
                let newer = std::mem::replace(&mut inner.trip, entries);
                inner.trip.extend(newer);
            }
            Err(error) => tracing::error!("the trip log writer failed: {error}"),
        }
    }

    /// The trip log entries not yet written (for tests that drive the service by hand).
    pub fn take_trip(&self) -> Vec<TripEntry> {
        std::mem::take(&mut self.lock().trip)
    }

    /// Takes one state of the receiver (public for tests that drive the tracker by hand).
    pub fn observe(&self, state: GpsState, now: DateTime<Utc>) {
        let mut inner = self.lock();
        let outcome = match state {
            GpsState::NoFix => inner.tracker.no_fix(now),
            GpsState::Fix(fix) => {
                let seen = (fix.at, fix.latitude, fix.longitude);
                if inner.last_seen == Some(seen) {
                    // The same fix again, taken or refused (the no-fix tick reads the current
                    // state too; gpsd may report one sample twice, 2D then 3D).
                    return;
                }
                inner.last_seen = Some(seen);
                let schedule = inner.schedule.clone();
                let outcome = inner.tracker.fix_at(
                    &schedule,
                    Sample {
                        position: Position {
                            latitude: fix.latitude,
                            longitude: fix.longitude,
                        },
                        speed_mps: fix.speed_mps,
                        at: fix.at,
                    },
                    now,
                );
                let large = skew_is_large(skew_ms(&fix));
                if outcome.jump.is_none() && large != inner.skew_warned {
                    inner.skew_warned = large;
                    if large {
                        tracing::warn!(
                            skew_ms = skew_ms(&fix),
                            "the system clock is far from GPS time; request times may be wrong"
                        );
                    } else {
                        tracing::info!("the system clock agrees with GPS time again");
                    }
                }
                if outcome.jump.is_none() {
                    inner.fix = Some(fix);
                }
                outcome
            }
        };
        record_trip(&mut inner, &outcome, now);
        if let Some(Jump {
            distance_m,
            seconds,
        }) = outcome.jump
        {
            tracing::warn!(
                distance_m = distance_m.round(),
                seconds,
                "a GPS fix jumped; refused"
            );
            inner.last_jump = Some(JumpSeen {
                distance_m,
                seconds,
                at: now,
            });
        }
        if outcome.reanchored {
            tracing::warn!("refused GPS fixes agreed with one another; the position follows them");
        }
        if let Some((from, to)) = &outcome.moved {
            tracing::info!(from = ?from, to = ?to, "location changed");
        }
        let changed = outcome.moved.is_some() || outcome.jump.is_some();
        drop(inner);
        if changed {
            self.events.send(NodeEvent::Device);
        }
    }
}

/// The trip log's side of a reading: arrivals and departures, a lost fix, a refused jump, and
/// the points of the route while the bus is not at a stop (a bus standing at a stop adds its
/// noise to nothing).
fn record_trip(inner: &mut Inner, outcome: &tracker::Outcome, now: DateTime<Utc>) {
    if let Some(jump) = &outcome.jump {
        inner.trip.push(TripEntry {
            at: now,
            event: TripEvent::Jump {
                distance_m: jump.distance_m,
            },
        });
        return;
    }
    if outcome.reanchored {
        inner.thinner.gap();
    }
    let fix = inner
        .tracker
        .last_fix()
        .copied()
        .filter(|_| *inner.tracker.location() != Location::Unknown);
    let position = fix.map(|fix| fix.position);
    let at = fix.map_or(now, |fix| fix.at);
    match &outcome.moved {
        Some((from, to)) => {
            if let Location::AtStop(stop) = from {
                inner.trip.push(TripEntry {
                    at,
                    event: TripEvent::Departed {
                        stop: stop.clone(),
                        position,
                    },
                });
            }
            match to {
                Location::AtStop(stop) => inner.trip.push(TripEntry {
                    at,
                    event: TripEvent::Arrived {
                        stop: stop.clone(),
                        source: StopSource::Gps,
                        position,
                    },
                }),
                Location::Unknown => {
                    inner.thinner.gap();
                    inner.trip.push(TripEntry {
                        at: now,
                        event: TripEvent::FixLost,
                    });
                }
                Location::Driving => {}
            }
            if let Some(fix) = fix {
                inner.thinner.force(fix.position, fix.at);
            }
        }
        None => {
            if let (Some(fix), Location::Driving) = (fix, inner.tracker.location())
                && let Some(point) = inner.thinner.next(fix.position, fix.at)
            {
                inner.trip.push(TripEntry {
                    at: point.at,
                    event: TripEvent::Point {
                        position: point.position,
                        speed_mps: (point.at == fix.at).then_some(fix.speed_mps).flatten(),
                    },
                });
            }
        }
    }
}

/// The last fix taken, while the tracker stands by it (not lost for its grace period).
fn current_fix(inner: &Inner) -> Option<&GpsFix> {
    inner
        .fix
        .as_ref()
        .filter(|_| *inner.tracker.location() != Location::Unknown)
}

fn last_position(inner: &Inner) -> Option<Position> {
    inner.tracker.last_fix().map(|fix| fix.position)
}

fn skew_ms(fix: &GpsFix) -> i64 {
    (fix.received_at - fix.at).num_milliseconds()
}

fn skew_is_large(skew_ms: i64) -> bool {
    skew_ms.abs() > SKEW_WARNING.num_milliseconds()
}

/// A stop set by hand holds for the day it was set (local time): one forgotten does not stamp
/// tomorrow's requests.
fn expire_manual(inner: &mut Inner, now: DateTime<Utc>) {
    let day = |at: DateTime<Utc>| -> NaiveDate { at.with_timezone(&Local).date_naive() };
    if inner
        .manual
        .as_ref()
        .is_some_and(|manual| day(manual.at) != day(now))
    {
        tracing::info!("the stop set by hand yesterday no longer holds");
        inner.manual = None;
    }
}

fn effective_stop(
    inner: &Inner,
    configured: Option<&StopId>,
) -> (Option<StopId>, Option<StopSource>) {
    if let Some(manual) = &inner.manual {
        return (
            manual.stop.clone(),
            manual.stop.as_ref().map(|_| StopSource::Staff),
        );
    }
    let configured = (
        configured.cloned(),
        configured.map(|_| StopSource::Configured),
    );
    match inner.tracker.location() {
        _ if inner.schedule.stops.is_empty() => configured,
        Location::AtStop(stop) => (Some(stop.clone()), Some(StopSource::Gps)),
        Location::Driving => (None, None),
        Location::Unknown => configured,
    }
}

#[cfg(test)]
mod tests {
    use busloket_hardware::FixMode;
    use tokio::sync::watch;

    use super::*;

    /// A receiver the test does not drive: the service is fed through `observe`.
    struct Quiet(watch::Sender<GpsState>);

    impl PositionSource for Quiet {
        fn current(&self) -> GpsState {
            self.0.borrow().clone()
        }
        fn subscribe(&self) -> watch::Receiver<GpsState> {
            self.0.subscribe()
        }
        fn health(&self) -> GpsHealth {
            GpsHealth::simulated()
        }
    }

    const SCHEDULE: &str = "[[stop]]\nid = \"markt\"\nname = \"Markt\"\nlatitude = 51.05434\nlongitude = 3.71742\nradius_m = 60\n";

    fn service(configured: Option<&str>) -> PositionService {
        let service = PositionService::new(
            Arc::new(Quiet(watch::Sender::new(GpsState::NoFix))),
            configured.map(|stop| stop.parse().unwrap()),
            Events::new(),
        );
        service.take_schedule_file(SCHEDULE.as_bytes());
        service
    }

    fn at(second: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_763_900_000 + second, 0).unwrap()
    }

    /// A fix `north_m` metres north of the Markt, received `skew_s` seconds after its GPS time.
    fn fix(north_m: f64, second: i64, skew_s: i64) -> GpsState {
        GpsState::Fix(GpsFix {
            latitude: 51.05434 + north_m / 111_195.0,
            longitude: 3.71742,
            speed_mps: Some(0.0),
            mode: FixMode::ThreeD,
            at: at(second),
            received_at: at(second + skew_s),
        })
    }

    fn markt() -> Option<StopId> {
        Some("markt".parse().unwrap())
    }

    #[test]
    fn requests_get_the_stop_the_fixes_say_with_the_fix_and_the_skew() {
        let service = service(None);
        assert_eq!(service.here(at(0)).stop, None);
        for second in 0..3 {
            service.observe(fix(5.0, second, 0), at(second));
        }
        let here = service.here(at(3));
        assert_eq!(here.stop, markt());
        assert_eq!(here.whereabouts.stop_source, Some(StopSource::Gps));
        let kept = here.whereabouts.fix.unwrap();
        assert_eq!(kept.at, at(2));
        assert!((kept.latitude - 51.05438).abs() < 0.00001);
        assert_eq!(here.whereabouts.clock_skew_ms, Some(0));
        let status = service.status(at(3));
        assert_eq!(status.location, "at-stop");
        assert_eq!(status.stop_name.as_deref(), Some("Markt"));
        assert!(!status.clock_skew_warning);

        // The system clock runs 2 minutes ahead of GPS time: shown and recorded.
        service.observe(fix(5.0, 3, 120), at(123));
        assert!(service.status(at(123)).clock_skew_warning);
        assert_eq!(
            service.here(at(123)).whereabouts.clock_skew_ms,
            Some(120_000)
        );
    }

    #[test]
    fn staff_set_the_stop_by_hand_until_they_clear_it() {
        let service = service(None);
        assert_eq!(
            service.set_manual(Some("nowhere".parse().unwrap()), "staff:an", at(0)),
            Err(UnknownStop("nowhere".parse().unwrap()))
        );
        service.set_manual(markt(), "staff:an", at(0)).unwrap();
        let here = service.here(at(1));
        assert_eq!(here.stop, markt());
        assert_eq!(here.whereabouts.stop_source, Some(StopSource::Staff));
        // "At no stop" by hand: no stop, and no source.
        service.set_manual(None, "staff:an", at(2)).unwrap();
        assert_eq!(service.here(at(2)).stop, None);
        service.clear_manual("staff:an");
        assert_eq!(service.status(at(3)).manual, None);
        // Set by hand yesterday: no longer holds.
        service.set_manual(markt(), "staff:an", at(0)).unwrap();
        let tomorrow = at(0) + TimeDelta::days(1);
        assert_eq!(service.here(tomorrow).whereabouts.stop_source, None);
    }

    #[test]
    fn a_configured_stop_holds_only_while_the_fixes_say_nothing() {
        let service = service(Some("markt"));
        let here = service.here(at(0));
        assert_eq!(here.stop, markt());
        assert_eq!(here.whereabouts.stop_source, Some(StopSource::Configured));
        assert_eq!(here.whereabouts.fix, None);
        // Driving, 2 km away.
        service.observe(fix(2_000.0, 0, 0), at(0));
        assert_eq!(service.here(at(0)).stop, None);
        // Without a schedule the fixes cannot name a stop: the configured one holds.
        let unscheduled = PositionService::new(
            Arc::new(Quiet(watch::Sender::new(GpsState::NoFix))),
            markt(),
            Events::new(),
        );
        unscheduled.observe(fix(2_000.0, 0, 0), at(0));
        assert_eq!(unscheduled.here(at(0)).stop, markt());
    }

    #[test]
    fn a_bad_schedule_from_the_hub_keeps_the_one_in_use() {
        let service = service(None);
        service.take_schedule_file(b"[[stop]]\nid = 3\n");
        assert_eq!(service.schedule().stops.len(), 1);
    }

    #[test]
    fn the_trip_log_holds_arrivals_departures_the_route_and_gaps() {
        let service = service(None);
        for second in 0..5 {
            service.observe(fix(5.0, second, 0), at(second));
        }
        // 2 km north at 10 m/s, then the fix is lost for 40 s.
        for second in 5..205 {
            service.observe(fix(5.0 + 10.0 * (second - 4) as f64, second, 0), at(second));
        }
        service.observe(GpsState::NoFix, at(210));
        service.observe(GpsState::NoFix, at(245));
        let trip = service.take_trip();
        let kinds: Vec<&str> = trip
            .iter()
            .map(|entry| match &entry.event {
                TripEvent::Point { .. } => "point",
                TripEvent::Arrived { .. } => "arrived",
                TripEvent::Departed { .. } => "departed",
                TripEvent::FixLost => "fix-lost",
                TripEvent::Jump { .. } => "jump",
            })
            .collect();
        assert_eq!(kinds.first(), Some(&"arrived"), "{kinds:?}");
        assert_eq!(kinds[1], "departed", "{kinds:?}");
        assert_eq!(kinds.last(), Some(&"fix-lost"), "{kinds:?}");
        let points = kinds.iter().filter(|kind| **kind == "point").count();
        assert!((6..=9).contains(&points), "{kinds:?}");
        let length = busloket_sync::trip::route_length_m(&trip);
        assert!((1_800.0..=2_000.0).contains(&length), "{length}");
        assert!(service.take_trip().is_empty());

        // Staff set the stop by hand and clear it: recorded as such.
        service.set_manual(markt(), "staff:an", at(250)).unwrap();
        service.clear_manual("staff:an");
        let trip = service.take_trip();
        assert!(matches!(
            &trip[0].event,
            TripEvent::Arrived {
                source: StopSource::Staff,
                ..
            }
        ));
        assert!(matches!(&trip[1].event, TripEvent::Departed { .. }));
    }

    #[test]
    fn a_jump_is_refused_and_counted() {
        let service = service(None);
        for second in 0..3 {
            service.observe(fix(5.0, second, 0), at(second));
        }
        service.observe(fix(50_000.0, 3, 0), at(3));
        // The same refused fix again (gpsd's 2D then 3D report of one sample): counted once.
        service.observe(fix(50_000.0, 3, 0), at(3));
        let status = service.status(at(3));
        assert_eq!(status.jumps, 1);
        assert!(status.last_jump.unwrap().distance_m > 49_000.0);
        assert_eq!(status.stop, markt());
        assert_eq!(status.fix.unwrap().at, at(2));
    }
}
