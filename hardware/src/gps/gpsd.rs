//! [`GpsdSource`]: positions from gpsd's JSON protocol, with the `gpsd_proto` crate's types.
//!
//! A dedicated thread connects, asks gpsd to watch (`?WATCH={"enable":true,"json":true}`) and
//! reads its reports line by line with a read timeout, so that it notices both a stop and a
//! silent receiver; TPV reports become the published [`GpsState`]. When gpsd cannot be reached
//! or goes away the state is no fix, the health says why, and the thread retries with a backoff
//! (doubling, capped at a few seconds) until gpsd is back.
//!
//! The thread reads lines itself instead of calling `gpsd_proto::handshake`/`get_data`: those
//! cannot tell a closed connection (an empty read) from a bad line, keep no partial line across
//! a read timeout, insist on gpsd's exact greeting order, and return `gpsd_proto::GpsdError`,
//! which is not a `std::error::Error`. Every line is parsed with serde_json as a
//! `gpsd_proto::UnifiedResponse`, so the errors are serde_json's. A line that does not parse —
//! an unknown class (`TOFF`, `ERROR`), a `DEVICE` whose `bps` exceeds the crate's `u16`, broken
//! JSON — or a TPV with an impossible position or time is skipped, counted in the health and
//! logged (the first at once, then at most one warning a minute with the count); the stream
//! goes on.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use gpsd_proto::{Mode, PROTO_MAJOR_MIN, Tpv, UnifiedResponse};
use thiserror::Error;
use tokio::sync::watch;

use super::{FixMode, GpsFix, GpsHealth, GpsLink, GpsState, PositionSource};

/// gpsd's port.
pub const DEFAULT_GPSD_PORT: u16 = 2947;

/// A line longer than this is not gpsd's (its longest, SKY with many satellites, is a few KiB).
const MAX_LINE_BYTES: usize = 64 * 1024;

/// At most one warning about skipped lines per this interval; the others go to debug.
const SKIP_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// How the source talks to gpsd. The defaults suit a receiver reporting once a second.
#[derive(Debug, Clone)]
pub struct GpsdOptions {
    /// How long a connection attempt may take.
    pub connect_timeout: Duration,
    /// How long gpsd may take to greet (its `VERSION` line) once connected.
    pub greeting_timeout: Duration,
    /// How often the thread looks up from a quiet connection (to stop, or to notice silence).
    pub read_timeout: Duration,
    /// Without a TPV report for this long, the fix is stale: the state becomes no fix.
    pub stale_after: Duration,
    /// The first wait before reconnecting; it doubles after each failed attempt…
    pub first_backoff: Duration,
    /// …up to this.
    pub max_backoff: Duration,
}

impl Default for GpsdOptions {
    fn default() -> GpsdOptions {
        GpsdOptions {
            connect_timeout: Duration::from_secs(2),
            greeting_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_millis(250),
            stale_after: Duration::from_secs(5),
            first_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(2),
        }
    }
}

/// A real receiver through gpsd. Dropping it ends its thread (within one read timeout).
pub struct GpsdSource {
    address: String,
    state: Arc<watch::Sender<GpsState>>,
    health: Arc<watch::Sender<GpsHealth>>,
    /// Never sent on: its drop tells the thread to end.
    _stop: mpsc::Sender<()>,
}

impl GpsdSource {
    /// Follows gpsd at `address` (`host:port`) with the default options.
    pub fn start(address: impl Into<String>) -> io::Result<GpsdSource> {
        GpsdSource::start_with(address, GpsdOptions::default())
    }

    /// Follows gpsd at `address` (`host:port`). Returns at once; the state is no fix and the
    /// health "connecting" until gpsd answers. Fails only when the thread cannot be started.
    pub fn start_with(address: impl Into<String>, options: GpsdOptions) -> io::Result<GpsdSource> {
        let address = address.into();
        let state = Arc::new(watch::Sender::new(GpsState::NoFix));
        let health = Arc::new(watch::Sender::new(GpsHealth {
            link: GpsLink::Connecting {
                address: address.clone(),
            },
            skipped_lines: 0,
        }));
        let (stop_sender, stop) = mpsc::channel();
        let follower = Follower {
            address: address.clone(),
            options,
            state: state.clone(),
            health: health.clone(),
            stop,
            skipped: SkippedLines::default(),
            last_report: Instant::now(),
        };
        std::thread::Builder::new()
            .name("gpsd".into())
            .spawn(move || follower.run())?;
        Ok(GpsdSource {
            address,
            state,
            health,
            _stop: stop_sender,
        })
    }

    /// The address it follows, as given.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Follows the health as it changes (tests await "unreachable" and "connected" with it).
    pub fn subscribe_health(&self) -> watch::Receiver<GpsHealth> {
        self.health.subscribe()
    }
}

impl PositionSource for GpsdSource {
    fn current(&self) -> GpsState {
        self.state.borrow().clone()
    }

    fn subscribe(&self) -> watch::Receiver<GpsState> {
        self.state.subscribe()
    }

    fn health(&self) -> GpsHealth {
        self.health.borrow().clone()
    }
}

/// Why a connection to gpsd ended (or never began).
#[derive(Debug, Error)]
enum SessionError {
    #[error("cannot resolve {address}")]
    Resolve {
        address: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot connect to gpsd at {address}")]
    Connect {
        address: String,
        #[source]
        source: io::Error,
    },
    #[error("gpsd at {address} did not greet as gpsd: {reason}")]
    Greeting { address: String, reason: String },
    #[error("gpsd at {address} closed the connection")]
    Closed { address: String },
    #[error("cannot talk to gpsd at {address}")]
    Io {
        address: String,
        #[source]
        source: io::Error,
    },
}

impl SessionError {
    /// The short reason the health shows after "gpsd at … not reachable: ".
    fn reason(&self) -> String {
        match self {
            SessionError::Resolve { source, .. } => format!("cannot resolve the address: {source}"),
            SessionError::Connect { source, .. } | SessionError::Io { source, .. } => {
                io_reason(source)
            }
            SessionError::Greeting { reason, .. } => format!("unexpected greeting: {reason}"),
            SessionError::Closed { .. } => "it closed the connection".into(),
        }
    }
}

/// "connection refused" rather than "Connection refused (os error 111)".
fn io_reason(error: &io::Error) -> String {
    let text = error.to_string();
    let text = match error.raw_os_error() {
        Some(code) => text
            .trim_end_matches(&format!(" (os error {code})"))
            .to_string(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// The thread's side: what it publishes and what it counts.
struct Follower {
    address: String,
    options: GpsdOptions,
    state: Arc<watch::Sender<GpsState>>,
    health: Arc<watch::Sender<GpsHealth>>,
    stop: mpsc::Receiver<()>,
    skipped: SkippedLines,
    /// When the last TPV report came (or the session began).
    last_report: Instant,
}

impl Follower {
    fn run(mut self) {
        let _span = tracing::info_span!("gpsd", address = %self.address).entered();
        let mut backoff = self.options.first_backoff;
        loop {
            let mut greeted = false;
            match self.session(&mut greeted) {
                Ok(()) => return,
                Err(error) => {
                    self.set_link(
                        GpsLink::Unreachable {
                            address: self.address.clone(),
                            reason: error.reason(),
                        },
                        Some(&error),
                    );
                    self.publish(GpsState::NoFix);
                }
            }
            if greeted {
                // gpsd was there: it may just have restarted, so try again soon.
                backoff = self.options.first_backoff;
            }
            match self.stop.recv_timeout(backoff) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
            backoff = (backoff * 2).min(self.options.max_backoff);
        }
    }

    fn stopped(&self) -> bool {
        !matches!(self.stop.try_recv(), Err(TryRecvError::Empty))
    }

    /// One connection: connect, greet, watch, read reports until it fails or (`Ok`) the owner
    /// stops.
    fn session(&mut self, greeted: &mut bool) -> Result<(), SessionError> {
        let stream = self.connect()?;
        let io_error = |source| SessionError::Io {
            address: self.address.clone(),
            source,
        };
        stream
            .set_read_timeout(Some(self.options.read_timeout))
            .map_err(io_error)?;
        let mut writer = stream.try_clone().map_err(io_error)?;
        let mut lines = Lines::new(stream);

        let version = match self.greeting(&mut lines)? {
            Some(version) => version,
            None => return Ok(()),
        };
        *greeted = true;
        writer
            .write_all(gpsd_proto::ENABLE_WATCH_CMD.as_bytes())
            .and_then(|()| writer.flush())
            .map_err(|source| SessionError::Io {
                address: self.address.clone(),
                source,
            })?;
        tracing::info!(release = %version.release, "watching gpsd");
        self.last_report = Instant::now();
        self.set_link(
            GpsLink::Connected {
                address: self.address.clone(),
            },
            None,
        );

        loop {
            if self.stopped() {
                return Ok(());
            }
            match lines.next().map_err(|source| SessionError::Io {
                address: self.address.clone(),
                source,
            })? {
                Line::Complete(line) => self.handle_line(&line),
                Line::TooLong => self.skip(b"", "a line longer than 64 KiB"),
                Line::Quiet => {}
                Line::Closed => {
                    return Err(SessionError::Closed {
                        address: self.address.clone(),
                    });
                }
            }
            self.check_silence();
        }
    }

    fn connect(&self) -> Result<TcpStream, SessionError> {
        let addresses: Vec<SocketAddr> = self
            .address
            .to_socket_addrs()
            .map_err(|source| SessionError::Resolve {
                address: self.address.clone(),
                source,
            })?
            .collect();
        let mut last_error = io::Error::new(io::ErrorKind::NotFound, "no address");
        for address in addresses {
            match TcpStream::connect_timeout(&address, self.options.connect_timeout) {
                Ok(stream) => return Ok(stream),
                Err(error) => last_error = error,
            }
        }
        Err(SessionError::Connect {
            address: self.address.clone(),
            source: last_error,
        })
    }

    /// Waits for gpsd's `VERSION` line; `None` when the owner stopped meanwhile.
    fn greeting(&self, lines: &mut Lines) -> Result<Option<gpsd_proto::Version>, SessionError> {
        let deadline = Instant::now() + self.options.greeting_timeout;
        let greeting_error = |reason: String| SessionError::Greeting {
            address: self.address.clone(),
            reason,
        };
        loop {
            if self.stopped() {
                return Ok(None);
            }
            let line = match lines.next().map_err(|source| SessionError::Io {
                address: self.address.clone(),
                source,
            })? {
                Line::Complete(line) => line,
                Line::Quiet if Instant::now() < deadline => continue,
                Line::Quiet => {
                    return Err(greeting_error(format!(
                        "none within {} s",
                        self.options.greeting_timeout.as_secs_f32()
                    )));
                }
                Line::TooLong => return Err(greeting_error("a line longer than 64 KiB".into())),
                Line::Closed => {
                    return Err(SessionError::Closed {
                        address: self.address.clone(),
                    });
                }
            };
            return match serde_json::from_slice::<UnifiedResponse>(&line) {
                Ok(UnifiedResponse::Version(version)) if version.proto_major >= PROTO_MAJOR_MIN => {
                    Ok(Some(version))
                }
                Ok(UnifiedResponse::Version(version)) => Err(greeting_error(format!(
                    "protocol {}.{}, older than {PROTO_MAJOR_MIN}",
                    version.proto_major, version.proto_minor
                ))),
                Ok(_) | Err(_) => Err(greeting_error(excerpt(&line))),
            };
        }
    }

    fn handle_line(&mut self, line: &[u8]) {
        let line = line.trim_ascii();
        if line.is_empty() {
            return;
        }
        match serde_json::from_slice::<UnifiedResponse>(line) {
            Ok(UnifiedResponse::Tpv(tpv)) => match state_from_tpv(&tpv, Utc::now()) {
                Ok(Some(state)) => {
                    self.last_report = Instant::now();
                    self.set_link(
                        GpsLink::Connected {
                            address: self.address.clone(),
                        },
                        None,
                    );
                    self.publish(state);
                }
                Ok(None) => {
                    // A fix without a time: gpsd does send these right after connecting. The
                    // next report has one; until then the state stays what it was.
                    self.last_report = Instant::now();
                    tracing::debug!("a TPV with a fix but no time; waiting for the next");
                }
                Err(why) => self.skip(line, &why),
            },
            Ok(_) => {}
            Err(error) => self.skip(line, &error.to_string()),
        }
    }

    fn skip(&mut self, line: &[u8], why: &str) {
        self.skipped.count += 1;
        let count = self.skipped.count;
        self.health
            .send_modify(|health| health.skipped_lines = count);
        let now = Instant::now();
        let due = self
            .skipped
            .last_warning
            .is_none_or(|at| now.duration_since(at) >= SKIP_WARNING_INTERVAL);
        if due {
            let since = count - self.skipped.count_at_warning;
            tracing::warn!(
                skipped_since_last_warning = since,
                skipped_total = count,
                "skipped a line from gpsd that cannot be read ({why}): {}",
                excerpt(line)
            );
            self.skipped.last_warning = Some(now);
            self.skipped.count_at_warning = count;
        } else {
            tracing::debug!("skipped a line from gpsd ({why}): {}", excerpt(line));
        }
    }

    /// No TPV for `stale_after`: the last fix is no longer where the bus is.
    fn check_silence(&mut self) {
        if self.last_report.elapsed() < self.options.stale_after {
            return;
        }
        self.set_link(
            GpsLink::Silent {
                address: self.address.clone(),
                seconds: self.options.stale_after.as_secs_f64().ceil() as u64,
            },
            None,
        );
        self.publish(GpsState::NoFix);
    }

    /// Publishes a state; the health that explains it is set before, so that whoever sees the
    /// state sees its health too.
    fn publish(&self, state: GpsState) {
        self.state.send_if_modified(|current| {
            let changed = *current != state;
            *current = state;
            changed
        });
    }

    /// Sets the link's state; logs it when it changes (so a gpsd that stays away is one
    /// warning, not one per retry).
    fn set_link(&self, link: GpsLink, error: Option<&SessionError>) {
        let mut previous = None;
        self.health.send_if_modified(|health| {
            if health.link == link {
                return false;
            }
            previous = Some(std::mem::replace(&mut health.link, link.clone()));
            true
        });
        let Some(previous) = previous else {
            if let Some(error) = error {
                tracing::debug!(error = %error_chain(error), "gpsd still not reachable");
            }
            return;
        };
        match (&link, error) {
            (GpsLink::Unreachable { .. }, Some(error)) => {
                tracing::warn!(error = %error_chain(error), "gpsd not reachable; no fix, retrying");
            }
            (GpsLink::Silent { seconds, .. }, _) => {
                tracing::warn!("no position report from gpsd for {seconds} s; no fix");
            }
            (GpsLink::Connected { .. }, _) if matches!(previous, GpsLink::Silent { .. }) => {
                tracing::info!("gpsd reports positions again");
            }
            _ => {}
        }
    }
}

/// The state a TPV report gives: `Ok(None)` for a fix without a time (skipped, not counted),
/// `Err` for a report that cannot be true (counted as an unreadable line).
fn state_from_tpv(tpv: &Tpv, received_at: DateTime<Utc>) -> Result<Option<GpsState>, String> {
    let mode = match tpv.mode {
        Mode::NoFix => return Ok(Some(GpsState::NoFix)),
        Mode::Fix2d => FixMode::TwoD,
        Mode::Fix3d => FixMode::ThreeD,
    };
    let (Some(latitude), Some(longitude)) = (tpv.lat, tpv.lon) else {
        return Ok(Some(GpsState::NoFix));
    };
    // A range holds no NaN or infinity.
    if !(-90.0..=90.0).contains(&latitude) || !(-180.0..=180.0).contains(&longitude) {
        return Err(format!("a position out of range: {latitude}, {longitude}"));
    }
    let Some(time) = &tpv.time else {
        return Ok(None);
    };
    let at = DateTime::parse_from_rfc3339(time)
        .map_err(|_| format!("a time that is not RFC 3339: {time:?}"))?
        .with_timezone(&Utc);
    let speed_mps = tpv
        .speed
        .map(f64::from)
        .filter(|speed| speed.is_finite() && *speed >= 0.0);
    Ok(Some(GpsState::Fix(GpsFix {
        latitude,
        longitude,
        speed_mps,
        mode,
        at,
        received_at,
    })))
}

/// The start of a line, for a log message.
fn excerpt(line: &[u8]) -> String {
    const SHOWN: usize = 120;
    let text = String::from_utf8_lossy(&line[..line.len().min(SHOWN)]);
    let text = text.trim_end();
    if line.len() > SHOWN {
        format!("{text}…")
    } else {
        text.to_string()
    }
}

/// An error with its causes (`busloket_sync::error_chain`'s twin: this crate depends on nothing
/// of ours).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[derive(Default)]
struct SkippedLines {
    count: u64,
    count_at_warning: u64,
    last_warning: Option<Instant>,
}

/// Lines from a socket with a read timeout, keeping a partial line across timeouts.
struct Lines {
    reader: BufReader<TcpStream>,
    partial: Vec<u8>,
    /// After a line too long: dropping bytes up to the next line end.
    discarding: bool,
}

enum Line {
    Complete(Vec<u8>),
    /// A line longer than [`MAX_LINE_BYTES`] (its rest is dropped as it comes).
    TooLong,
    /// Nothing complete within the read timeout.
    Quiet,
    Closed,
}

impl Lines {
    fn new(stream: TcpStream) -> Lines {
        Lines {
            reader: BufReader::new(stream),
            partial: Vec::new(),
            discarding: false,
        }
    }

    fn next(&mut self) -> io::Result<Line> {
        loop {
            let available = match self.reader.fill_buf() {
                Ok(available) => available,
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    return Ok(Line::Quiet);
                }
                Err(error) => return Err(error),
            };
            if available.is_empty() {
                return Ok(Line::Closed);
            }
            let (taken, line_end) = match available.iter().position(|&byte| byte == b'\n') {
                Some(index) => (index + 1, true),
                None => (available.len(), false),
            };
            if !self.discarding {
                self.partial.extend_from_slice(&available[..taken]);
            }
            self.reader.consume(taken);
            if line_end {
                if std::mem::take(&mut self.discarding) {
                    continue;
                }
                return Ok(Line::Complete(std::mem::take(&mut self.partial)));
            }
            if self.partial.len() > MAX_LINE_BYTES {
                self.partial.clear();
                self.discarding = true;
                return Ok(Line::TooLong);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn tpv(json: &str) -> Tpv {
        match serde_json::from_str::<UnifiedResponse>(json).unwrap() {
            UnifiedResponse::Tpv(tpv) => tpv,
            other => panic!("not a TPV: {other:?}"),
        }
    }

    fn received() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 9, 30, 7).unwrap()
    }

    #[test]
    fn a_3d_tpv_is_a_fix_with_gps_time_and_receipt_time() {
        let report = tpv(
            r#"{"class":"TPV","device":"/dev/pts/1","mode":3,"time":"2025-03-14T09:30:05.000Z","lat":50.841663333,"lon":4.357683333,"alt":58.0,"speed":6.431}"#,
        );
        let Some(GpsState::Fix(fix)) = state_from_tpv(&report, received()).unwrap() else {
            panic!("a 3D TPV with a position is a fix");
        };
        assert_eq!(fix.latitude, 50.841663333);
        assert_eq!(fix.longitude, 4.357683333);
        assert_eq!(fix.mode, FixMode::ThreeD);
        assert!((fix.speed_mps.unwrap() - 6.431).abs() < 1e-5);
        assert_eq!(fix.at, Utc.with_ymd_and_hms(2025, 3, 14, 9, 30, 5).unwrap());
        assert_eq!(fix.received_at, received());
    }

    #[test]
    fn no_fix_modes_and_missing_positions_are_no_fix() {
        for json in [
            r#"{"class":"TPV","device":"/dev/pts/1","mode":1}"#,
            r#"{"class":"TPV","mode":0,"lat":50.0,"lon":4.0,"time":"2025-03-14T09:30:05Z"}"#,
            r#"{"class":"TPV","mode":2,"time":"2025-03-14T09:30:05Z"}"#,
            r#"{"class":"TPV","mode":3,"lat":50.0,"time":"2025-03-14T09:30:05Z"}"#,
        ] {
            assert_eq!(
                state_from_tpv(&tpv(json), received()),
                Ok(Some(GpsState::NoFix)),
                "{json}"
            );
        }
    }

    #[test]
    fn a_2d_fix_without_speed_and_a_fix_without_time() {
        let report =
            tpv(r#"{"class":"TPV","mode":2,"lat":-33.9,"lon":18.4,"time":"2025-03-14T09:30:05Z"}"#);
        let Some(GpsState::Fix(fix)) = state_from_tpv(&report, received()).unwrap() else {
            panic!("a 2D TPV with a position is a fix");
        };
        assert_eq!((fix.mode, fix.speed_mps), (FixMode::TwoD, None));
        let untimed = tpv(r#"{"class":"TPV","mode":3,"lat":50.0,"lon":4.0}"#);
        assert_eq!(state_from_tpv(&untimed, received()), Ok(None));
    }

    #[test]
    fn impossible_positions_and_times_are_refused() {
        let out_of_range =
            tpv(r#"{"class":"TPV","mode":3,"lat":91.0,"lon":4.0,"time":"2025-03-14T09:30:05Z"}"#);
        assert!(state_from_tpv(&out_of_range, received()).is_err());
        let bad_time = tpv(r#"{"class":"TPV","mode":3,"lat":50.0,"lon":4.0,"time":"yesterday"}"#);
        let error = state_from_tpv(&bad_time, received()).unwrap_err();
        assert!(error.contains("yesterday"), "{error}");
    }

    #[test]
    fn the_quirks_of_gpsd_proto_1_0_are_errors_to_skip() {
        for line in [
            r#"{"class":"TOFF","device":"/dev/pts/1","real_sec":1,"real_nsec":0,"clock_sec":1,"clock_nsec":0,"precision":-1}"#,
            r#"{"class":"ERROR","message":"Unrecognized request"}"#,
            r#"{"class":"DEVICE","path":"/dev/ttyACM0","bps":115200}"#,
            r#"{"class":"TPV","mode":3,"lat":"#,
        ] {
            assert!(
                serde_json::from_str::<UnifiedResponse>(line).is_err(),
                "gpsd_proto reads {line} now: the skipping may be unneeded"
            );
        }
    }

    #[test]
    fn connection_errors_read_as_a_short_reason() {
        let refused = SessionError::Connect {
            address: "127.0.0.1:2947".into(),
            source: io::Error::from(io::ErrorKind::ConnectionRefused),
        };
        let health = GpsHealth {
            link: GpsLink::Unreachable {
                address: "127.0.0.1:2947".into(),
                reason: refused.reason(),
            },
            skipped_lines: 0,
        };
        assert_eq!(
            health.to_string(),
            "gpsd at 127.0.0.1:2947 not reachable: connection refused"
        );
    }
}
