//! Where the bus is: [`GpsFix`], [`GpsState`], the [`PositionSource`] trait the node holds as
//! `Arc<dyn PositionSource>`, and its implementations: [`GpsdSource`] (a real receiver through
//! gpsd) and [`SimGps`] (parked at a stop, or driving a [`Route`]).
//!
//! - [`route`]: a simulated route (waypoints, speeds, stops, a tunnel, a noisy fix), pure.
//! - [`nmea`]: NMEA sentences (GPRMC + GPGGA) written from samples or from a route, for gpsfake
//!   logs in tests and the demo.
//! - `gpsfake` (feature `test-support`): runs gpsfake with its own gpsd for the tests.
//!
//! Positions only. This module must not know about stops, requests or tagging; the node decides
//! what a position means (a "dwell" in a [`Route`] is a place the simulated bus stands still,
//! not a stop of the schedule).

mod gpsd;
#[cfg(feature = "test-support")]
pub mod gpsfake;
pub mod nmea;
pub mod route;
mod sim;

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

pub use gpsd::{DEFAULT_GPSD_PORT, GpsdOptions, GpsdSource};
pub use route::Route;
pub use sim::SimGps;

/// One position from the receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpsFix {
    /// Degrees north (WGS 84).
    pub latitude: f64,
    /// Degrees east (WGS 84).
    pub longitude: f64,
    /// Metres per second, when the receiver reports it.
    pub speed_mps: Option<f64>,
    /// A fix with or without altitude.
    pub mode: FixMode,
    /// When the receiver computed the fix, by the receiver's (GPS) clock.
    pub at: DateTime<Utc>,
    /// When this machine received the report, by its system clock (a simulator: by its clock).
    /// Far from `at`, one of the two clocks is wrong.
    pub received_at: DateTime<Utc>,
}

/// How good a fix is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FixMode {
    /// Latitude and longitude only.
    #[serde(rename = "2d")]
    TwoD,
    /// With altitude (four or more satellites).
    #[serde(rename = "3d")]
    ThreeD,
}

/// Whether the receiver knows where it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum GpsState {
    NoFix,
    Fix(GpsFix),
}

/// How the link to the receiver is doing, for the staff console and the logs. Without a fix,
/// this says whether the sky or the equipment is to blame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpsHealth {
    pub link: GpsLink,
    /// Lines from gpsd that could not be read and were skipped since the source started.
    pub skipped_lines: u64,
}

/// The state of the link to the receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "link", rename_all = "kebab-case")]
pub enum GpsLink {
    /// A simulator: always fine.
    Simulated,
    /// Not connected yet.
    Connecting { address: String },
    /// Watching gpsd's reports.
    Connected { address: String },
    /// Connected, but no position report came for `seconds`: the receiver is unplugged or
    /// silent. The state is no fix.
    Silent { address: String, seconds: u64 },
    /// gpsd cannot be reached or went away; retried. The state is no fix.
    Unreachable { address: String, reason: String },
}

impl GpsHealth {
    /// A simulator's health.
    pub fn simulated() -> GpsHealth {
        GpsHealth {
            link: GpsLink::Simulated,
            skipped_lines: 0,
        }
    }

    /// Whether the receiver can deliver fixes (whether it has one is [`GpsState`]'s business).
    pub fn is_ok(&self) -> bool {
        matches!(self.link, GpsLink::Simulated | GpsLink::Connected { .. })
    }
}

impl fmt::Display for GpsHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.link {
            GpsLink::Simulated => write!(f, "simulated receiver")?,
            GpsLink::Connecting { address } => write!(f, "connecting to gpsd at {address}")?,
            GpsLink::Connected { address } => write!(f, "gpsd at {address}")?,
            GpsLink::Silent { address, seconds } => write!(
                f,
                "no position report from gpsd at {address} for {seconds} s"
            )?,
            GpsLink::Unreachable { address, reason } => {
                write!(f, "gpsd at {address} not reachable: {reason}")?
            }
        }
        if self.skipped_lines > 0 {
            write!(f, " ({} unreadable lines skipped)", self.skipped_lines)?;
        }
        Ok(())
    }
}

/// A source of positions.
pub trait PositionSource: Send + Sync + 'static {
    /// The position now.
    fn current(&self) -> GpsState;
    /// Follows the position as it changes.
    fn subscribe(&self) -> watch::Receiver<GpsState>;
    /// How the link to the receiver is doing.
    fn health(&self) -> GpsHealth;
}

/// The clock a simulated receiver stamps its fixes with.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;
