//! A route a simulated bus drives: from a start, legs that drive to a waypoint at a speed (with
//! or without a fix: a tunnel), stand still for a while, or stand near a point with a noisy fix.
//! [`SimGps`](super::SimGps) drives it in a loop for the demo; [`nmea`](super::nmea) turns it
//! into an NMEA log for gpsfake.
//!
//! Pure: positions are a function of the time since the start. No clock, no IO; the noise comes
//! from a seed, so a route is the same on every run.

use std::time::Duration;

/// A place on the route (WGS 84 degrees).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub latitude: f64,
    pub longitude: f64,
}

/// Where the route puts the bus at a moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RouteState {
    /// Inside a tunnel: the receiver has no fix.
    NoFix,
    Fix {
        point: Point,
        /// Metres per second.
        speed_mps: f64,
        /// Degrees clockwise from true north.
        course_degrees: f64,
    },
}

/// A route: a start and its legs, driven one after the other. Built with
/// [`Route::starting_at`] and the methods that add a leg.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    start: Point,
    legs: Vec<Leg>,
}

#[derive(Debug, Clone, PartialEq)]
enum Leg {
    Drive {
        from: Point,
        to: Point,
        duration: Duration,
        speed_mps: f64,
        with_fix: bool,
    },
    Dwell {
        at: Point,
        duration: Duration,
    },
    Noisy {
        at: Point,
        duration: Duration,
        radius_m: f64,
        seed: u64,
    },
}

/// Metres per degree of latitude (and of longitude at the equator).
const METRES_PER_DEGREE: f64 = 111_320.0;

impl Route {
    /// A route standing at its start; add legs to it.
    pub fn starting_at(latitude: f64, longitude: f64) -> Route {
        Route {
            start: Point {
                latitude,
                longitude,
            },
            legs: Vec::new(),
        }
    }

    /// The built-in routes by name: `"demo"` (see [`Route::demo`]).
    pub fn builtin(name: &str) -> Option<Route> {
        match name {
            "demo" => Some(Route::demo()),
            _ => None,
        }
    }

    /// The demo's loop through the centre of Kortrijk at 30 km/h (made-up waypoints): 90 s at
    /// the Grote Markt, drive to the station, 90 s there, through the underpass without a fix
    /// to the Broeltorens, 90 s there, and back to the Grote Markt. About six minutes a lap.
    pub fn demo() -> Route {
        const SPEED: f64 = 30.0 / 3.6;
        const STOP: Duration = Duration::from_secs(90);
        let (markt_latitude, markt_longitude) = (50.8279, 3.2649);
        Route::starting_at(markt_latitude, markt_longitude)
            .dwell(STOP)
            .drive_to(50.8262, 3.2661, SPEED)
            .drive_to(50.8247, 3.2640, SPEED)
            .dwell(STOP)
            .drive_without_fix_to(50.8276, 3.2600, SPEED)
            .drive_to(50.8301, 3.2628, SPEED)
            .dwell(STOP)
            .drive_to(markt_latitude, markt_longitude, SPEED)
    }

    /// Drives in a straight line to the point at `speed_mps` (more than 0).
    pub fn drive_to(self, latitude: f64, longitude: f64, speed_mps: f64) -> Route {
        self.drive(latitude, longitude, speed_mps, true)
    }

    /// Drives to the point without a fix, as through a tunnel.
    pub fn drive_without_fix_to(self, latitude: f64, longitude: f64, speed_mps: f64) -> Route {
        self.drive(latitude, longitude, speed_mps, false)
    }

    /// Stands still where the route is.
    pub fn dwell(mut self, duration: Duration) -> Route {
        let at = self.end();
        self.legs.push(Leg::Dwell { at, duration });
        self
    }

    /// Stands near where the route is, with a noisy fix: each second a position anywhere within
    /// `radius_m` of it, drawn from `seed`, and a speed under 1 m/s — as a receiver reports a
    /// bus waiting under trees or between tall buildings.
    pub fn noisy(mut self, duration: Duration, radius_m: f64, seed: u64) -> Route {
        let at = self.end();
        self.legs.push(Leg::Noisy {
            at,
            duration,
            radius_m,
            seed,
        });
        self
    }

    fn drive(mut self, latitude: f64, longitude: f64, speed_mps: f64, with_fix: bool) -> Route {
        assert!(
            speed_mps.is_finite() && speed_mps > 0.0,
            "a route's speed must be more than 0 m/s, not {speed_mps}"
        );
        let from = self.end();
        let to = Point {
            latitude,
            longitude,
        };
        let duration = Duration::from_secs_f64(distance_m(from, to) / speed_mps);
        self.legs.push(Leg::Drive {
            from,
            to,
            duration,
            speed_mps,
            with_fix,
        });
        self
    }

    /// Where the route starts.
    pub fn start(&self) -> Point {
        self.start
    }

    /// Where the route ends.
    pub fn end(&self) -> Point {
        match self.legs.last() {
            None => self.start,
            Some(Leg::Drive { to, .. }) => *to,
            Some(Leg::Dwell { at, .. } | Leg::Noisy { at, .. }) => *at,
        }
    }

    /// How long the whole route takes.
    pub fn duration(&self) -> Duration {
        self.legs.iter().map(Leg::duration).sum()
    }

    /// The points the route drives to, in order (the start first).
    pub fn waypoints(&self) -> Vec<Point> {
        std::iter::once(self.start)
            .chain(self.legs.iter().filter_map(|leg| match leg {
                Leg::Drive { to, .. } => Some(*to),
                Leg::Dwell { .. } | Leg::Noisy { .. } => None,
            }))
            .collect()
    }

    /// Where the bus is `elapsed` after the start; after the end, standing at the end.
    pub fn state_at(&self, elapsed: Duration) -> RouteState {
        let mut left = elapsed;
        for leg in &self.legs {
            if left < leg.duration() {
                return leg.state_after(left);
            }
            left -= leg.duration();
        }
        RouteState::Fix {
            point: self.end(),
            speed_mps: 0.0,
            course_degrees: 0.0,
        }
    }
}

impl Leg {
    fn duration(&self) -> Duration {
        match self {
            Leg::Drive { duration, .. }
            | Leg::Dwell { duration, .. }
            | Leg::Noisy { duration, .. } => *duration,
        }
    }

    fn state_after(&self, elapsed: Duration) -> RouteState {
        match *self {
            Leg::Drive {
                with_fix: false, ..
            } => RouteState::NoFix,
            Leg::Drive {
                from,
                to,
                duration,
                speed_mps,
                with_fix: true,
            } => {
                let part = elapsed.as_secs_f64() / duration.as_secs_f64();
                RouteState::Fix {
                    point: Point {
                        latitude: from.latitude + (to.latitude - from.latitude) * part,
                        longitude: from.longitude + (to.longitude - from.longitude) * part,
                    },
                    speed_mps,
                    course_degrees: bearing_degrees(from, to),
                }
            }
            Leg::Dwell { at, .. } => RouteState::Fix {
                point: at,
                speed_mps: 0.0,
                course_degrees: 0.0,
            },
            Leg::Noisy {
                at, radius_m, seed, ..
            } => {
                // The same noise for the whole second, as a 1 Hz receiver reports it.
                let second = elapsed.as_secs();
                let angle = std::f64::consts::TAU * unit_random(seed, second, 0);
                let distance = radius_m * unit_random(seed, second, 1).sqrt();
                let north = distance * angle.cos();
                let east = distance * angle.sin();
                RouteState::Fix {
                    point: Point {
                        latitude: at.latitude + north / METRES_PER_DEGREE,
                        longitude: at.longitude
                            + east / (METRES_PER_DEGREE * at.latitude.to_radians().cos()),
                    },
                    speed_mps: unit_random(seed, second, 2),
                    course_degrees: 360.0 * unit_random(seed, second, 3),
                }
            }
        }
    }
}

/// Great-circle distance in metres (haversine, mean Earth radius).
pub fn distance_m(from: Point, to: Point) -> f64 {
    const EARTH_RADIUS_M: f64 = 6_371_000.0;
    let (lat1, lat2) = (from.latitude.to_radians(), to.latitude.to_radians());
    let dlat = lat2 - lat1;
    let dlon = (to.longitude - from.longitude).to_radians();
    let a = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().asin()
}

/// The initial bearing from one point to another, degrees clockwise from north in [0, 360).
fn bearing_degrees(from: Point, to: Point) -> f64 {
    let (lat1, lat2) = (from.latitude.to_radians(), to.latitude.to_radians());
    let dlon = (to.longitude - from.longitude).to_radians();
    let y = dlon.sin() * lat2.cos();
    let x = lat1.cos() * lat2.sin() - lat1.sin() * lat2.cos() * dlon.cos();
    y.atan2(x).to_degrees().rem_euclid(360.0)
}

/// A number in [0, 1) drawn from the seed, the second and a draw number. SplitMix64: a few
/// lines that keep a route a pure function of time, where a stateful RNG crate would not.
fn unit_random(seed: u64, second: u64, draw: u64) -> f64 {
    fn splitmix64(x: u64) -> u64 {
        let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let bits = splitmix64(seed ^ splitmix64(second.wrapping_mul(4).wrapping_add(draw)));
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fix_point(state: RouteState) -> Point {
        match state {
            RouteState::Fix { point, .. } => point,
            RouteState::NoFix => panic!("expected a fix, got none"),
        }
    }

    #[test]
    fn a_drive_takes_its_distance_over_its_speed_and_passes_the_middle_halfway() {
        // 0.01° of latitude is 1112 m: 111.2 s at 10 m/s.
        let route = Route::starting_at(50.0, 4.0).drive_to(50.01, 4.0, 10.0);
        let seconds = route.duration().as_secs_f64();
        assert!((seconds - 111.19).abs() < 0.1, "{seconds}");
        let middle = fix_point(route.state_at(route.duration() / 2));
        assert!((middle.latitude - 50.005).abs() < 1e-9);
        match route.state_at(Duration::from_secs(1)) {
            RouteState::Fix {
                speed_mps,
                course_degrees,
                ..
            } => {
                assert_eq!(speed_mps, 10.0);
                assert!(course_degrees.abs() < 1e-9, "due north: {course_degrees}");
            }
            RouteState::NoFix => panic!("a drive has a fix"),
        }
        assert_eq!(
            fix_point(route.state_at(Duration::from_secs(1000))),
            route.end()
        );
    }

    #[test]
    fn dwells_stand_still_and_tunnels_have_no_fix() {
        let route = Route::starting_at(50.0, 4.0)
            .dwell(Duration::from_secs(30))
            .drive_without_fix_to(50.0, 4.01, 10.0)
            .dwell(Duration::from_secs(30));
        assert_eq!(
            route.state_at(Duration::from_secs(10)),
            RouteState::Fix {
                point: route.start(),
                speed_mps: 0.0,
                course_degrees: 0.0
            }
        );
        assert_eq!(route.state_at(Duration::from_secs(40)), RouteState::NoFix);
        let after = route.duration() - Duration::from_secs(1);
        assert_eq!(fix_point(route.state_at(after)), route.end());
        assert_eq!(route.waypoints(), vec![route.start(), route.end()]);
    }

    #[test]
    fn noise_stays_within_its_radius_is_seeded_and_changes_each_second() {
        let route = Route::starting_at(50.0, 4.0).noisy(Duration::from_secs(100), 25.0, 7);
        let again = Route::starting_at(50.0, 4.0).noisy(Duration::from_secs(100), 25.0, 7);
        let mut seen = Vec::new();
        for second in 0..100 {
            let at = Duration::from_millis(second * 1000 + 500);
            let point = fix_point(route.state_at(at));
            assert_eq!(point, fix_point(again.state_at(at)));
            assert_eq!(
                point,
                fix_point(route.state_at(Duration::from_secs(second)))
            );
            let off = distance_m(route.start(), point);
            assert!(off <= 25.01, "{off} m from the point");
            seen.push(off);
        }
        assert!(seen.iter().any(|off| *off > 15.0), "noise reaches out");
        seen.dedup();
        assert!(seen.len() > 90, "a new position almost every second");
        let other_seed = Route::starting_at(50.0, 4.0).noisy(Duration::from_secs(100), 25.0, 8);
        assert_ne!(
            fix_point(route.state_at(Duration::ZERO)),
            fix_point(other_seed.state_at(Duration::ZERO))
        );
    }

    #[test]
    fn the_demo_route_is_a_loop_of_a_few_minutes() {
        let demo = Route::builtin("demo").unwrap();
        assert_eq!(demo.start(), demo.end());
        let minutes = demo.duration().as_secs_f64() / 60.0;
        assert!((4.0..10.0).contains(&minutes), "{minutes} minutes");
        assert!(Route::builtin("elsewhere").is_none());
    }
}
