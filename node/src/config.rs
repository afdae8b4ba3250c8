//! The node's configuration: a raw TOML shape ([`RawConfig`]) validated once into [`Config`].
//!
//! Every option is documented in `deploy/node.example.toml`. Simulated devices are allowed only
//! when `demo = true`, so a production configuration can never fall back to a simulator silently.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    Simulated { latitude: f64, longitude: f64 },
    None,
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

#[derive(Debug, Clone)]
pub enum GpsConfig {
    Simulated { latitude: f64, longitude: f64 },
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

    #[test]
    fn unknown_keys_are_refused_with_the_file_name() {
        let text = format!("{EXAMPLE}\nlisten_port = 3\n");
        let err = Config::parse(Path::new("node.toml"), &text).unwrap_err();
        assert!(err.to_string().starts_with("node.toml: "), "{err}");
        assert!(err.to_string().contains("listen_port"), "{err}");
    }
}
