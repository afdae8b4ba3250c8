//! NMEA 0183 logs for gpsfake: a GPRMC and a GPGGA sentence per sample, CRLF-terminated, with
//! their checksums; [`samples_along`] samples a [`Route`] once a second (or at any interval).
//!
//! Used by the tests and the demo, never to parse a real receiver (gpsd does that). Pure: no IO.
//! Layout as gpsd 3.22 accepts it: latitude `ddmm.mmmm`, longitude `dddmm.mmmm`, time
//! `hhmmss.ss`, date `ddmmyy`. A sample without a fix writes RMC status `V` and GGA quality 0.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Timelike, Utc};

use super::route::{Point, Route, RouteState};

/// What the receiver reports at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub time: DateTime<Utc>,
    /// `None`: no fix (a tunnel).
    pub fix: Option<SampleFix>,
}

/// A position as the sentences carry it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleFix {
    pub latitude: f64,
    pub longitude: f64,
    pub speed_mps: f64,
    /// Degrees clockwise from true north.
    pub course_degrees: f64,
}

/// Knots per metre per second.
const KNOTS_PER_MPS: f64 = 3600.0 / 1852.0;

/// The route sampled every `interval` from its start to its end (both included), the first
/// sample at `start`.
pub fn samples_along(route: &Route, start: DateTime<Utc>, interval: Duration) -> Vec<Sample> {
    assert!(
        !interval.is_zero(),
        "a sampling interval must be more than 0"
    );
    let total = route.duration();
    let count = (total.as_nanos() / interval.as_nanos()) as u32;
    (0..=count)
        .map(|index| {
            let elapsed = interval * index;
            let time = start + TimeDelta::from_std(elapsed).unwrap_or(TimeDelta::zero());
            let fix = match route.state_at(elapsed) {
                RouteState::NoFix => None,
                RouteState::Fix {
                    point:
                        Point {
                            latitude,
                            longitude,
                        },
                    speed_mps,
                    course_degrees,
                } => Some(SampleFix {
                    latitude,
                    longitude,
                    speed_mps,
                    course_degrees,
                }),
            };
            Sample { time, fix }
        })
        .collect()
}

/// The log: for each sample its RMC and GGA sentences, each ending in CRLF.
pub fn write_log(samples: &[Sample]) -> String {
    let mut log = String::new();
    for sample in samples {
        for sentence in [rmc(sample), gga(sample)] {
            log.push_str(&sentence);
            log.push_str("\r\n");
        }
    }
    log
}

/// The GPRMC sentence (recommended minimum: time, status, position, speed, course, date),
/// without its line end.
pub fn rmc(sample: &Sample) -> String {
    let time = nmea_time(sample.time);
    let date = sample.time.format("%d%m%y");
    let body = match sample.fix {
        Some(fix) => format!(
            "GPRMC,{time},A,{},{},{:.1},{:.1},{date},,,A",
            latitude(fix.latitude),
            longitude(fix.longitude),
            fix.speed_mps * KNOTS_PER_MPS,
            fix.course_degrees,
        ),
        None => format!("GPRMC,{time},V,,,,,,,{date},,,N"),
    };
    sentence(&body)
}

/// The GPGGA sentence (fix data: time, position, quality, satellites, HDOP, altitude), without
/// its line end. The satellites (8), HDOP (0.9), altitude (58 m) and geoid separation (46 m)
/// are constant: nothing here reads them.
pub fn gga(sample: &Sample) -> String {
    let time = nmea_time(sample.time);
    let body = match sample.fix {
        Some(fix) => format!(
            "GPGGA,{time},{},{},1,08,0.9,58.0,M,46.0,M,,",
            latitude(fix.latitude),
            longitude(fix.longitude),
        ),
        None => format!("GPGGA,{time},,,,,0,00,99.9,,,,,,"),
    };
    sentence(&body)
}

/// `$body*CS`: the checksum is the XOR of every byte between `$` and `*`.
fn sentence(body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 4);
    out.push('$');
    out.push_str(body);
    write!(out, "*{:02X}", checksum(body)).expect("writing to a String cannot fail");
    out
}

/// The XOR of the bytes of a sentence's body (between `$` and `*`).
pub fn checksum(body: &str) -> u8 {
    body.bytes().fold(0, |sum, byte| sum ^ byte)
}

/// `hhmmss.ss`.
fn nmea_time(time: DateTime<Utc>) -> String {
    format!(
        "{:02}{:02}{:02}.{:02}",
        time.hour(),
        time.minute(),
        time.second(),
        time.nanosecond() / 10_000_000 % 100
    )
}

/// `ddmm.mmmm,N` or `S`.
fn latitude(degrees: f64) -> String {
    let hemisphere = if degrees < 0.0 { 'S' } else { 'N' };
    format!("{},{hemisphere}", degrees_minutes(degrees.abs(), 2))
}

/// `dddmm.mmmm,E` or `W`.
fn longitude(degrees: f64) -> String {
    let hemisphere = if degrees < 0.0 { 'W' } else { 'E' };
    format!("{},{hemisphere}", degrees_minutes(degrees.abs(), 3))
}

/// Whole degrees (zero-padded to `width`) then minutes with four decimals, rounded as a whole
/// so that 59.99995' carries into the next degree instead of printing 60.0000.
fn degrees_minutes(degrees: f64, width: usize) -> String {
    const UNITS_PER_MINUTE: u64 = 10_000;
    let units = (degrees * 60.0 * UNITS_PER_MINUTE as f64).round() as u64;
    let whole_degrees = units / (60 * UNITS_PER_MINUTE);
    let minutes = units % (60 * UNITS_PER_MINUTE);
    format!(
        "{whole_degrees:0width$}{:02}.{:04}",
        minutes / UNITS_PER_MINUTE,
        minutes % UNITS_PER_MINUTE
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 14, 9, 30, second).unwrap()
    }

    fn moving(latitude: f64, longitude: f64) -> Option<SampleFix> {
        Some(SampleFix {
            latitude,
            longitude,
            speed_mps: 12.5 / KNOTS_PER_MPS,
            course_degrees: 145.0,
        })
    }

    /// The sample sentences of the hardware brief (Grand-Place towards Place Flagey), which
    /// gpsd 3.22 accepted.
    #[test]
    fn writes_the_briefs_sample_sentences_byte_for_byte() {
        let samples = [
            Sample {
                time: at(0),
                fix: moving(50.84674, 4.35247),
            },
            Sample {
                time: at(1),
                fix: moving(50.845725, 4.353_513_33),
            },
        ];
        assert_eq!(
            write_log(&samples),
            "$GPRMC,093000.00,A,5050.8044,N,00421.1482,E,12.5,145.0,140325,,,A*63\r\n\
             $GPGGA,093000.00,5050.8044,N,00421.1482,E,1,08,0.9,58.0,M,46.0,M,,*58\r\n\
             $GPRMC,093001.00,A,5050.7435,N,00421.2108,E,12.5,145.0,140325,,,A*6B\r\n\
             $GPGGA,093001.00,5050.7435,N,00421.2108,E,1,08,0.9,58.0,M,46.0,M,,*50\r\n"
        );
    }

    #[test]
    fn no_fix_writes_status_v_and_quality_0_with_empty_positions() {
        let sample = Sample {
            time: at(3),
            fix: None,
        };
        let rmc = rmc(&sample);
        let gga = gga(&sample);
        assert!(
            rmc.starts_with("$GPRMC,093003.00,V,,,,,,,140325,,,N*"),
            "{rmc}"
        );
        assert!(
            gga.starts_with("$GPGGA,093003.00,,,,,0,00,99.9,,,,,,*"),
            "{gga}"
        );
        // RMC has 12 fields after its name, GGA 14, with or without a fix.
        let fields = |sentence: &str| sentence.split('*').next().unwrap().split(',').count() - 1;
        let with_fix = Sample {
            time: at(3),
            fix: moving(50.0, 4.0),
        };
        assert_eq!(fields(&rmc), 12);
        assert_eq!(fields(&super::rmc(&with_fix)), 12);
        assert_eq!(fields(&gga), 14);
        assert_eq!(fields(&super::gga(&with_fix)), 14);
    }

    #[test]
    fn every_checksum_is_the_xor_between_dollar_and_star() {
        let route = Route::starting_at(50.8279, 3.2649)
            .drive_to(50.8247, 3.2640, 8.0)
            .drive_without_fix_to(50.8276, 3.2600, 8.0)
            .noisy(Duration::from_secs(10), 20.0, 3);
        let log = write_log(&samples_along(&route, at(0), Duration::from_secs(1)));
        assert!(log.ends_with("\r\n"));
        for line in log.split_terminator("\r\n") {
            assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
            let (body, sum) = line
                .strip_prefix('$')
                .and_then(|rest| rest.split_once('*'))
                .unwrap_or_else(|| panic!("not a sentence: {line}"));
            let expected = body.bytes().fold(0u8, |sum, byte| sum ^ byte);
            assert_eq!(sum, format!("{expected:02X}"), "{line}");
        }
    }

    #[test]
    fn southern_and_western_positions_and_minute_carries() {
        let sample = |latitude, longitude| Sample {
            time: at(0),
            fix: moving(latitude, longitude),
        };
        let rmc = rmc(&sample(-33.8688, -70.5));
        assert!(rmc.contains(",A,3352.1280,S,07030.0000,W,"), "{rmc}");
        // 4.999999999° is 4° 59.99999994', which rounds to 5° 00.0000'.
        let rmc = super::rmc(&sample(0.5, 4.999_999_999));
        assert!(rmc.contains(",0030.0000,N,00500.0000,E,"), "{rmc}");
    }

    #[test]
    fn samples_follow_the_route_once_a_second() {
        let route = Route::starting_at(50.0, 4.0)
            .dwell(Duration::from_secs(2))
            .drive_without_fix_to(50.0, 4.001, 10.0)
            .dwell(Duration::from_secs(2));
        let samples = samples_along(&route, at(0), Duration::from_secs(1));
        // 2 s standing, 71.5 m at 10 m/s, 2 s standing: samples at 0..=11 s.
        assert_eq!(samples.len(), 12);
        assert_eq!(samples[0].time, at(0));
        assert_eq!(samples[11].time, at(11));
        assert!(samples[..2].iter().all(|sample| sample.fix.is_some()));
        assert!(samples[2..10].iter().all(|sample| sample.fix.is_none()));
        for sample in &samples[10..] {
            let fix = sample.fix.expect("standing at the end with a fix");
            assert_eq!((fix.latitude, fix.longitude), (50.0, 4.001));
        }
    }
}
