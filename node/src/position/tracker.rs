//! Where the bus is, decided from its fixes: at a stop, driving, or unknown. Pure: fixes, the
//! schedule and the time come in as arguments.
//!
//! - **At a stop** once [`ENTER_FIXES`] fixes in a row, spanning [`CONFIRM_SPAN`], are inside
//!   the stop's radius and slow.
//! - **Driving** once [`LEAVE_FIXES`] fixes in a row, spanning as much, are beyond the stop's
//!   radius plus a margin
//!   ([`exit_radius_m`]); a fix between the two radii counts for neither, so a noisy fix at the
//!   edge does not flap.
//! - **Unknown** after [`NO_FIX_GRACE`] without a fix (a short dropout at a stop keeps the
//!   stop), and until a fix says where the bus is.
//! - A fix that would mean moving faster than [`MAX_SPEED_MPS`] from the last fix taken is a
//!   **jump**: refused and reported, the location stays — for [`NO_FIX_GRACE`], as without a
//!   fix. If [`REANCHOR_FIXES`] refused fixes in a row, spanning [`REANCHOR_SPAN`], agree with
//!   one another, the receiver was right after all (it had lost the bus for a while): they are
//!   taken.

use chrono::{DateTime, TimeDelta, Utc};

use busloket_sync::stops::{Position, Stop, StopSchedule};
use busloket_sync::terms::StopId;

/// Fixes in a row inside a stop, slow, before the bus is at the stop (about 3 s at 1 Hz).
pub const ENTER_FIXES: u32 = 3;
/// Fixes in a row beyond the exit radius before the bus has left.
pub const LEAVE_FIXES: u32 = 3;
/// A bus standing at a stop moves slower than this (7.2 km/h), noise included.
pub const SLOW_MPS: f64 = 2.0;
/// Faster than this (180 km/h) between two fixes is not a bus: the fix jumped.
pub const MAX_SPEED_MPS: f64 = 50.0;
/// Below this a jump is noise whatever the time between the fixes.
const JUMP_MIN_M: f64 = 200.0;
/// Refused fixes that agree with one another, in a row, before they are taken.
pub const REANCHOR_FIXES: usize = 5;
/// The counts above are of fixes and of time both: a receiver that reports 5 times a second
/// must not arrive in 0.6 s, nor take a 1 s glitch for the truth. Arriving and leaving take
/// fixes spanning at least this (3 fixes at 1 Hz span 2 s)…
pub const CONFIRM_SPAN: TimeDelta = TimeDelta::seconds(2);
/// …and being taken after a jump, refused fixes spanning at least this.
pub const REANCHOR_SPAN: TimeDelta = TimeDelta::seconds(4);
/// How long a stop is kept without a fix.
pub const NO_FIX_GRACE: TimeDelta = TimeDelta::seconds(30);

/// The radius beyond which a bus at `stop` has left it: half the radius more, at least 25 m.
pub fn exit_radius_m(stop: &Stop) -> f64 {
    stop.radius_m + (stop.radius_m / 2.0).max(25.0)
}

/// Where the bus is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Unknown,
    Driving,
    AtStop(StopId),
}

/// One fix as the tracker needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub position: Position,
    /// As the receiver reports it; derived from the last fix when it does not.
    pub speed_mps: Option<f64>,
    /// The receiver's time of the fix.
    pub at: DateTime<Utc>,
}

/// What a reading changed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outcome {
    /// The location before and after, when it changed.
    pub moved: Option<(Location, Location)>,
    /// The fix was refused as a jump.
    pub jump: Option<Jump>,
    /// Refused fixes were taken after all: the receiver had lost the bus.
    pub reanchored: bool,
}

/// A refused fix: how far from the last fix taken, and how long after it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Jump {
    pub distance_m: f64,
    pub seconds: f64,
}

#[derive(Debug, Clone)]
pub struct Tracker {
    location: Location,
    /// The last fix taken as true.
    anchor: Option<Sample>,
    /// Refused fixes in a row that agree with one another.
    jumped: Vec<Sample>,
    /// The stop the last fixes were inside of, slow: how many in a row, since when.
    entering: Option<(StopId, u32, DateTime<Utc>)>,
    /// Fixes in a row beyond the current stop's exit radius, since when.
    leaving: Option<(u32, DateTime<Utc>)>,
    no_fix_since: Option<DateTime<Utc>>,
    jumps: u64,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker::new()
    }
}

impl Tracker {
    pub fn new() -> Tracker {
        Tracker {
            location: Location::Unknown,
            anchor: None,
            jumped: Vec::new(),
            entering: None,
            leaving: None,
            no_fix_since: None,
            jumps: 0,
        }
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The last fix taken as true.
    pub fn last_fix(&self) -> Option<&Sample> {
        self.anchor.as_ref()
    }

    /// Fixes refused as jumps since the start.
    pub fn jumps(&self) -> u64 {
        self.jumps
    }

    /// Takes a fix, at its own time (tests; see [`Self::fix_at`]).
    pub fn fix(&mut self, schedule: &StopSchedule, sample: Sample) -> Outcome {
        self.fix_at(schedule, sample, sample.at)
    }

    /// Takes a fix received at `now` (the system's time). A refused fix is no fix: after
    /// [`NO_FIX_GRACE`] of refused fixes the location is unknown, as without any.
    pub fn fix_at(
        &mut self,
        schedule: &StopSchedule,
        sample: Sample,
        now: DateTime<Utc>,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        let mut sample = sample;
        if let Some(anchor) = self.anchor {
            if let Some(jump) = jump_between(&anchor, &sample) {
                self.jumps += 1;
                let agrees = self
                    .jumped
                    .last()
                    .is_none_or(|last| jump_between(last, &sample).is_none());
                if !agrees {
                    self.jumped.clear();
                }
                self.jumped.push(sample);
                let span = sample.at - self.jumped[0].at;
                if self.jumped.len() < REANCHOR_FIXES || span < REANCHOR_SPAN {
                    let mut aged = self.no_fix(now);
                    aged.jump = Some(jump);
                    return aged;
                }
                outcome.reanchored = true;
                self.jumped.clear();
                self.entering = None;
                self.leaving = None;
            } else {
                self.jumped.clear();
                if sample.speed_mps.is_none() {
                    let seconds = seconds_between(&anchor, &sample);
                    if seconds > 0.0 {
                        sample.speed_mps =
                            Some(anchor.position.distance_m(&sample.position) / seconds);
                    }
                }
            }
        }
        self.no_fix_since = None;
        self.anchor = Some(sample);
        let next = self.next_location(schedule, &sample, outcome.reanchored);
        if next != self.location {
            outcome.moved = Some((std::mem::replace(&mut self.location, next.clone()), next));
        }
        outcome
    }

    /// Takes the news that the receiver has no fix, at `now` (the system's time).
    pub fn no_fix(&mut self, now: DateTime<Utc>) -> Outcome {
        let since = *self.no_fix_since.get_or_insert(now);
        self.entering = None;
        self.leaving = None;
        let mut outcome = Outcome::default();
        if now - since >= NO_FIX_GRACE && self.location != Location::Unknown {
            outcome.moved = Some((
                std::mem::replace(&mut self.location, Location::Unknown),
                Location::Unknown,
            ));
        }
        outcome
    }

    /// `confirmed`: the fix needs no others to confirm it (refused fixes that agreed did).
    fn next_location(
        &mut self,
        schedule: &StopSchedule,
        sample: &Sample,
        confirmed: bool,
    ) -> Location {
        if let Location::AtStop(id) = &self.location {
            let beyond = schedule.get(id).is_none_or(|stop| {
                stop.position.distance_m(&sample.position) > exit_radius_m(stop)
            });
            self.leaving = match (beyond, self.leaving) {
                (false, _) => None,
                (true, None) => Some((1, sample.at)),
                (true, Some((count, since))) => Some((count + 1, since)),
            };
            let left = self.leaving.is_some_and(|(count, since)| {
                count >= LEAVE_FIXES && sample.at - since >= CONFIRM_SPAN
            });
            // Left: by enough fixes and seconds, or by one that needs no others to confirm it.
            if !(left || (beyond && confirmed)) {
                return self.location.clone();
            }
            self.leaving = None;
        }
        let slow = sample.speed_mps.is_none_or(|speed| speed <= SLOW_MPS);
        match schedule.nearest(&sample.position) {
            Some((stop, distance)) if distance <= stop.radius_m && slow => {
                let (count, since) = match &self.entering {
                    Some((id, count, since)) if *id == stop.id => (count + 1, *since),
                    _ => (1, sample.at),
                };
                if count >= ENTER_FIXES && sample.at - since >= CONFIRM_SPAN {
                    self.entering = None;
                    return Location::AtStop(stop.id.clone());
                }
                self.entering = Some((stop.id.clone(), count, since));
                // Out of a tunnel or a restart at a stop: not "driving" for the seconds it
                // takes to be sure.
                if self.location == Location::Unknown {
                    return Location::Unknown;
                }
            }
            // Between the radius and the exit radius: counts for nothing either way.
            Some((stop, distance)) if distance <= exit_radius_m(stop) && slow => {
                if self.location == Location::Unknown && self.entering.is_some() {
                    return Location::Unknown;
                }
            }
            _ => self.entering = None,
        }
        Location::Driving
    }
}

fn seconds_between(a: &Sample, b: &Sample) -> f64 {
    (b.at - a.at).num_milliseconds() as f64 / 1000.0
}

/// `Some` when going from `a` to `b` is not something a bus does.
fn jump_between(a: &Sample, b: &Sample) -> Option<Jump> {
    let distance_m = a.position.distance_m(&b.position);
    if distance_m < JUMP_MIN_M {
        return None;
    }
    let seconds = seconds_between(a, b);
    (seconds <= 0.0 || distance_m / seconds > MAX_SPEED_MPS).then_some(Jump {
        distance_m,
        seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two stops 1.3 km apart in Ghent.
    fn schedule() -> StopSchedule {
        StopSchedule::parse(
            r#"
[[stop]]
id = "markt"
name = "Markt"
latitude = 51.05434
longitude = 3.71742
radius_m = 60

[[stop]]
id = "kerk"
name = "Sint-Pieterskerk"
latitude = 51.04222
longitude = 3.72580
radius_m = 40
"#,
        )
        .unwrap()
    }

    const MARKT: Position = Position {
        latitude: 51.05434,
        longitude: 3.71742,
    };

    /// `metres` north of `from`.
    fn north(from: Position, metres: f64) -> Position {
        Position {
            latitude: from.latitude + metres / 111_195.0,
            ..from
        }
    }

    fn at(second: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_763_900_000 + second, 0).unwrap()
    }

    fn sample(position: Position, speed: f64, second: i64) -> Sample {
        Sample {
            position,
            speed_mps: Some(speed),
            at: at(second),
        }
    }

    fn markt() -> Location {
        Location::AtStop("markt".parse().unwrap())
    }

    #[test]
    fn a_bus_arrives_after_three_slow_fixes_inside_and_leaves_after_three_beyond() {
        let schedule = schedule();
        let mut tracker = Tracker::new();
        let feed = |tracker: &mut Tracker, metres, speed, second| {
            tracker.fix(&schedule, sample(north(MARKT, metres), speed, second))
        };
        // Approaching at 10 m/s.
        feed(&mut tracker, 400.0, 10.0, 0);
        assert_eq!(tracker.location(), &Location::Driving);
        // Inside the radius but still rolling: not yet at the stop.
        feed(&mut tracker, 40.0, 5.0, 36);
        assert_eq!(tracker.location(), &Location::Driving);
        feed(&mut tracker, 10.0, 0.5, 40);
        feed(&mut tracker, 8.0, 0.0, 41);
        assert_eq!(tracker.location(), &Location::Driving);
        let outcome = feed(&mut tracker, 8.0, 0.0, 42);
        assert_eq!(outcome.moved, Some((Location::Driving, markt())));
        // Driving off: inside the exit radius (60 + 30 m) nothing changes.
        feed(&mut tracker, 80.0, 6.0, 300);
        feed(&mut tracker, 85.0, 6.0, 301);
        assert_eq!(tracker.location(), &markt());
        feed(&mut tracker, 120.0, 8.0, 305);
        feed(&mut tracker, 150.0, 8.0, 309);
        assert_eq!(tracker.location(), &markt());
        let outcome = feed(&mut tracker, 180.0, 8.0, 313);
        assert_eq!(outcome.moved, Some((markt(), Location::Driving)));
    }

    #[test]
    fn a_noisy_fix_at_the_edge_does_not_flap() {
        let schedule = schedule();
        let mut tracker = Tracker::new();
        // Standing 55 m from the centre of a 60 m stop, the fix wanders ±20 m.
        let offsets = [55.0, 70.0, 50.0, 58.0, 75.0, 41.0, 62.0, 57.0, 79.0, 45.0];
        let mut arrivals = 0;
        let mut departures = 0;
        for (second, offset) in offsets.iter().cycle().take(200).enumerate() {
            let outcome = tracker.fix(&schedule, sample(north(MARKT, *offset), 0.3, second as i64));
            match outcome.moved {
                Some((_, Location::AtStop(_))) => arrivals += 1,
                Some((Location::AtStop(_), _)) => departures += 1,
                _ => {}
            }
        }
        assert_eq!((arrivals, departures), (1, 0));
        assert_eq!(tracker.location(), &markt());
    }

    #[test]
    fn without_a_fix_the_stop_is_kept_a_while_then_unknown() {
        let schedule = schedule();
        let mut tracker = Tracker::new();
        for second in 0..3 {
            tracker.fix(&schedule, sample(MARKT, 0.0, second));
        }
        assert_eq!(tracker.location(), &markt());
        assert_eq!(tracker.no_fix(at(10)).moved, None);
        assert_eq!(tracker.no_fix(at(39)).moved, None);
        assert_eq!(
            tracker.no_fix(at(40)).moved,
            Some((markt(), Location::Unknown))
        );
        // The fix comes back at the stop: unknown until sure, then at the stop, never driving.
        for second in 41..43 {
            let outcome = tracker.fix(&schedule, sample(MARKT, 0.0, second));
            assert_eq!(outcome.moved, None);
        }
        assert_eq!(
            tracker.fix(&schedule, sample(MARKT, 0.0, 43)).moved,
            Some((Location::Unknown, markt()))
        );
    }

    #[test]
    fn a_fix_that_jumps_50_km_is_refused_and_the_stop_kept() {
        let schedule = schedule();
        let mut tracker = Tracker::new();
        for second in 0..3 {
            tracker.fix(&schedule, sample(MARKT, 0.0, second));
        }
        let far = north(MARKT, 50_000.0);
        let outcome = tracker.fix(&schedule, sample(far, 0.0, 3));
        let jump = outcome.jump.expect("refused");
        assert!((jump.distance_m - 50_000.0).abs() < 100.0);
        assert_eq!(outcome.moved, None);
        assert_eq!(tracker.location(), &markt());
        assert_eq!(tracker.last_fix().unwrap().position, MARKT);
        // A good fix in between starts the count again.
        tracker.fix(&schedule, sample(MARKT, 0.0, 4));
        assert_eq!(tracker.jumps(), 1);
    }

    #[test]
    fn refused_fixes_that_agree_are_taken_in_the_end() {
        let schedule = schedule();
        let mut tracker = Tracker::new();
        for second in 0..3 {
            tracker.fix(&schedule, sample(MARKT, 0.0, second));
        }
        // The receiver lost the bus and found it 50 km away, standing.
        let far = north(MARKT, 50_000.0);
        for second in 3..3 + REANCHOR_FIXES as i64 - 1 {
            let outcome = tracker.fix(&schedule, sample(far, 0.0, second));
            assert!(outcome.jump.is_some());
            assert_eq!(tracker.location(), &markt());
        }
        let outcome = tracker.fix(&schedule, sample(far, 0.0, 10));
        assert!(outcome.reanchored);
        assert_eq!(outcome.moved, Some((markt(), Location::Driving)));
        assert_eq!(tracker.last_fix().unwrap().position, far);
    }

    #[test]
    fn without_reported_speed_it_is_derived_from_the_fixes() {
        let schedule = schedule();
        let mut tracker = Tracker::new();
        let mut fix = |metres: f64, second: i64| {
            tracker.fix(
                &schedule,
                Sample {
                    position: north(MARKT, metres),
                    speed_mps: None,
                    at: at(second),
                },
            )
        };
        // Crossing the stop at 15 m/s: never at the stop.
        for second in 0..8 {
            let outcome = fix(-60.0 + 15.0 * second as f64, second);
            assert_ne!(outcome.moved.map(|(_, to)| to), Some(markt()));
        }
        assert_eq!(tracker.location(), &Location::Driving);
    }

    #[test]
    fn wild_fixes_that_never_agree_are_no_fix_and_end_in_unknown() {
        let schedule = schedule();
        let mut tracker = Tracker::new();
        for second in 0..3 {
            tracker.fix(&schedule, sample(MARKT, 0.0, second));
        }
        assert_eq!(tracker.location(), &markt());
        let mut moved = None;
        for second in 3..40 {
            // 50 km north, then 50 km south, and so on: never two alike.
            let sign = if second % 2 == 0 { 1.0 } else { -1.0 };
            let outcome = tracker.fix(
                &schedule,
                sample(north(MARKT, sign * 50_000.0), 0.0, second),
            );
            assert!(outcome.jump.is_some());
            if outcome.moved.is_some() {
                moved = Some((second, outcome.moved));
            }
        }
        assert_eq!(moved, Some((33, Some((markt(), Location::Unknown)))));
    }

    #[test]
    fn a_receiver_at_5_hz_needs_the_same_seconds_as_one_at_1_hz() {
        let schedule = schedule();
        let mut tracker = Tracker::new();
        let tenth = |n: i64| DateTime::from_timestamp_millis(1_763_900_000_000 + n * 200).unwrap();
        let fix = |tracker: &mut Tracker, position, n| {
            tracker.fix(
                &schedule,
                Sample {
                    position,
                    speed_mps: Some(0.0),
                    at: tenth(n),
                },
            )
        };
        // Standing at the Markt: 3 fixes in 0.4 s are not enough, 2 s of them are.
        for n in 0..10 {
            fix(&mut tracker, MARKT, n);
            assert_ne!(tracker.location(), &markt(), "after {} ms", n * 200);
        }
        fix(&mut tracker, MARKT, 10);
        assert_eq!(tracker.location(), &markt());
        // A 1 s glitch 50 km away (5 agreeing fixes): refused, not taken.
        let far = north(MARKT, 50_000.0);
        for n in 11..16 {
            assert!(fix(&mut tracker, far, n).jump.is_some());
        }
        fix(&mut tracker, MARKT, 16);
        assert_eq!(tracker.location(), &markt());
        assert_eq!(tracker.last_fix().unwrap().position, MARKT);
    }

    #[test]
    fn a_stop_taken_out_of_the_schedule_is_left() {
        let mut tracker = Tracker::new();
        for second in 0..3 {
            tracker.fix(&schedule(), sample(MARKT, 0.0, second));
        }
        let empty = StopSchedule::default();
        for second in 3..5 {
            tracker.fix(&empty, sample(MARKT, 0.0, second));
        }
        assert_eq!(tracker.location(), &markt());
        let outcome = tracker.fix(&empty, sample(MARKT, 0.0, 5));
        assert_eq!(outcome.moved, Some((markt(), Location::Driving)));
    }
}
