//! The hub's configuration: `hub.toml` (every option is documented in
//! `deploy/hub.example.toml`) read into a raw struct, then checked into [`Config`]. Relative
//! paths are relative to the configuration file's directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use busloket_sync::stops::Position;
use busloket_sync::terms::DeviceId;
use serde::Deserialize;
use thiserror::Error;

use crate::indicators::Place;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the configuration")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: is not a valid hub configuration")]
    Syntax {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("{path}: {problem}")]
    Invalid { path: PathBuf, problem: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: SocketAddr,
    #[serde(default = "default_hub_id")]
    hub_id: String,
    data_dir: PathBuf,
    at_rest_key: PathBuf,
    staff_file: PathBuf,
    stops_file: Option<PathBuf>,
    trust: RawTrust,
    indicators: Option<RawIndicators>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIndicators {
    town_hall: RawPlace,
    postcodes_file: PathBuf,
    #[serde(default = "default_road_factor")]
    road_factor: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlace {
    name: String,
    latitude: f64,
    longitude: f64,
}

fn default_road_factor() -> f64 {
    1.3
}

fn default_hub_id() -> String {
    "hub".to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrust {
    ca_dir: Option<PathBuf>,
    ca_certificate: Option<PathBuf>,
    hub_certificate: Option<PathBuf>,
    hub_key: Option<PathBuf>,
    crl: Option<PathBuf>,
    registry: Option<PathBuf>,
}

/// The city's trust material the hub reads (never the CA's private key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustPaths {
    pub ca_certificate: PathBuf,
    pub hub_certificate: PathBuf,
    pub hub_key: PathBuf,
    pub crl: PathBuf,
    pub registry: PathBuf,
}

impl TrustPaths {
    /// The files `busloket-provision ca init` writes in `ca_dir`.
    pub fn in_ca_dir(ca_dir: &Path) -> TrustPaths {
        TrustPaths {
            ca_certificate: ca_dir.join("ca.pem"),
            hub_certificate: ca_dir.join("hub.pem"),
            hub_key: ca_dir.join("hub.key"),
            crl: ca_dir.join("revoked.crl.pem"),
            registry: ca_dir.join("issued.toml"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    /// The device id written in events the hub records.
    pub hub_id: DeviceId,
    pub data_dir: PathBuf,
    pub at_rest_key: PathBuf,
    pub staff_file: PathBuf,
    /// The bus's stop schedule ([`busloket_sync::stops`]), when the city keeps one.
    pub stops_file: Option<PathBuf>,
    pub trust: TrustPaths,
    /// What the estimate of kilometres avoided needs; `None`: nothing is estimated.
    pub indicators: Option<IndicatorsConfig>,
}

/// The `[indicators]` section: the town hall, the postcode list's file, the road factor.
#[derive(Debug, Clone, PartialEq)]
pub struct IndicatorsConfig {
    pub town_hall: Place,
    pub postcodes_file: PathBuf,
    pub road_factor: f64,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, path, base)
    }

    /// Parses `text` (read from `path`), resolving relative paths against `base`.
    pub fn parse(text: &str, path: &Path, base: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|source| ConfigError::Syntax {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |problem: String| ConfigError::Invalid {
            path: path.to_owned(),
            problem,
        };
        let resolve = |file: PathBuf| {
            if file.is_absolute() {
                file
            } else {
                base.join(file)
            }
        };
        let hub_id = raw.hub_id.parse().map_err(|_| {
            invalid(format!(
                "hub_id \"{}\" must be lowercase letters, digits, `-` and `.`",
                raw.hub_id
            ))
        })?;
        let defaults = raw
            .trust
            .ca_dir
            .clone()
            .map(|dir| TrustPaths::in_ca_dir(&resolve(dir)));
        let pick = |given: Option<PathBuf>,
                    default: Option<&PathBuf>,
                    name: &str|
         -> Result<PathBuf, ConfigError> {
            given
                .map(resolve)
                .or_else(|| default.cloned())
                .ok_or_else(|| invalid(format!("[trust] needs ca_dir or {name}")))
        };
        let trust = TrustPaths {
            ca_certificate: pick(
                raw.trust.ca_certificate,
                defaults.as_ref().map(|d| &d.ca_certificate),
                "ca_certificate",
            )?,
            hub_certificate: pick(
                raw.trust.hub_certificate,
                defaults.as_ref().map(|d| &d.hub_certificate),
                "hub_certificate",
            )?,
            hub_key: pick(
                raw.trust.hub_key,
                defaults.as_ref().map(|d| &d.hub_key),
                "hub_key",
            )?,
            crl: pick(raw.trust.crl, defaults.as_ref().map(|d| &d.crl), "crl")?,
            registry: pick(
                raw.trust.registry,
                defaults.as_ref().map(|d| &d.registry),
                "registry",
            )?,
        };
        let data_dir = resolve(raw.data_dir);
        let at_rest_key = resolve(raw.at_rest_key);
        if at_rest_key.starts_with(&data_dir) {
            return Err(invalid(format!(
                "the at-rest key {} is inside the data directory {}; keep the key apart from the data",
                at_rest_key.display(),
                data_dir.display()
            )));
        }
        let indicators = match raw.indicators {
            Some(section) => {
                let position = Position {
                    latitude: section.town_hall.latitude,
                    longitude: section.town_hall.longitude,
                };
                if !position.is_valid() {
                    return Err(invalid(format!(
                        "[indicators] town_hall: {}, {} is not a position on the Earth",
                        position.latitude, position.longitude
                    )));
                }
                if !(1.0..=3.0).contains(&section.road_factor) {
                    return Err(invalid(format!(
                        "[indicators] road_factor {} must be between 1 (straight lines) and 3",
                        section.road_factor
                    )));
                }
                Some(IndicatorsConfig {
                    town_hall: Place {
                        name: section.town_hall.name.trim().to_owned(),
                        position,
                    },
                    postcodes_file: resolve(section.postcodes_file),
                    road_factor: section.road_factor,
                })
            }
            None => None,
        };
        Ok(Config {
            indicators,
            listen: raw.listen,
            hub_id,
            data_dir,
            at_rest_key,
            staff_file: resolve(raw.staff_file),
            stops_file: raw.stops_file.map(resolve),
            trust,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_parses() {
        let text = include_str!("../../../deploy/hub.example.toml");
        let config =
            Config::parse(text, Path::new("hub.toml"), Path::new("/etc/busloket")).unwrap();
        assert_eq!(config.hub_id.as_str(), "hub");
        assert_eq!(
            config.trust.hub_key,
            PathBuf::from("/etc/busloket/ca/hub.key")
        );
        assert_eq!(
            config.stops_file,
            Some(PathBuf::from("/etc/busloket/stops.toml"))
        );
        let indicators = config.indicators.unwrap();
        assert_eq!(
            indicators.postcodes_file,
            PathBuf::from("/etc/busloket/postcodes.toml")
        );
        assert_eq!(indicators.road_factor, 1.3);
        let bad = text.replace("road_factor = 1.3", "road_factor = 0.5");
        let error = Config::parse(&bad, Path::new("hub.toml"), Path::new("/x")).unwrap_err();
        assert!(error.to_string().contains("road_factor 0.5"), "{error}");
    }

    #[test]
    fn files_may_be_named_one_by_one_and_the_key_stays_apart() {
        let text = r#"
listen = "127.0.0.1:0"
data_dir = "data"
at_rest_key = "data/key"
staff_file = "staff.toml"
[trust]
ca_certificate = "a.pem"
hub_certificate = "b.pem"
hub_key = "b.key"
crl = "c.pem"
registry = "i.toml"
"#;
        let error = Config::parse(text, Path::new("hub.toml"), Path::new("/x")).unwrap_err();
        assert!(error.to_string().contains("keep the key apart"), "{error}");
        let fixed = text.replace("data/key", "key");
        let config = Config::parse(&fixed, Path::new("hub.toml"), Path::new("/x")).unwrap();
        assert_eq!(config.trust.crl, PathBuf::from("/x/c.pem"));
        let missing = fixed.replace("crl = \"c.pem\"\n", "");
        let error = Config::parse(&missing, Path::new("hub.toml"), Path::new("/x")).unwrap_err();
        assert!(error.to_string().contains("ca_dir or crl"), "{error}");
    }
}
