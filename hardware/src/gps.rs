//! Where the bus is: [`GpsFix`], [`GpsState`], the [`PositionSource`] trait the node holds as
//! `Arc<dyn PositionSource>`, and [`SimGps`], a receiver parked at a fixed stop.
//!
//! Positions only. This module must not know about stops, requests or tagging; the node decides
//! what a position means. The gpsd driver comes later.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// One position from the receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpsFix {
    /// Degrees north (WGS 84).
    pub latitude: f64,
    /// Degrees east (WGS 84).
    pub longitude: f64,
    /// Metres per second, when the receiver reports it.
    pub speed_mps: Option<f64>,
    /// When the receiver computed the fix.
    pub at: DateTime<Utc>,
}

/// Whether the receiver knows where it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum GpsState {
    NoFix,
    Fix(GpsFix),
}

/// A source of positions.
pub trait PositionSource: Send + Sync + 'static {
    /// The position now.
    fn current(&self) -> GpsState;
    /// Follows the position as it changes.
    fn subscribe(&self) -> watch::Receiver<GpsState>;
}

/// The clock a simulated receiver stamps its fixes with.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// A simulated receiver. Like a real one standing still, it keeps delivering fresh fixes: the
/// position is the one last set, and [`PositionSource::current`] stamps it with the clock's time
/// now. Subscribers see each new state once, stamped when it was set.
pub struct SimGps {
    clock: Clock,
    state: watch::Sender<GpsState>,
}

impl SimGps {
    /// Parked at a stop, with the system clock.
    pub fn fixed(latitude: f64, longitude: f64) -> SimGps {
        SimGps::fixed_with_clock(latitude, longitude, Arc::new(Utc::now))
    }

    /// Parked at a stop, with the given clock.
    pub fn fixed_with_clock(latitude: f64, longitude: f64, clock: Clock) -> SimGps {
        let fix = GpsFix {
            latitude,
            longitude,
            speed_mps: Some(0.0),
            at: clock(),
        };
        SimGps {
            state: watch::Sender::new(GpsState::Fix(fix)),
            clock,
        }
    }

    /// No fix (in a garage, a tunnel, or no receiver at all), with the system clock.
    pub fn no_fix() -> SimGps {
        SimGps::no_fix_with_clock(Arc::new(Utc::now))
    }

    /// No fix, with the given clock (used once a position is set).
    pub fn no_fix_with_clock(clock: Clock) -> SimGps {
        SimGps {
            state: watch::Sender::new(GpsState::NoFix),
            clock,
        }
    }

    /// Moves the simulated bus, or loses the fix. The fix's time is replaced by the clock's.
    pub fn set(&self, state: GpsState) {
        self.state.send_replace(self.stamped(state));
    }

    fn stamped(&self, state: GpsState) -> GpsState {
        match state {
            GpsState::NoFix => GpsState::NoFix,
            GpsState::Fix(fix) => GpsState::Fix(GpsFix {
                at: (self.clock)(),
                ..fix
            }),
        }
    }
}

impl PositionSource for SimGps {
    fn current(&self) -> GpsState {
        let state = self.state.borrow().clone();
        self.stamped(state)
    }

    fn subscribe(&self) -> watch::Receiver<GpsState> {
        self.state.subscribe()
    }
}
