//! [`SimGps`]: a simulated receiver, parked at a place or driving a [`Route`] in a loop, with
//! the time of its clock. Its health is always fine.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::route::{Route, RouteState};
use super::{Clock, FixMode, GpsFix, GpsHealth, GpsState, PositionSource};

/// A simulated receiver. Like a real one, it keeps delivering fresh fixes: parked, the position
/// is the one last set and [`PositionSource::current`] stamps it with the clock's time now;
/// driving, the position is the route's at the clock's time now. Subscribers see each new state
/// once: parked, when it is set; driving, at every tick.
pub struct SimGps {
    clock: Clock,
    shared: Arc<Shared>,
    /// Dropped with the simulator: the ticker, waiting for its next tick, hears it at once.
    _stop: Option<mpsc::Sender<()>>,
}

/// What the simulator and its ticker share.
struct Shared {
    // A std mutex: held only to read or replace the mode, never across an await.
    mode: Mutex<Mode>,
    state: watch::Sender<GpsState>,
}

enum Mode {
    Parked,
    Driving {
        route: Route,
        started: DateTime<Utc>,
    },
}

impl SimGps {
    /// Parked at a stop, with the system clock.
    pub fn fixed(latitude: f64, longitude: f64) -> SimGps {
        SimGps::fixed_with_clock(latitude, longitude, Arc::new(Utc::now))
    }

    /// Parked at a stop, with the given clock.
    pub fn fixed_with_clock(latitude: f64, longitude: f64, clock: Clock) -> SimGps {
        let now = clock();
        let fix = GpsFix {
            latitude,
            longitude,
            speed_mps: Some(0.0),
            mode: FixMode::ThreeD,
            at: now,
            received_at: now,
        };
        SimGps::parked(GpsState::Fix(fix), clock)
    }

    /// No fix (in a garage, a tunnel, or no receiver at all), with the system clock.
    pub fn no_fix() -> SimGps {
        SimGps::no_fix_with_clock(Arc::new(Utc::now))
    }

    /// No fix, with the given clock (used once a position is set).
    pub fn no_fix_with_clock(clock: Clock) -> SimGps {
        SimGps::parked(GpsState::NoFix, clock)
    }

    /// Drives the route in a loop from now on, with the system clock; subscribers see a new
    /// state every second. Needs no runtime: a thread ticks, and ends with the simulator.
    pub fn driving(route: Route) -> std::io::Result<SimGps> {
        SimGps::driving_with_clock(route, Arc::new(Utc::now), Duration::from_secs(1))
    }

    /// Drives the route in a loop from the clock's time now; subscribers see the state of the
    /// clock's time every `tick` (of real time).
    pub fn driving_with_clock(
        route: Route,
        clock: Clock,
        tick: Duration,
    ) -> std::io::Result<SimGps> {
        let started = clock();
        let mut gps = SimGps::parked(GpsState::NoFix, clock);
        *gps.shared.lock_mode() = Mode::Driving { route, started };
        gps.shared.state.send_replace(gps.current());
        let shared = Arc::downgrade(&gps.shared);
        let clock = gps.clock.clone();
        let (stop, stopped) = mpsc::channel();
        std::thread::Builder::new()
            .name("sim-gps".into())
            .spawn(move || tick_along(&shared, &clock, tick, &stopped))?;
        gps._stop = Some(stop);
        Ok(gps)
    }

    fn parked(state: GpsState, clock: Clock) -> SimGps {
        SimGps {
            shared: Arc::new(Shared {
                mode: Mutex::new(Mode::Parked),
                state: watch::Sender::new(state),
            }),
            clock,
            _stop: None,
        }
    }

    /// Moves the simulated bus, or loses the fix; a driving bus parks there. The fix's times
    /// are replaced by the clock's.
    pub fn set(&self, state: GpsState) {
        *self.shared.lock_mode() = Mode::Parked;
        self.shared
            .state
            .send_replace(stamped(state, (self.clock)()));
    }
}

impl Shared {
    fn lock_mode(&self) -> std::sync::MutexGuard<'_, Mode> {
        self.mode
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The state at `now`: the route's when driving, the last set one when parked.
    fn state_at(&self, now: DateTime<Utc>) -> GpsState {
        match &*self.lock_mode() {
            Mode::Parked => stamped(self.state.borrow().clone(), now),
            Mode::Driving { route, started } => route_state(route, *started, now),
        }
    }
}

/// Publishes the route's state every tick while driving (a receiver's rate); ends as soon as
/// the simulator is dropped.
fn tick_along(shared: &Weak<Shared>, clock: &Clock, tick: Duration, stopped: &Receiver<()>) {
    loop {
        if stopped.recv_timeout(tick) != Err(RecvTimeoutError::Timeout) {
            return;
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let now = clock();
        let driving = matches!(*shared.lock_mode(), Mode::Driving { .. });
        if driving {
            let state = shared.state_at(now);
            shared.state.send_if_modified(|current| {
                let changed = *current != state;
                *current = state;
                changed
            });
        }
    }
}

/// The route's state at `now`, driven in a loop since `started`.
fn route_state(route: &Route, started: DateTime<Utc>, now: DateTime<Utc>) -> GpsState {
    let lap = route.duration();
    let elapsed = (now - started).to_std().unwrap_or_default();
    let into_lap = if lap.is_zero() {
        Duration::ZERO
    } else {
        Duration::from_nanos((elapsed.as_nanos() % lap.as_nanos()) as u64)
    };
    match route.state_at(into_lap) {
        RouteState::NoFix => GpsState::NoFix,
        RouteState::Fix {
            point,
            speed_mps,
            course_degrees: _,
        } => GpsState::Fix(GpsFix {
            latitude: point.latitude,
            longitude: point.longitude,
            speed_mps: Some(speed_mps),
            mode: FixMode::ThreeD,
            at: now,
            received_at: now,
        }),
    }
}

fn stamped(state: GpsState, now: DateTime<Utc>) -> GpsState {
    match state {
        GpsState::NoFix => GpsState::NoFix,
        GpsState::Fix(fix) => GpsState::Fix(GpsFix {
            at: now,
            received_at: now,
            ..fix
        }),
    }
}

impl PositionSource for SimGps {
    fn current(&self) -> GpsState {
        self.shared.state_at((self.clock)())
    }

    fn subscribe(&self) -> watch::Receiver<GpsState> {
        self.shared.state.subscribe()
    }

    fn health(&self) -> GpsHealth {
        GpsHealth::simulated()
    }
}
