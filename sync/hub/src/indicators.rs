//! The service's indicators: visits and documents per stop and per day, an estimate of the
//! kilometres citizens avoided, and the bus's own kilometres (`page` draws them, with CSV and
//! JSON exports).
//!
//! The hub keeps an [`IndicatorRow`] per request, written in the same commit as the request
//! itself: the time, the bus, the stop and the fix, the document, the channel, the status, the
//! requester's postcode, and a pseudonym of the requester that holds only for the day (a keyed
//! hash of their national number and the local date, so one citizen asking for three documents
//! is one visit, and two days cannot be linked). No name, no national number, no address. The
//! figures are computed from these rows, the trip logs and the stop schedule when they are
//! asked for ([`report`]: pure, no IO, no clock).
//!
//! Days are the city's local days ([`CITY_TIME_ZONE`]).

mod chart;
pub mod page;

use std::collections::{BTreeMap, HashMap};

use busloket_sync::record::{RequestView, Status};
use busloket_sync::stops::{Position, StopSchedule};
use busloket_sync::terms::{Channel, DeviceId, DocumentCode, Postcode, StopId};
use busloket_sync::trip::{TripEntry, route_length_m};
use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use thiserror::Error;

/// The city's time zone: a day of the indicators is a local day.
pub const CITY_TIME_ZONE: Tz = chrono_tz::Europe::Brussels;

/// The version of [`IndicatorRow`]'s layout: a hub whose rows were written with another one
/// computes them again from the requests at start.
pub const ROW_VERSION: u32 = 1;

/// The longest period a report covers, in days.
pub const MAX_PERIOD_DAYS: u64 = 366;

/// What the indicators keep of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndicatorRow {
    /// When the request was made (the bus's clock), Unix milliseconds.
    pub at_ms: i64,
    pub device: DeviceId,
    pub stop: Option<StopId>,
    /// Where the bus was: the fix the request was made with.
    pub place: Option<Position>,
    pub document: DocumentCode,
    pub channel: Channel,
    pub status: Status,
    /// The requester's postcode, when their card was read.
    pub home: Option<Postcode>,
    /// The requester for the day: see [`VisitorKey`].
    pub visitor: [u8; 16],
}

/// The hub's secret for visitor pseudonyms: HMAC-SHA-256 of a national number and a local date,
/// cut to 16 bytes. Drawn once per store and kept sealed in it; without it a pseudonym cannot
/// be matched to a national number by trying them all.
#[derive(Clone)]
pub struct VisitorKey([u8; 32]);

impl std::fmt::Debug for VisitorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VisitorKey(…)")
    }
}

impl VisitorKey {
    pub fn from_bytes(bytes: [u8; 32]) -> VisitorKey {
        VisitorKey(bytes)
    }

    fn pseudonym(&self, national_number: &str, day: NaiveDate) -> [u8; 16] {
        // HMAC takes a key of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        mac.update(national_number.as_bytes());
        mac.update(b"\0");
        mac.update(day.to_string().as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut visitor = [0u8; 16];
        visitor.copy_from_slice(&digest[..16]);
        visitor
    }
}

/// The local day of a time.
pub fn local_day(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&CITY_TIME_ZONE).date_naive()
}

/// The start of a local day, in UTC.
fn day_start(day: NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_time(chrono::NaiveTime::MIN);
    // Midnight exists every day in Brussels (clocks change at 2:00 and 3:00).
    CITY_TIME_ZONE
        .from_local_datetime(&midnight)
        .earliest()
        .map(|at| at.with_timezone(&Utc))
        .unwrap_or_else(|| midnight.and_utc())
}

impl IndicatorRow {
    /// The row of a request as the hub has it now.
    pub fn of(view: &RequestView, key: &VisitorKey) -> IndicatorRow {
        let fields = &view.fields;
        let origin = &fields.origin;
        IndicatorRow {
            at_ms: origin.at.timestamp_millis(),
            device: origin.device.clone(),
            stop: origin.stop.clone(),
            place: origin.whereabouts.fix.map(|fix| Position {
                latitude: fix.latitude,
                longitude: fix.longitude,
            }),
            document: fields.document.clone(),
            channel: fields.channel,
            status: view.status,
            home: fields.requester_postcode,
            visitor: key.pseudonym(
                fields.requester.national_number.digits(),
                local_day(origin.at),
            ),
        }
    }

    fn delivered(&self) -> bool {
        matches!(
            self.status,
            Status::Printed | Status::HandedOver | Status::Emailed
        )
    }
}

/// A place with a name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Place {
    pub name: String,
    #[serde(flatten)]
    pub position: Position,
}

/// Postcodes and where their area lies (a point near its middle): where a citizen lives, as
/// coarsely as the indicators need.
///
/// ```toml
/// [[postcode]]
/// code = "8500"
/// name = "Kortrijk"
/// latitude = 50.8279
/// longitude = 3.2649
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gazetteer {
    places: BTreeMap<Postcode, Place>,
}

#[derive(Debug, Error, PartialEq)]
pub enum GazetteerError {
    #[error("the postcode list is not valid TOML: {0}")]
    Toml(String),
    #[error("postcode entry {index}: {reason}")]
    Entry { index: usize, reason: String },
    #[error("postcode {0} is listed twice")]
    Duplicate(Postcode),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGazetteer {
    #[serde(default)]
    postcode: Vec<RawPostcode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPostcode {
    code: String,
    name: String,
    latitude: f64,
    longitude: f64,
}

impl Gazetteer {
    pub fn parse(text: &str) -> Result<Gazetteer, GazetteerError> {
        let raw: RawGazetteer =
            toml::from_str(text).map_err(|error| GazetteerError::Toml(error.to_string()))?;
        let mut places = BTreeMap::new();
        for (index, entry) in raw.postcode.into_iter().enumerate() {
            let index = index + 1;
            let invalid = |reason: String| GazetteerError::Entry { index, reason };
            let code: Postcode = entry.code.parse().map_err(|_| {
                invalid(format!("`{}` is not a postcode (four digits)", entry.code))
            })?;
            let name = entry.name.trim().to_owned();
            if name.is_empty() {
                return Err(invalid(format!("{code} has no name")));
            }
            let position = Position {
                latitude: entry.latitude,
                longitude: entry.longitude,
            };
            if !position.is_valid() {
                return Err(invalid(format!(
                    "{code}: {}, {} is not a position on the Earth",
                    entry.latitude, entry.longitude
                )));
            }
            if places.insert(code, Place { name, position }).is_some() {
                return Err(GazetteerError::Duplicate(code));
            }
        }
        Ok(Gazetteer { places })
    }

    pub fn get(&self, code: Postcode) -> Option<&Place> {
        self.places.get(&code)
    }

    pub fn len(&self) -> usize {
        self.places.len()
    }

    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }
}

/// What the estimate of kilometres avoided needs: where the town hall is, where postcodes lie,
/// and how much longer a road is than the straight line.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub town_hall: Place,
    pub postcodes: Gazetteer,
    pub road_factor: f64,
}

/// The local days a report covers, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Period {
    /// A period, checked: `from` not after `to`, at most [`MAX_PERIOD_DAYS`] days.
    pub fn new(from: NaiveDate, to: NaiveDate) -> Result<Period, String> {
        if from > to {
            return Err(format!("the period starts ({from}) after it ends ({to})"));
        }
        let days = (to - from).num_days() as u64 + 1;
        if days > MAX_PERIOD_DAYS {
            return Err(format!(
                "the period has {days} days; at most {MAX_PERIOD_DAYS} are shown at once"
            ));
        }
        Ok(Period { from, to })
    }

    /// The `days` days up to and including `today`.
    pub fn last(days: u64, today: NaiveDate) -> Period {
        let from = today
            .checked_sub_days(Days::new(days.saturating_sub(1)))
            .unwrap_or(today);
        Period { from, to: today }
    }

    pub fn days(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.from.iter_days().take_while(|day| *day <= self.to)
    }

    pub fn contains(&self, day: NaiveDate) -> bool {
        self.from <= day && day <= self.to
    }

    /// The UTC span of the period: from the start of `from` to the start of the day after `to`.
    pub fn span(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let end = self.to.succ_opt().unwrap_or(self.to);
        (day_start(self.from), day_start(end))
    }
}

/// Counts of one stop on one day, or over a period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    /// Citizens who came: one requester at one stop on one day.
    pub visits: u64,
    /// Documents requested.
    pub requests: u64,
    /// Of those, printed, handed over or e-mailed.
    pub delivered: u64,
    /// The estimate of the kilometres citizens avoided (see [`Method`]).
    pub km_avoided: f64,
    /// The visits the estimate could count: the requester's postcode and the stop are known.
    pub visits_estimated: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.visits += other.visits;
        self.requests += other.requests;
        self.delivered += other.delivered;
        self.km_avoided += other.km_avoided;
        self.visits_estimated += other.visits_estimated;
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StopDay {
    pub day: NaiveDate,
    /// `None`: requests made while the bus knew no stop.
    pub stop: Option<StopId>,
    /// The schedule's name, when the stop is in it.
    pub stop_name: Option<String>,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StopTotal {
    pub stop: Option<StopId>,
    pub stop_name: Option<String>,
    #[serde(flatten)]
    pub counts: Counts,
}

/// The bus's own kilometres on a day, from its trip log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BusDay {
    pub day: NaiveDate,
    pub device: DeviceId,
    pub km: f64,
}

/// The figures a day has over every stop, for the plots.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Day {
    pub day: NaiveDate,
    #[serde(flatten)]
    pub counts: Counts,
    pub bus_km: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    #[serde(flatten)]
    pub counts: Counts,
    pub bus_km: f64,
    /// Visits the estimate left out because the requester's postcode is unknown (no card read)
    /// or not in the postcode list.
    pub visits_without_home: u64,
    /// Visits left out because neither the stop's position nor a fix is known.
    pub visits_without_place: u64,
}

/// How the kilometres avoided are estimated, as the page and the exports state it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Method {
    pub town_hall: Place,
    pub road_factor: f64,
    /// The formula, in words of the JSON export's fields.
    pub formula: &'static str,
}

pub const FORMULA: &str = "km_avoided = sum over visits of 2 × road_factor × max(0, d(home, town_hall) − d(home, stop)) / 1000, \
     d the great-circle distance in metres, home the middle of the requester's postcode area";

/// The indicators of a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub time_zone: &'static str,
    pub totals: Totals,
    /// Per stop over the period, the most visited first.
    pub stops: Vec<StopTotal>,
    /// Every day of the period over every stop (days without anything too).
    pub days: Vec<Day>,
    /// Per day and stop, days first; only where something happened.
    pub stop_days: Vec<StopDay>,
    /// Per day and bus; only where the bus moved or stood somewhere.
    pub buses: Vec<BusDay>,
    /// `None`: the hub's configuration has no `[indicators]`, so nothing is estimated.
    pub method: Option<Method>,
}

/// One visit as the report counts it: the first request's home and place.
struct Visit {
    home: Option<Postcode>,
    place: Option<Position>,
}

/// Computes the indicators of `period` from the rows, the trip logs and the stop schedule.
pub fn report(
    rows: &[IndicatorRow],
    trips: &[(DeviceId, Vec<TripEntry>)],
    schedule: &StopSchedule,
    settings: Option<&Settings>,
    period: Period,
) -> Report {
    type StopKey = (NaiveDate, Option<StopId>);
    let mut per_stop_day: BTreeMap<StopKey, Counts> = BTreeMap::new();
    let mut visits: HashMap<(NaiveDate, Option<StopId>, [u8; 16]), Visit> = HashMap::new();
    for row in rows {
        let Some(at) = DateTime::<Utc>::from_timestamp_millis(row.at_ms) else {
            continue;
        };
        let day = local_day(at);
        if !period.contains(day) {
            continue;
        }
        let counts = per_stop_day.entry((day, row.stop.clone())).or_default();
        counts.requests += 1;
        counts.delivered += u64::from(row.delivered());
        let place = row
            .stop
            .as_ref()
            .and_then(|stop| schedule.get(stop))
            .map(|stop| stop.position)
            .or(row.place);
        visits
            .entry((day, row.stop.clone(), row.visitor))
            .or_insert(Visit {
                home: row.home,
                place,
            });
    }

    let mut totals = Totals::default();
    for ((day, stop, _), visit) in &visits {
        let counts = per_stop_day.entry((*day, stop.clone())).or_default();
        counts.visits += 1;
        let Some(settings) = settings else { continue };
        let home = visit.home.and_then(|code| settings.postcodes.get(code));
        match (home, visit.place) {
            (None, _) => totals.visits_without_home += 1,
            (Some(_), None) => totals.visits_without_place += 1,
            (Some(home), Some(place)) => {
                counts.visits_estimated += 1;
                counts.km_avoided += km_avoided(settings, &home.position, &place);
            }
        }
    }

    let name_of = |stop: &Option<StopId>| {
        stop.as_ref()
            .and_then(|stop| schedule.get(stop))
            .map(|stop| stop.name.clone())
    };
    let mut stop_totals: BTreeMap<Option<StopId>, Counts> = BTreeMap::new();
    let mut day_counts: BTreeMap<NaiveDate, Counts> = BTreeMap::new();
    let stop_days = per_stop_day
        .into_iter()
        .map(|((day, stop), counts)| {
            stop_totals.entry(stop.clone()).or_default().add(&counts);
            day_counts.entry(day).or_default().add(&counts);
            totals.counts.add(&counts);
            StopDay {
                day,
                stop_name: name_of(&stop),
                stop,
                counts,
            }
        })
        .collect();
    let mut stops: Vec<StopTotal> = stop_totals
        .into_iter()
        .map(|(stop, counts)| StopTotal {
            stop_name: name_of(&stop),
            stop,
            counts,
        })
        .collect();
    stops.sort_by(|a, b| {
        b.counts
            .visits
            .cmp(&a.counts.visits)
            .then_with(|| a.stop.cmp(&b.stop))
    });

    let mut buses = Vec::new();
    let mut bus_km_per_day: BTreeMap<NaiveDate, f64> = BTreeMap::new();
    for (device, entries) in trips {
        let mut per_day: BTreeMap<NaiveDate, Vec<TripEntry>> = BTreeMap::new();
        for entry in entries {
            let day = local_day(entry.at);
            if period.contains(day) {
                per_day.entry(day).or_default().push(entry.clone());
            }
        }
        for (day, entries) in per_day {
            let km = route_length_m(&entries) / 1000.0;
            *bus_km_per_day.entry(day).or_default() += km;
            totals.bus_km += km;
            buses.push(BusDay {
                day,
                device: device.clone(),
                km,
            });
        }
    }
    buses.sort_by(|a, b| a.day.cmp(&b.day).then_with(|| a.device.cmp(&b.device)));

    let days = period
        .days()
        .map(|day| Day {
            day,
            counts: day_counts.remove(&day).unwrap_or_default(),
            bus_km: bus_km_per_day.get(&day).copied().unwrap_or(0.0),
        })
        .collect();

    Report {
        from: period.from,
        to: period.to,
        time_zone: CITY_TIME_ZONE.name(),
        totals,
        stops,
        days,
        stop_days,
        buses,
        method: settings.map(|settings| Method {
            town_hall: settings.town_hall.clone(),
            road_factor: settings.road_factor,
            formula: FORMULA,
        }),
    }
}

/// The kilometres one visit avoided: there and back to the town hall, less there and back to
/// the stop, by road; never below zero (a stop farther than the town hall avoided nothing).
pub fn km_avoided(settings: &Settings, home: &Position, stop: &Position) -> f64 {
    let to_hall = home.distance_m(&settings.town_hall.position);
    let to_stop = home.distance_m(stop);
    2.0 * settings.road_factor * (to_hall - to_stop).max(0.0) / 1000.0
}

#[cfg(test)]
mod tests;
