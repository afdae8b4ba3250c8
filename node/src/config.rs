//! The node's configuration: a raw TOML shape ([`RawConfig`]) validated once into [`Config`].
//!
//! Every option is documented in `deploy/node.example.toml`. Simulated devices are allowed only
//! when `demo = true`, so a production configuration can never fall back to a simulator silently.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use busloket_hardware::gps::{DEFAULT_GPSD_PORT, Route};
use busloket_sync::terms::{DeviceId, StopId};
use serde::Deserialize;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The file as written by a person; see `deploy/node.example.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: SocketAddr,
    device_id: String,
    data_dir: PathBuf,
    key_file: PathBuf,
    #[serde(default)]
    demo: bool,
    #[serde(default)]
    stop: Option<String>,
    #[serde(default)]
    catalogue: Option<PathBuf>,
    #[serde(default = "default_idle_seconds")]
    kiosk_idle_seconds: u64,
    #[serde(default)]
    stations: Vec<RawStation>,
    staff_desk: RawDesk,
    card_readers: RawReaders,
    receipt_printer: RawPrinter,
    #[serde(default)]
    staff: Vec<RawStaff>,
    gps: RawGps,
    #[serde(default)]
    sync: Option<RawSync>,
}

fn default_idle_seconds() -> u64 {
    180
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStation {
    id: String,
    name: String,
    reader: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDesk {
    reader: String,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
enum RawReaders {
    Simulated,
    Pcsc {
        #[serde(default)]
        trust_anchors: Vec<PathBuf>,
        #[serde(default)]
        allow_test_roots: bool,
    },
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
enum RawPrinter {
    Simulated {
        name: String,
        output_dir: PathBuf,
    },
    Tcp {
        name: String,
        address: SocketAddr,
        columns: Option<usize>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
enum RawGps {
    Simulated {
        latitude: f64,
        longitude: f64,
    },
    Route {
        #[serde(default)]
        builtin: Option<String>,
        #[serde(default)]
        speed_kmh: Option<f64>,
        #[serde(default)]
        waypoints: Vec<RawWaypoint>,
    },
    Gpsd {
        #[serde(default)]
        address: Option<String>,
    },
    None,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWaypoint {
    latitude: f64,
    longitude: f64,
    #[serde(default)]
    dwell_seconds: u64,
    #[serde(default)]
    tunnel: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStaff {
    username: String,
    display_name: String,
    password_hash: String,
    #[serde(default)]
    eid: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSync {
    bundle_dir: PathBuf,
    key_dir: PathBuf,
    #[serde(default = "default_sync_interval")]
    interval_seconds: u64,
    #[serde(default)]
    retention: Option<String>,
    #[serde(default = "default_true")]
    wifi_tls: bool,
}

fn default_sync_interval() -> u64 {
    60
}

fn default_true() -> bool {
    true
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub device_id: DeviceId,
    pub data_dir: PathBuf,
    pub key_file: PathBuf,
    /// Demo mode: simulated devices, the demo control page and the demo citizens.
    pub demo: bool,
    pub stop: Option<StopId>,
    pub catalogue: Option<PathBuf>,
    /// After this long without a touch, the kiosk warns; a minute later the session ends.
    pub kiosk_idle: Duration,
    pub stations: Vec<Station>,
    pub desk_reader: String,
    pub card_readers: ReadersConfig,
    pub receipt_printer: PrinterConfig,
    pub staff: Vec<StaffAccount>,
    pub gps: GpsConfig,
    /// Syncing with the city's hub; `None`: the node runs unsynced (the demo, tests).
    pub sync: Option<SyncConfig>,
}

/// `[sync]`: the device's enrolment and how the node syncs with the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncConfig {
    /// The bundle from `busloket-provision device enroll` (public material only).
    pub bundle_dir: PathBuf,
    /// Where `device request` left `device.key` and `wifi.key`.
    pub key_dir: PathBuf,
    /// How often the node syncs when nothing else asks it to.
    pub interval: Duration,
    /// How long citizen data stays on the bus once the hub has a finished request.
    pub retention: Retention,
    /// Serve the bus Wi-Fi over HTTPS with the bundle's Wi-Fi certificate (default). `false`
    /// only on a lab bench.
    pub wifi_tls: bool,
}

/// When the bus purges a finished request the hub has acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// At the end of the day it finished: requests finished before today (local time) go.
    EndOfDay,
    /// This many hours after it finished.
    Hours(u32),
}

impl Retention {
    fn parse(text: &str) -> Result<Retention, String> {
        let text = text.trim();
        if text == "end-of-day" {
            return Ok(Retention::EndOfDay);
        }
        text.strip_suffix('h')
            .and_then(|hours| hours.trim().parse::<u32>().ok())
            .filter(|hours| (1..=24 * 366).contains(hours))
            .map(Retention::Hours)
            .ok_or_else(|| {
                format!(
                    "sync.retention: `{text}` must be \"end-of-day\" or a number of hours such as \"48h\" (1 to 8784)"
                )
            })
    }
}

/// A kiosk station: one tablet with its card reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Station {
    pub id: String,
    pub name: String,
    pub reader: String,
}

#[derive(Debug, Clone)]
pub enum ReadersConfig {
    /// The demo's simulated readers with the made-up citizens.
    Simulated,
    /// Real readers through pcscd; the national register's certificate must chain to one of
    /// these roots (DER certificates, already checked to parse).
    Pcsc { trust_anchors: Vec<Vec<u8>> },
}

#[derive(Debug, Clone)]
pub enum PrinterConfig {
    Simulated {
        name: String,
        output_dir: PathBuf,
    },
    Tcp {
        name: String,
        address: SocketAddr,
        columns: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum GpsConfig {
    /// Parked at a fixed position (demo only).
    Simulated {
        latitude: f64,
        longitude: f64,
    },
    /// Driving a route in a loop (demo only).
    Route {
        route: Route,
    },
    /// A real receiver through gpsd at `address` (`host:port`, the port defaulted to 2947).
    Gpsd {
        address: String,
    },
    None,
}

/// A local staff account (eID sign-in comes with the eID issue).
#[derive(Debug, Clone)]
pub struct StaffAccount {
    pub username: String,
    pub display_name: String,
    /// An argon2 PHC string, made by `busloket-provision staff hash`.
    pub password_hash: String,
    /// The clerk's own eID, as a binding from `busloket-provision staff eid`: with it the clerk
    /// signs in with card and PIN at the desk reader.
    pub eid: Option<String>,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(path, &text)
    }

    /// Parses and validates; relative paths are taken relative to the file's directory.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|err| ConfigError::Syntax {
            path: path.to_owned(),
            message: err.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let device_id = raw
            .device_id
            .parse()
            .map_err(|err| invalid(format!("device_id: {err}")))?;
        let stop = raw
            .stop
            .map(|stop| stop.parse())
            .transpose()
            .map_err(|err| invalid(format!("stop: {err}")))?;
        if raw.stations.is_empty() {
            return Err(invalid(
                "at least one kiosk station is needed under [[stations]]".into(),
            ));
        }
        let mut seen = BTreeSet::new();
        for station in &raw.stations {
            let valid_id = !station.id.is_empty()
                && station
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !valid_id {
                return Err(invalid(format!(
                    "station id `{}` may hold only letters, digits and `-`",
                    station.id
                )));
            }
            if !seen.insert(station.id.clone()) {
                return Err(invalid(format!(
                    "station id `{}` is used twice",
                    station.id
                )));
            }
        }
        let receipt_printer = match raw.receipt_printer {
            RawPrinter::Simulated { name, output_dir } => {
                if !raw.demo {
                    return Err(invalid(
                        "receipt_printer.kind = \"simulated\" is allowed only with demo = true"
                            .into(),
                    ));
                }
                PrinterConfig::Simulated {
                    name,
                    output_dir: base.join(output_dir),
                }
            }
            RawPrinter::Tcp {
                name,
                address,
                columns,
            } => PrinterConfig::Tcp {
                name,
                address,
                columns: columns.unwrap_or(48),
            },
        };
        let gps = match raw.gps {
            RawGps::Simulated {
                latitude,
                longitude,
            } => {
                if !raw.demo {
                    return Err(invalid(
                        "gps.kind = \"simulated\" is allowed only with demo = true".into(),
                    ));
                }
                GpsConfig::Simulated {
                    latitude,
                    longitude,
                }
            }
            RawGps::Route {
                builtin,
                speed_kmh,
                waypoints,
            } => {
                if !raw.demo {
                    return Err(invalid(
                        "gps.kind = \"route\" is allowed only with demo = true".into(),
                    ));
                }
                GpsConfig::Route {
                    route: simulated_route(builtin, speed_kmh, &waypoints).map_err(invalid)?,
                }
            }
            RawGps::Gpsd { address } => GpsConfig::Gpsd {
                address: gpsd_address(address.as_deref().unwrap_or(DEFAULT_GPSD_ADDRESS))
                    .map_err(invalid)?,
            },
            RawGps::None => GpsConfig::None,
        };
        let card_readers = match raw.card_readers {
            RawReaders::Simulated => {
                if !raw.demo {
                    return Err(invalid(
                        "card_readers.kind = \"simulated\" is allowed only with demo = true".into(),
                    ));
                }
                ReadersConfig::Simulated
            }
            RawReaders::Pcsc {
                trust_anchors,
                allow_test_roots,
            } => ReadersConfig::Pcsc {
                trust_anchors: trust_anchors_from(base, &trust_anchors, allow_test_roots)
                    .map_err(invalid)?,
            },
        };
        let staff = raw
            .staff
            .into_iter()
            .map(|staff| {
                if !staff.password_hash.starts_with("$argon2") {
                    return Err(invalid(format!(
                        "staff `{}`: password_hash must be an argon2 hash (make one with `busloket-provision staff hash`)",
                        staff.username
                    )));
                }
                if let Some(eid) = &staff.eid
                    && !busloket_sync::staff::is_eid_binding(eid)
                {
                    return Err(invalid(format!(
                        "staff `{}`: eid must be 64 lowercase hex digits (make it with `busloket-provision staff eid`)",
                        staff.username
                    )));
                }
                Ok(StaffAccount {
                    username: staff.username,
                    display_name: staff.display_name,
                    password_hash: staff.password_hash,
                    eid: staff.eid,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if raw.kiosk_idle_seconds < 30 {
            return Err(invalid("kiosk_idle_seconds must be at least 30".into()));
        }
        let sync = raw
            .sync
            .map(|sync| {
                if !(5..=3600).contains(&sync.interval_seconds) {
                    return Err(invalid(
                        "sync.interval_seconds must be between 5 and 3600".into(),
                    ));
                }
                Ok(SyncConfig {
                    bundle_dir: base.join(sync.bundle_dir),
                    key_dir: base.join(sync.key_dir),
                    interval: Duration::from_secs(sync.interval_seconds),
                    retention: sync
                        .retention
                        .as_deref()
                        .map(Retention::parse)
                        .transpose()
                        .map_err(invalid)?
                        .unwrap_or(Retention::EndOfDay),
                    wifi_tls: sync.wifi_tls,
                })
            })
            .transpose()?;
        Ok(Config {
            listen: raw.listen,
            device_id,
            data_dir: base.join(raw.data_dir),
            key_file: base.join(raw.key_file),
            demo: raw.demo,
            stop,
            catalogue: raw.catalogue.map(|path| base.join(path)),
            kiosk_idle: Duration::from_secs(raw.kiosk_idle_seconds),
            stations: raw
                .stations
                .into_iter()
                .map(|s| Station {
                    id: s.id,
                    name: s.name,
                    reader: s.reader,
                })
                .collect(),
            desk_reader: raw.staff_desk.reader,
            card_readers,
            receipt_printer,
            staff,
            gps,
            sync,
        })
    }

    pub fn station(&self, id: &str) -> Option<&Station> {
        self.stations.iter().find(|station| station.id == id)
    }
}

/// gpsd on this machine.
const DEFAULT_GPSD_ADDRESS: &str = "127.0.0.1:2947";

/// `host:port` for gpsd: a host or address without a port gets gpsd's port.
fn gpsd_address(text: &str) -> Result<String, String> {
    let text = text.trim();
    let refuse = || {
        format!(
            "gps.address: `{text}` must be a host or an IP address, with an optional port (`127.0.0.1:2947`)"
        )
    };
    if text.parse::<SocketAddr>().is_ok() {
        return Ok(text.to_string());
    }
    if let Ok(ip) = text.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, DEFAULT_GPSD_PORT).to_string());
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (host, port.parse::<u16>().ok().filter(|port| *port != 0)),
        None => (text, Some(DEFAULT_GPSD_PORT)),
    };
    let host_is_a_name = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    match port {
        Some(port) if host_is_a_name => Ok(format!("{host}:{port}")),
        _ => Err(refuse()),
    }
}

/// The demo's simulated route: a built-in one by name, or the waypoints driven in straight lines
/// at `speed_kmh` (default 30), standing `dwell_seconds` at each, and from the last back to the
/// first. `tunnel` on a waypoint: no fix on the way to it.
fn simulated_route(
    builtin: Option<String>,
    speed_kmh: Option<f64>,
    waypoints: &[RawWaypoint],
) -> Result<Route, String> {
    match (builtin, waypoints) {
        (Some(name), []) => {
            if speed_kmh.is_some() {
                return Err("gps.speed_kmh goes with gps.waypoints, not with gps.builtin".into());
            }
            Route::builtin(&name).ok_or_else(|| {
                format!("gps.builtin: no built-in route `{name}` (there is \"demo\")")
            })
        }
        (Some(_), _) => Err("gps: give either builtin or waypoints, not both".into()),
        (None, [] | [_]) => Err(
            "gps.kind = \"route\" needs builtin = \"demo\" or at least two gps.waypoints".into(),
        ),
        (None, [first, rest @ ..]) => {
            let speed_kmh = speed_kmh.unwrap_or(30.0);
            if !(speed_kmh > 0.0 && speed_kmh <= 130.0) {
                return Err(format!(
                    "gps.speed_kmh: {speed_kmh} must be more than 0 and at most 130"
                ));
            }
            let speed_mps = speed_kmh / 3.6;
            for (number, waypoint) in waypoints.iter().enumerate() {
                if !(-90.0..=90.0).contains(&waypoint.latitude)
                    || !(-180.0..=180.0).contains(&waypoint.longitude)
                {
                    return Err(format!(
                        "gps.waypoints[{number}]: latitude must be within ±90 and longitude within ±180"
                    ));
                }
            }
            let stand = |route: Route, waypoint: &RawWaypoint| match waypoint.dwell_seconds {
                0 => route,
                seconds => route.dwell(Duration::from_secs(seconds)),
            };
            let drive = |route: Route, waypoint: &RawWaypoint| {
                let (latitude, longitude) = (waypoint.latitude, waypoint.longitude);
                if waypoint.tunnel {
                    route.drive_without_fix_to(latitude, longitude, speed_mps)
                } else {
                    route.drive_to(latitude, longitude, speed_mps)
                }
            };
            let mut route = stand(Route::starting_at(first.latitude, first.longitude), first);
            for waypoint in rest {
                route = stand(drive(route, waypoint), waypoint);
            }
            Ok(drive(route, first))
        }
    }
}

/// Reads the trust anchors (PEM or DER). Without files, the Belgian eID roots built into
/// busloket; any other root is a test root, refused unless `allow_test_roots` says this is a test
/// bench.
fn trust_anchors_from(
    base: &Path,
    files: &[PathBuf],
    allow_test_roots: bool,
) -> Result<Vec<Vec<u8>>, String> {
    if files.is_empty() {
        return Ok(busloket_hardware::eid::roots::belgian_roots_der());
    }
    files
        .iter()
        .map(|file| {
            let path = base.join(file);
            let bytes = std::fs::read(&path)
                .map_err(|err| format!("card_readers.trust_anchors: cannot read {}: {err}", path.display()))?;
            let der = match pem::parse(&bytes) {
                Ok(pem) if pem.tag() == "CERTIFICATE" => pem.into_contents(),
                Ok(pem) => return Err(format!("{}: a PEM {} is not a certificate", path.display(), pem.tag())),
                Err(_) => bytes,
            };
            busloket_hardware::eid::X509Certificate::from_der(&der)
                .map_err(|err| format!("{}: not a certificate: {err}", path.display()))?;
            if !allow_test_roots && !busloket_hardware::eid::roots::is_belgian_root(&der) {
                return Err(format!(
                    "{} is not a Belgian eID root; test roots are accepted only with card_readers.allow_test_roots = true",
                    path.display()
                ));
            }
            Ok(der)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../deploy/node.example.toml");

    #[test]
    fn the_example_file_is_valid() {
        let config = Config::parse(Path::new("/etc/busloket/node.toml"), EXAMPLE).unwrap();
        assert!(config.demo);
        assert_eq!(config.data_dir, Path::new("/etc/busloket/data"));
        assert_eq!(config.stations.len(), 2);
    }

    #[test]
    fn simulators_need_demo_mode() {
        let text = EXAMPLE.replace("demo = true", "demo = false");
        let err = Config::parse(Path::new("node.toml"), &text).unwrap_err();
        assert!(
            err.to_string().contains("allowed only with demo = true"),
            "{err}"
        );
    }

    #[test]
    fn real_readers_take_the_belgian_roots_and_refuse_test_roots() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        let pcsc = |extra: &str| {
            EXAMPLE.replace(
                "[card_readers]\nkind = \"simulated\"",
                &format!("[card_readers]\nkind = \"pcsc\"\n{extra}"),
            )
        };
        let config = Config::parse(&path, &pcsc("")).unwrap();
        match config.card_readers {
            ReadersConfig::Pcsc { trust_anchors } => assert_eq!(trust_anchors.len(), 3),
            other => panic!("{other:?}"),
        }
        // A self-made root (here: a built-in one altered by a byte) is a test root.
        let mut test_root = busloket_hardware::eid::roots::belgian_roots_der().remove(0);
        let last = test_root.len() - 1;
        test_root[last] ^= 1;
        std::fs::write(dir.path().join("test-root.der"), &test_root).unwrap();
        let refused =
            Config::parse(&path, &pcsc("trust_anchors = [\"test-root.der\"]")).unwrap_err();
        assert!(
            refused.to_string().contains("allow_test_roots"),
            "{refused}"
        );
        let allowed = pcsc("trust_anchors = [\"test-root.der\"]\nallow_test_roots = true");
        assert!(Config::parse(&path, &allowed).is_ok());
        let missing = Config::parse(&path, &pcsc("trust_anchors = [\"nowhere.pem\"]")).unwrap_err();
        assert!(missing.to_string().contains("nowhere.pem"), "{missing}");
    }

    #[test]
    fn a_staff_eid_binding_must_look_like_one() {
        let config = Config::parse(Path::new("node.toml"), EXAMPLE).unwrap();
        assert!(
            config.staff[0].eid.is_some(),
            "the demo clerk signs in with a demo card"
        );
        let text = EXAMPLE.replace("eid = \"7f41", "eid = \"7F41");
        let err = Config::parse(Path::new("node.toml"), &text).unwrap_err();
        assert!(
            err.to_string().contains("busloket-provision staff eid"),
            "{err}"
        );
    }

    /// The example with its `[gps]` section replaced by `section` (the section's own comments
    /// up to the next table go with it).
    fn with_gps(section: &str, demo: bool) -> String {
        let start = EXAMPLE
            .find("\n[gps]\n")
            .expect("the example has a [gps] section")
            + 1;
        let end = start + EXAMPLE[start..].find("\n[[").expect("a table after [gps]") + 1;
        let text = format!(
            "{}[gps]\n{section}\n\n{}",
            &EXAMPLE[..start],
            &EXAMPLE[end..]
        );
        if demo {
            text
        } else {
            // Without demo mode the other devices must be real ones too.
            text.replace("demo = true", "demo = false")
                .replace(
                    "[card_readers]\nkind = \"simulated\"",
                    "[card_readers]\nkind = \"pcsc\"",
                )
                .replace(
                    "kind = \"simulated\"\nname = \"Demo ticket printer\"\noutput_dir = \"printed\"",
                    "kind = \"tcp\"\nname = \"Ticket printer\"\naddress = \"192.0.2.10:9100\"",
                )
        }
    }

    fn gps_of(section: &str, demo: bool) -> Result<GpsConfig, ConfigError> {
        Config::parse(Path::new("node.toml"), &with_gps(section, demo)).map(|config| config.gps)
    }

    fn gpsd(address: &str) -> GpsConfig {
        GpsConfig::Gpsd {
            address: address.into(),
        }
    }

    #[test]
    fn the_example_parks_the_demo_bus_at_the_markt() {
        let config = Config::parse(Path::new("node.toml"), EXAMPLE).unwrap();
        assert_eq!(
            config.gps,
            GpsConfig::Simulated {
                latitude: 50.8279,
                longitude: 3.2649
            }
        );
    }

    #[test]
    fn the_examples_commented_gps_options_are_valid() {
        let start = EXAMPLE.find("\n[gps]\n").unwrap();
        let section = &EXAMPLE[start..start + EXAMPLE[start..].find("\n[[").unwrap()];
        let commented: Vec<&str> = section
            .lines()
            .skip_while(|line| !line.starts_with("longitude"))
            .skip(1)
            .map(|line| line.strip_prefix('#').unwrap_or(line).trim_start())
            .collect();
        let alternatives: Vec<String> = commented
            .split(|line| line.is_empty())
            .map(|lines| lines.join("\n"))
            .filter(|text| !text.is_empty() && !text.starts_with("Local staff"))
            .collect();
        assert_eq!(alternatives.len(), 3, "{alternatives:?}");
        for alternative in &alternatives {
            let gps =
                gps_of(alternative, true).unwrap_or_else(|err| panic!("{alternative}: {err}"));
            assert_ne!(gps, GpsConfig::None, "{alternative}");
        }
    }

    #[test]
    fn gpsd_needs_no_demo_mode_and_defaults_to_this_machine_on_port_2947() {
        assert_eq!(
            gps_of("kind = \"gpsd\"", false).unwrap(),
            gpsd("127.0.0.1:2947")
        );
        for (given, meant) in [
            ("localhost", "localhost:2947"),
            ("gps-box.bus.local:2948", "gps-box.bus.local:2948"),
            ("10.0.0.5", "10.0.0.5:2947"),
            ("10.0.0.5:2948", "10.0.0.5:2948"),
            ("::1", "[::1]:2947"),
            ("[::1]:2948", "[::1]:2948"),
        ] {
            let section = format!("kind = \"gpsd\"\naddress = \"{given}\"");
            assert_eq!(gps_of(&section, false).unwrap(), gpsd(meant), "{given}");
        }
        for wrong in [
            "",
            "gps box",
            "localhost:gpsd",
            "localhost:0",
            "10.0.0.5:99999",
        ] {
            let section = format!("kind = \"gpsd\"\naddress = \"{wrong}\"");
            let err = gps_of(&section, false).unwrap_err();
            assert!(err.to_string().contains("gps.address"), "{wrong}: {err}");
        }
    }

    #[test]
    fn the_built_in_demo_route_is_chosen_by_name_in_demo_mode_only() {
        let section = "kind = \"route\"\nbuiltin = \"demo\"";
        assert_eq!(
            gps_of(section, true).unwrap(),
            GpsConfig::Route {
                route: Route::demo()
            }
        );
        let err = gps_of(section, false).unwrap_err();
        assert!(
            err.to_string()
                .contains("gps.kind = \"route\" is allowed only with demo = true"),
            "{err}"
        );
        let err = gps_of("kind = \"route\"\nbuiltin = \"gent\"", true).unwrap_err();
        assert!(
            err.to_string().contains("no built-in route `gent`"),
            "{err}"
        );
    }

    #[test]
    fn waypoints_make_a_loop_with_stops_and_tunnels() {
        let section = "kind = \"route\"\n\
                       speed_kmh = 36\n\
                       waypoints = [\n\
                         { latitude = 50.8279, longitude = 3.2649, dwell_seconds = 90 },\n\
                         { latitude = 50.8247, longitude = 3.2640 },\n\
                         { latitude = 50.8301, longitude = 3.2628, dwell_seconds = 60, tunnel = true },\n\
                       ]";
        let expected = Route::starting_at(50.8279, 3.2649)
            .dwell(Duration::from_secs(90))
            .drive_to(50.8247, 3.2640, 10.0)
            .drive_without_fix_to(50.8301, 3.2628, 10.0)
            .dwell(Duration::from_secs(60))
            .drive_to(50.8279, 3.2649, 10.0);
        assert_eq!(
            gps_of(section, true).unwrap(),
            GpsConfig::Route { route: expected }
        );
    }

    #[test]
    fn a_route_that_cannot_be_driven_is_refused_with_the_reason() {
        let two = "waypoints = [{ latitude = 50.0, longitude = 4.0 }, { latitude = 50.1, longitude = 4.0 }]";
        for (section, reason) in [
            ("kind = \"route\"", "at least two gps.waypoints"),
            (
                "kind = \"route\"\nwaypoints = [{ latitude = 50.0, longitude = 4.0 }]",
                "at least two gps.waypoints",
            ),
            (
                &format!("kind = \"route\"\nbuiltin = \"demo\"\n{two}"),
                "either builtin or waypoints",
            ),
            (
                "kind = \"route\"\nbuiltin = \"demo\"\nspeed_kmh = 20",
                "speed_kmh goes with gps.waypoints",
            ),
            (
                &format!("kind = \"route\"\nspeed_kmh = 0\n{two}"),
                "gps.speed_kmh: 0 must be more than 0",
            ),
            (
                "kind = \"route\"\nwaypoints = [{ latitude = 50.0, longitude = 4.0 }, { latitude = 95.0, longitude = 4.0 }]",
                "gps.waypoints[1]",
            ),
            (
                "kind = \"route\"\nwaypoints = [{ latitude = 50.0, longitude = 4.0, stop = true }, { latitude = 50.1, longitude = 4.0 }]",
                "unknown field `stop`",
            ),
        ] {
            let err = gps_of(section, true).unwrap_err();
            assert!(err.to_string().contains(reason), "{section}: {err}");
        }
    }

    #[test]
    fn unknown_keys_are_refused_with_the_file_name() {
        let text = format!("{EXAMPLE}\nlisten_port = 3\n");
        let err = Config::parse(Path::new("node.toml"), &text).unwrap_err();
        assert!(err.to_string().starts_with("node.toml: "), "{err}");
        assert!(err.to_string().contains("listen_port"), "{err}");
    }
}
