//! The stop schedule from the hub's configuration, reloaded when its file changes and sent to
//! the buses as synced file `stops`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use busloket_sync::stops::{ScheduleError, StopSchedule};
use thiserror::Error;

use crate::storage::{HubStorage, StorageError};
use crate::sync::Hub;
use crate::trust::{Stamp, stamp};

#[derive(Debug, Error)]
pub enum LoadError {
    #[error("cannot read the stop schedule {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the stop schedule {path} is not valid: {source}")]
    Invalid {
        path: PathBuf,
        source: ScheduleError,
    },
    #[error("the stop schedule {path} could not be versioned: {source}")]
    Store { path: PathBuf, source: StorageError },
}

/// The schedule in force; empty when the configuration names no file.
#[derive(Debug)]
pub struct LiveSchedule {
    path: Option<PathBuf>,
    stamp: Mutex<Option<Stamp>>,
    schedule: RwLock<Arc<StopSchedule>>,
}

impl LiveSchedule {
    /// Loads the schedule once, refusing to start on a bad one, and hands it to `hub`.
    pub fn load<S: HubStorage + ?Sized>(
        path: Option<&Path>,
        hub: &Hub<S>,
    ) -> Result<LiveSchedule, LoadError> {
        let live = LiveSchedule {
            path: path.map(Path::to_owned),
            stamp: Mutex::new(None),
            schedule: RwLock::new(Arc::new(StopSchedule::default())),
        };
        if let Some(path) = &live.path {
            live.load_file(path, hub)?;
        }
        Ok(live)
    }

    /// Reloads the file if it changed on disk; a schedule that became unreadable or invalid is
    /// logged and the previous one stays in force.
    pub fn refresh<S: HubStorage + ?Sized>(&self, hub: &Hub<S>) {
        let Some(path) = &self.path else {
            return;
        };
        if *self.stamp.lock().unwrap_or_else(PoisonError::into_inner) == stamp(path) {
            return;
        }
        if let Err(error) = self.load_file(path, hub) {
            tracing::error!(
                "the stop schedule was not reloaded; the previous one stays in force: {error}"
            );
        }
    }

    pub fn current(&self) -> Arc<StopSchedule> {
        self.schedule
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn load_file<S: HubStorage + ?Sized>(
        &self,
        path: &Path,
        hub: &Hub<S>,
    ) -> Result<(), LoadError> {
        let before = stamp(path);
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?;
        let schedule = StopSchedule::parse(&String::from_utf8_lossy(&bytes)).map_err(|source| {
            LoadError::Invalid {
                path: path.to_owned(),
                source,
            }
        })?;
        let version = hub
            .set_stops_file(bytes)
            .map_err(|source| LoadError::Store {
                path: path.to_owned(),
                source,
            })?;
        tracing::info!(
            stops = schedule.stops.len(),
            version,
            "stop schedule loaded"
        );
        *self
            .schedule
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(schedule);
        *self.stamp.lock().unwrap_or_else(PoisonError::into_inner) = before;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use busloket_sync::at_rest::AtRestKey;
    use busloket_sync::protocol::{FileVersion, STOPS_FILE};

    use super::*;
    use crate::storage::SledStorage;

    const MARKT: &str = "[[stop]]\nid = \"markt\"\nname = \"Markt\"\nlatitude = 51.05434\nlongitude = 3.71742\nradius_m = 60\nvisits = [\"mon 09:00-12:00\"]\n";

    fn stops_version(hub: &Hub<SledStorage>) -> Option<u64> {
        hub.files_for(&[])
            .into_iter()
            .find(|file| file.name == STOPS_FILE)
            .map(|file| file.version)
    }

    #[test]
    fn the_schedule_goes_to_the_buses_and_a_bad_edit_keeps_the_one_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let storage =
            SledStorage::open(&dir.path().join("data"), AtRestKey::from_bytes([3; 32])).unwrap();
        let hub = Hub::new(Arc::new(storage), b"hub").unwrap();
        let path = dir.path().join("stops.toml");
        std::fs::write(&path, MARKT).unwrap();

        let live = LiveSchedule::load(Some(&path), &hub).unwrap();
        assert_eq!(live.current().stops.len(), 1);
        assert_eq!(stops_version(&hub), Some(1));
        let has = [FileVersion {
            name: STOPS_FILE.into(),
            version: 1,
        }];
        assert!(
            hub.files_for(&has).is_empty(),
            "a bus that has it gets nothing"
        );

        // An edit that does not parse: logged, the schedule in force stays.
        std::fs::write(&path, format!("{MARKT}radius_m = 5\n")).unwrap();
        live.refresh(&hub);
        assert_eq!(live.current().stops.len(), 1);
        assert_eq!(stops_version(&hub), Some(1));

        // A good edit: a new version.
        std::fs::write(&path, MARKT.replace("Markt\"", "Groentenmarkt\"")).unwrap();
        live.refresh(&hub);
        assert_eq!(live.current().stops[0].name, "Groentenmarkt");
        assert_eq!(stops_version(&hub), Some(2));
    }

    #[test]
    fn a_bad_schedule_stops_the_start_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let storage =
            SledStorage::open(&dir.path().join("data"), AtRestKey::from_bytes([3; 32])).unwrap();
        let hub = Hub::new(Arc::new(storage), b"hub").unwrap();
        let path = dir.path().join("stops.toml");
        std::fs::write(&path, MARKT.replace("60", "900")).unwrap();
        let error = LiveSchedule::load(Some(&path), &hub)
            .unwrap_err()
            .to_string();
        assert!(error.contains("stops.toml is not valid"), "{error}");
        assert!(error.contains("radius_m must be between"), "{error}");
        let missing = LiveSchedule::load(Some(&dir.path().join("none.toml")), &hub)
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("cannot read the stop schedule"),
            "{missing}"
        );
        let none = LiveSchedule::load(None, &hub).unwrap();
        assert!(none.current().stops.is_empty());
        assert_eq!(stops_version(&hub), None);
    }
}
