//! The bus's trip log: the day's route thinned to what matters (where it turned, every few
//! hundred metres) and its arrivals at and departures from stops, for the city's indicators
//! (the bus's own kilometres, the stops it served). Positions of the bus only: no citizen's data.
//!
//! [`Thinner`] decides which fixes the log keeps. The bus's store keeps the entries
//! (`Store::append_trip`) until the hub has them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::record::StopSource;
use crate::stops::Position;
use crate::terms::StopId;

/// One line of the trip log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TripEntry {
    /// The fix's GPS time for positions, arrivals and departures; the system's time for the
    /// rest.
    pub at: DateTime<Utc>,
    pub event: TripEvent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TripEvent {
    /// A point of the route.
    Point {
        position: Position,
        speed_mps: Option<f64>,
    },
    /// The bus stands at a stop (by its fixes, or as staff set it by hand).
    Arrived {
        stop: StopId,
        source: StopSource,
        position: Option<Position>,
    },
    /// It left the stop.
    Departed {
        stop: StopId,
        position: Option<Position>,
    },
    /// No fix for the grace period: the route has a gap until the next point.
    FixLost,
    /// A fix that jumped this far was refused.
    Jump { distance_m: f64 },
}

/// Below this a point adds nothing a straight line would not show.
const MIN_STEP_M: f64 = 30.0;
/// A straight road gets a point this often.
const STRAIGHT_STEP_M: f64 = 250.0;
/// A turn sharper than this keeps the point where it happened.
const TURN_DEGREES: f64 = 35.0;
/// A slow crawl gets a point at least this often.
const MAX_GAP_SECONDS: i64 = 300;

/// Decides which fixes the trip log keeps: the first, then every [`STRAIGHT_STEP_M`], the
/// corner where the road turns by more than [`TURN_DEGREES`], and a point every
/// [`MAX_GAP_SECONDS`] while moving. A bus standing still adds nothing (its arrival says where it
/// stands). The route along the kept points stays within a few per cent of the one driven.
#[derive(Debug, Clone, Default)]
pub struct Thinner {
    kept: Option<Fixed>,
    /// The last fix seen, kept or not: the corner when the next one turns.
    previous: Option<Fixed>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fixed {
    pub position: Position,
    pub at: DateTime<Utc>,
}

/// Consecutive fixes closer than this say too little about the direction (noise).
const MIN_HEADING_STEP_M: f64 = 8.0;

impl Thinner {
    pub fn new() -> Thinner {
        Thinner::default()
    }

    /// Takes the fix at `position`, taken `at`; the point the log keeps because of it, if any:
    /// this fix, or the one before it when the road turned there.
    pub fn next(&mut self, position: Position, at: DateTime<Utc>) -> Option<Fixed> {
        let fix = Fixed { position, at };
        let previous = self.previous.replace(fix);
        let Some(kept) = self.kept else {
            self.kept = Some(fix);
            return Some(fix);
        };
        if let Some(corner) = previous
            && kept.position.distance_m(&corner.position) >= MIN_STEP_M
            && corner.position.distance_m(&position) >= MIN_HEADING_STEP_M
        {
            let stretch = bearing_degrees(&kept.position, &corner.position);
            let heading = bearing_degrees(&corner.position, &position);
            if angle_between(stretch, heading) > TURN_DEGREES {
                self.kept = Some(corner);
                return Some(corner);
            }
        }
        let step = kept.position.distance_m(&position);
        if step >= STRAIGHT_STEP_M
            || (step >= MIN_STEP_M && (at - kept.at).num_seconds() >= MAX_GAP_SECONDS)
        {
            self.kept = Some(fix);
            return Some(fix);
        }
        None
    }

    /// Keeps the fix whatever it is (an arrival or a departure is a point of the route too).
    pub fn force(&mut self, position: Position, at: DateTime<Utc>) {
        let fix = Fixed { position, at };
        self.kept = Some(fix);
        self.previous = Some(fix);
    }

    /// Forgets the last points: after a gap the next fix starts a new stretch.
    pub fn gap(&mut self) {
        self.kept = None;
        self.previous = None;
    }
}

/// The initial bearing from `a` to `b`, in degrees from north, 0 to 360.
fn bearing_degrees(a: &Position, b: &Position) -> f64 {
    let (lat1, lat2) = (a.latitude.to_radians(), b.latitude.to_radians());
    let dlon = (b.longitude - a.longitude).to_radians();
    let y = dlon.sin() * lat2.cos();
    let x = lat1.cos() * lat2.sin() - lat1.sin() * lat2.cos() * dlon.cos();
    (y.atan2(x).to_degrees() + 360.0) % 360.0
}

fn angle_between(a: f64, b: f64) -> f64 {
    let difference = (a - b).abs() % 360.0;
    difference.min(360.0 - difference)
}

/// The length of a route through `points`, in metres; a [`TripEvent::FixLost`] between two
/// points is bridged in a straight line (the bus drove it, the receiver did not see it).
pub fn route_length_m(entries: &[TripEntry]) -> f64 {
    let mut length = 0.0;
    let mut last: Option<Position> = None;
    for entry in entries {
        let position = match &entry.event {
            TripEvent::Point { position, .. } => Some(*position),
            TripEvent::Arrived { position, .. } | TripEvent::Departed { position, .. } => *position,
            TripEvent::FixLost | TripEvent::Jump { .. } => None,
        };
        if let Some(position) = position {
            if let Some(previous) = last {
                length += previous.distance_m(&position);
            }
            last = Some(position);
        }
    }
    length
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: Position = Position {
        latitude: 50.8279,
        longitude: 3.2649,
    };

    /// `north` and `east` metres from the start.
    fn offset(north: f64, east: f64) -> Position {
        Position {
            latitude: START.latitude + north / 111_195.0,
            longitude: START.longitude + east / (111_195.0 * START.latitude.to_radians().cos()),
        }
    }

    fn at(second: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_763_900_000 + second, 0).unwrap()
    }

    #[test]
    fn a_straight_road_keeps_a_point_every_250_m_and_a_turn_keeps_its_corner() {
        let mut thinner = Thinner::new();
        let mut kept = Vec::new();
        // 1 050 m north at 10 m/s, one fix a second, then 500 m east.
        let route = (0..=105)
            .map(|s| offset(10.0 * f64::from(s), 0.0))
            .chain((1..=50).map(|s| offset(1050.0, 10.0 * f64::from(s))));
        for (second, position) in route.enumerate() {
            if let Some(point) = thinner.next(position, at(second as i64)) {
                kept.push(point.position);
            }
        }
        let corner = offset(1050.0, 0.0);
        assert!(
            kept.iter().any(|point| point.distance_m(&corner) < 1.0),
            "the corner is kept: {kept:?}"
        );
        assert!((6..=8).contains(&kept.len()), "{} points", kept.len());
        let entries: Vec<TripEntry> = kept
            .iter()
            .map(|position| TripEntry {
                at: at(0),
                event: TripEvent::Point {
                    position: *position,
                    speed_mps: None,
                },
            })
            .collect();
        let length = route_length_m(&entries);
        // Driven: 1 550 m; the log misses at most the stretch after its last point.
        assert!((1_300.0..=1_560.0).contains(&length), "{length}");
    }

    #[test]
    fn standing_still_adds_nothing_and_a_crawl_adds_a_point_every_five_minutes() {
        let mut thinner = Thinner::new();
        assert!(thinner.next(START, at(0)).is_some());
        for second in 1..600 {
            // Noise of a few metres at a stop.
            let jitter = offset((second % 5) as f64, 0.0);
            assert_eq!(thinner.next(jitter, at(second)), None);
        }
        // 40 m later, after ten minutes: kept.
        assert!(thinner.next(offset(40.0, 0.0), at(600)).is_some());
    }

    #[test]
    fn bearings_and_angles() {
        let north = bearing_degrees(&START, &offset(100.0, 0.0));
        let east = bearing_degrees(&START, &offset(0.0, 100.0));
        assert!(angle_between(north, 0.0) < 0.5, "{north}");
        assert!((east - 90.0).abs() < 0.5, "{east}");
        assert_eq!(angle_between(350.0, 10.0), 20.0);
        assert_eq!(angle_between(90.0, 270.0), 180.0);
    }

    #[test]
    fn the_route_length_bridges_a_lost_fix_and_counts_arrivals() {
        let point = |north: f64| TripEntry {
            at: at(0),
            event: TripEvent::Point {
                position: offset(north, 0.0),
                speed_mps: Some(8.0),
            },
        };
        let entries = vec![
            point(0.0),
            TripEntry {
                at: at(1),
                event: TripEvent::FixLost,
            },
            point(300.0),
            TripEntry {
                at: at(2),
                event: TripEvent::Arrived {
                    stop: "demo-markt".parse().unwrap(),
                    source: StopSource::Gps,
                    position: Some(offset(400.0, 0.0)),
                },
            },
        ];
        assert!((route_length_m(&entries) - 400.0).abs() < 1.0);
    }
}
