//! The bus's stops: where each one is, how far it reaches, and when the bus stands there. The
//! schedule is part of the hub's configuration (a TOML file) and reaches the buses as a synced
//! file; this module parses and checks it, and measures distances on the Earth.
//!
//! ```toml
//! [[stop]]
//! id = "markt"
//! name = "Markt"
//! latitude = 51.05434
//! longitude = 3.71742
//! radius_m = 60
//! visits = ["mon 09:00-12:00", "thu 13:30-16:00"]
//! ```
//!
//! Visits are in the city's local time (the bus's clock shows it). Two stops may not overlap, so
//! "inside a stop's radius" names at most one stop.

use std::fmt;

use chrono::{NaiveTime, Weekday};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::terms::StopId;

/// The mean radius of the Earth (IUGG), in metres.
const EARTH_RADIUS_M: f64 = 6_371_008.8;
/// The smallest radius a stop may have: a GPS fix is rarely better than 5–10 m.
pub const MIN_RADIUS_M: f64 = 15.0;
/// The largest: beyond it "at the stop" would swallow the streets around it.
pub const MAX_RADIUS_M: f64 = 500.0;

/// A point on the Earth (WGS 84), in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub latitude: f64,
    pub longitude: f64,
}

impl Position {
    /// The great-circle distance to `other`, in metres (haversine; under 0.5 % off the
    /// ellipsoid, far below a GPS fix's error at the distances of a city).
    pub fn distance_m(&self, other: &Position) -> f64 {
        let (lat1, lat2) = (self.latitude.to_radians(), other.latitude.to_radians());
        let dlat = lat2 - lat1;
        let dlon = (other.longitude - self.longitude).to_radians();
        let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
    }

    /// Whether both numbers are finite and on the Earth.
    pub fn is_valid(&self) -> bool {
        self.latitude.is_finite()
            && self.longitude.is_finite()
            && (-90.0..=90.0).contains(&self.latitude)
            && (-180.0..=180.0).contains(&self.longitude)
    }
}

/// When the bus stands at a stop: a weekday and a span of local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visit {
    pub day: Weekday,
    pub from: NaiveTime,
    pub until: NaiveTime,
}

impl Visit {
    /// Whether `day` at `time` (local) falls in this visit.
    pub fn covers(&self, day: Weekday, time: NaiveTime) -> bool {
        self.day == day && self.from <= time && time < self.until
    }
}

impl fmt::Display for Visit {
    /// As written in the file: `mon 09:00-12:00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}-{}",
            day_code(self.day),
            self.from.format("%H:%M"),
            self.until.format("%H:%M")
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stop {
    pub id: StopId,
    pub name: String,
    pub position: Position,
    pub radius_m: f64,
    pub visits: Vec<Visit>,
}

/// Every stop of the bus, checked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StopSchedule {
    pub stops: Vec<Stop>,
}

#[derive(Debug, Error, PartialEq)]
pub enum ScheduleError {
    #[error("the stop schedule is not valid TOML: {0}")]
    Toml(String),
    #[error("stop {index}: {reason}")]
    Stop { index: usize, reason: String },
    #[error("stop `{0}` is listed twice")]
    Duplicate(StopId),
    #[error(
        "stops `{first}` and `{second}` overlap: their centres are {distance_m:.0} m apart and \
         their radii add up to {radii_m:.0} m"
    )]
    Overlap {
        first: StopId,
        second: StopId,
        distance_m: f64,
        radii_m: f64,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    #[serde(default)]
    stop: Vec<RawStop>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStop {
    id: String,
    name: String,
    latitude: f64,
    longitude: f64,
    radius_m: f64,
    #[serde(default)]
    visits: Vec<String>,
}

impl StopSchedule {
    /// Parses and checks a schedule file; the error names the stop and what is wrong with it.
    pub fn parse(text: &str) -> Result<StopSchedule, ScheduleError> {
        let raw: RawSchedule =
            toml::from_str(text).map_err(|error| ScheduleError::Toml(error.to_string()))?;
        let mut stops: Vec<Stop> = Vec::with_capacity(raw.stop.len());
        for (index, raw) in raw.stop.into_iter().enumerate() {
            let stop = check_stop(raw).map_err(|reason| ScheduleError::Stop {
                index: index + 1,
                reason,
            })?;
            if stops.iter().any(|known| known.id == stop.id) {
                return Err(ScheduleError::Duplicate(stop.id));
            }
            for known in &stops {
                let distance_m = known.position.distance_m(&stop.position);
                let radii_m = known.radius_m + stop.radius_m;
                if distance_m < radii_m {
                    return Err(ScheduleError::Overlap {
                        first: known.id.clone(),
                        second: stop.id,
                        distance_m,
                        radii_m,
                    });
                }
            }
            stops.push(stop);
        }
        Ok(StopSchedule { stops })
    }

    pub fn get(&self, id: &StopId) -> Option<&Stop> {
        self.stops.iter().find(|stop| &stop.id == id)
    }

    /// The stop nearest to `position`, with its distance in metres.
    pub fn nearest(&self, position: &Position) -> Option<(&Stop, f64)> {
        self.stops
            .iter()
            .map(|stop| (stop, stop.position.distance_m(position)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// The stops whose visits cover `day` at `time` (local).
    pub fn scheduled(&self, day: Weekday, time: NaiveTime) -> Vec<&Stop> {
        self.stops
            .iter()
            .filter(|stop| stop.visits.iter().any(|visit| visit.covers(day, time)))
            .collect()
    }
}

fn check_stop(raw: RawStop) -> Result<Stop, String> {
    let id: StopId = raw.id.parse().map_err(|error| format!("{error}"))?;
    let name = raw.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(format!("`{id}`: the name must have 1 to 80 characters"));
    }
    let position = Position {
        latitude: raw.latitude,
        longitude: raw.longitude,
    };
    if !position.is_valid() {
        return Err(format!(
            "`{id}`: latitude must be within ±90 and longitude within ±180 degrees"
        ));
    }
    if !(MIN_RADIUS_M..=MAX_RADIUS_M).contains(&raw.radius_m) {
        return Err(format!(
            "`{id}`: radius_m must be between {MIN_RADIUS_M} and {MAX_RADIUS_M}, not {}",
            raw.radius_m
        ));
    }
    let visits = raw
        .visits
        .iter()
        .map(|text| parse_visit(text).map_err(|reason| format!("`{id}`: visit `{text}`: {reason}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Stop {
        id,
        name,
        position,
        radius_m: raw.radius_m,
        visits,
    })
}

/// `mon 09:00-12:00`.
fn parse_visit(text: &str) -> Result<Visit, String> {
    let (day, span) = text
        .trim()
        .split_once(' ')
        .ok_or("expected a day and hours, as in `mon 09:00-12:00`")?;
    let day = DAYS
        .iter()
        .find(|(code, _)| *code == day.trim())
        .map(|(_, day)| *day)
        .ok_or_else(|| format!("`{day}` is not one of mon, tue, wed, thu, fri, sat, sun"))?;
    let (from, until) = span
        .trim()
        .split_once('-')
        .ok_or("expected hours as in `09:00-12:00`")?;
    let time = |text: &str| {
        NaiveTime::parse_from_str(text.trim(), "%H:%M")
            .map_err(|_| format!("`{}` is not a time as in 09:00", text.trim()))
    };
    let (from, until) = (time(from)?, time(until)?);
    if from >= until {
        return Err("the visit must end after it starts, on the same day".into());
    }
    Ok(Visit { day, from, until })
}

const DAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Mon),
    ("tue", Weekday::Tue),
    ("wed", Weekday::Wed),
    ("thu", Weekday::Thu),
    ("fri", Weekday::Fri),
    ("sat", Weekday::Sat),
    ("sun", Weekday::Sun),
];

fn day_code(day: Weekday) -> &'static str {
    DAYS.iter()
        .find(|(_, known)| *known == day)
        .map_or("?", |(code, _)| code)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GHENT: &str = r#"
[[stop]]
id = "markt"
name = "Markt"
latitude = 51.05434
longitude = 3.71742
radius_m = 60
visits = ["mon 09:00-12:00", "thu 13:30-16:00"]

[[stop]]
id = "kerk"
name = "Sint-Pieterskerk"
latitude = 51.04222
longitude = 3.72580
radius_m = 40
"#;

    #[test]
    fn a_schedule_parses_with_its_visits() {
        let schedule = StopSchedule::parse(GHENT).unwrap();
        assert_eq!(schedule.stops.len(), 2);
        let markt = &schedule.stops[0];
        assert_eq!(markt.id.as_str(), "markt");
        assert_eq!(markt.visits[1].to_string(), "thu 13:30-16:00");
        let ten = NaiveTime::from_hms_opt(10, 0, 0).unwrap();
        assert_eq!(schedule.scheduled(Weekday::Mon, ten).len(), 1);
        assert!(schedule.scheduled(Weekday::Tue, ten).is_empty());
        assert!(!markt.visits[0].covers(Weekday::Mon, NaiveTime::from_hms_opt(12, 0, 0).unwrap()));
    }

    #[test]
    fn the_example_schedule_parses() {
        let example = include_str!("../../deploy/stops.example.toml");
        let schedule = StopSchedule::parse(example).unwrap();
        assert_eq!(schedule.stops.len(), 3);
        assert_eq!(schedule.stops[0].id.as_str(), "demo-markt");
    }

    #[test]
    fn distances_are_great_circle_metres() {
        // Grand-Place to Place Flagey (Brussels), about 2.55 km.
        let a = Position {
            latitude: 50.84674,
            longitude: 4.35247,
        };
        let b = Position {
            latitude: 50.82745,
            longitude: 4.37228,
        };
        let d = a.distance_m(&b);
        assert!((2_500.0..2_600.0).contains(&d), "{d}");
        assert_eq!(a.distance_m(&a), 0.0);
        // One degree of latitude is about 111.2 km.
        let north = Position {
            latitude: 51.84674,
            ..a
        };
        assert!((a.distance_m(&north) - 111_195.0).abs() < 50.0);
    }

    #[test]
    fn the_nearest_stop_is_found() {
        let schedule = StopSchedule::parse(GHENT).unwrap();
        let near_markt = Position {
            latitude: 51.05440,
            longitude: 3.71750,
        };
        let (stop, distance) = schedule.nearest(&near_markt).unwrap();
        assert_eq!(stop.id.as_str(), "markt");
        assert!(distance < 15.0, "{distance}");
        assert!(StopSchedule::default().nearest(&near_markt).is_none());
    }

    #[test]
    fn bad_schedules_are_refused_by_name() {
        let refused = |text: &str| StopSchedule::parse(text).unwrap_err().to_string();
        let stop = |fields: &str| {
            format!(
                "[[stop]]\nid = \"a\"\nname = \"A\"\nlatitude = 51.0\nlongitude = 3.7\n{fields}\n"
            )
        };
        assert!(refused("[[stop]]\nid = 3").contains("not valid TOML"));
        assert!(refused(&stop("radius_m = 5")).contains("radius_m must be between 15 and 500"));
        assert!(refused(&stop("radius_m = 50\nvisits = [\"monday 9-12\"]")).contains("`monday`"));
        assert!(
            refused(&stop("radius_m = 50\nvisits = [\"mon 12:00-09:00\"]")).contains("end after")
        );
        assert!(refused(&stop("radius_m = 50\ncolour = \"red\"")).contains("unknown field"));
        assert!(refused(&stop("radius_m = 50").replace("51.0", "91.0")).contains("within ±90"));
        let twice = format!("{}{}", stop("radius_m = 50"), stop("radius_m = 50"));
        assert_eq!(refused(&twice), "stop `a` is listed twice");
        let close = format!(
            "{}{}",
            stop("radius_m = 50"),
            stop("radius_m = 50")
                .replace("\"a\"", "\"b\"")
                .replace("3.7\n", "3.7010\n")
        );
        assert!(
            refused(&close).contains("stops `a` and `b` overlap"),
            "{}",
            refused(&close)
        );
        assert_eq!(StopSchedule::parse("").unwrap().stops.len(), 0);
    }
}
