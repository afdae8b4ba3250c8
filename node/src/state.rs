//! What every handler shares, and how it is built from the configuration.
//!
//! The node holds its devices as trait objects and never knows whether they are real or
//! simulated; only [`AppState::from_config`] decides, and only in demo mode may it pick a
//! simulator.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use busloket_hardware::eid::TrustAnchors;
use busloket_hardware::{
    CardReaders, GpsdSource, PcscReaders, PositionSource, ReceiptPrinter, SimCardReaders, SimGps,
    SimReceiptPrinter, TcpReceiptPrinter, demo_citizens,
};
use busloket_sync::catalogue::Catalogue;
use busloket_sync::store::Store;

use crate::auth::StaffSessions;
use crate::config::{Config, GpsConfig, PrinterConfig, ReadersConfig};
use crate::events::{Events, Shutdown};
use crate::i18n::Translations;
use crate::kiosk::KioskSessions;
use crate::position::PositionService;
use crate::register::{DemoRegister, Register, UnknownRegister};
use crate::staff::DeskCardSlot;
use crate::sync::{Enrolled, Enrolment, STOPS_FILE, SyncControl};

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<Store>,
    /// This node's Automerge actor, kept in the data directory.
    pub actor: automerge::ActorId,
    pub catalogue: Arc<Catalogue>,
    pub translations: Arc<Translations>,
    pub readers: Arc<dyn CardReaders>,
    pub receipt_printer: Arc<dyn ReceiptPrinter>,
    pub gps: Arc<dyn PositionSource>,
    /// Where the bus is, over `gps` and the hub's stop schedule: what requests are stamped with.
    pub position: Arc<PositionService>,
    pub register: Arc<dyn Register>,
    pub kiosks: Arc<KioskSessions>,
    pub staff_sessions: Arc<StaffSessions>,
    pub help_calls: Arc<HelpCalls>,
    /// The card the clerk last read at the staff desk, while it stays in the reader.
    pub desk: Arc<DeskCardSlot>,
    pub events: Events,
    pub shutdown: Shutdown,
    /// The simulators' control handles, present only in demo mode (for the demo control page).
    pub demo: Option<DemoDevices>,
    /// The enrolment, the hub client and the Wi-Fi TLS configuration, with `[sync]`.
    pub enrolled: Option<Arc<Enrolled>>,
    /// The sync status and the sync loop's wake-ups (present also without `[sync]`, saying so).
    pub sync: Arc<SyncControl>,
}

/// Handles on the simulated devices, so the demo page can insert cards and show receipts.
#[derive(Clone)]
pub struct DemoDevices {
    pub readers: Option<Arc<SimCardReaders>>,
    pub receipt_printer: Option<Arc<SimReceiptPrinter>>,
}

/// Citizens at a kiosk who pressed "help": shown at the staff console until a clerk answers.
#[derive(Debug, Default)]
pub struct HelpCalls {
    // A std mutex: held only to read or change the map, never across an `.await`.
    calls: Mutex<HashMap<String, chrono::DateTime<chrono::Utc>>>,
}

impl HelpCalls {
    pub fn call(&self, station: &str, at: chrono::DateTime<chrono::Utc>) {
        self.lock().entry(station.to_owned()).or_insert(at);
    }

    pub fn answer(&self, station: &str) -> bool {
        self.lock().remove(station).is_some()
    }

    pub fn list(&self) -> Vec<(String, chrono::DateTime<chrono::Utc>)> {
        let mut calls: Vec<_> = self.lock().iter().map(|(s, at)| (s.clone(), *at)).collect();
        calls.sort_by_key(|(_, at)| *at);
        calls
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, chrono::DateTime<chrono::Utc>>> {
        self.calls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("device", &self.config.device_id)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Opens the store, loads the catalogue and the translations, and builds the devices.
    pub fn from_config(config: Config) -> Result<AppState> {
        // The bundle first: a node with a bad enrolment must not start, whatever else is fine.
        let enrolment = Enrolment::load(&config, std::time::SystemTime::now())?;
        let store = Store::open_with_key_file(&config.data_dir, &config.key_file)
            .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
        let device_key = enrolment.as_ref().map(Enrolment::device_public_key);
        let actor = crate::workflow::load_or_create_actor(
            &config.data_dir,
            device_key.as_ref().map(|key| key.as_slice()),
        )?;
        let sync = Arc::new(SyncControl::new(
            enrolment
                .as_ref()
                .map(|enrolment| enrolment.bundle.hub_url().to_owned()),
        ));
        if let Some(enrolment) = &enrolment {
            sync.restore(&store, enrolment, &config.data_dir);
        }
        let enrolled = enrolment.map(Enrolled::new).transpose()?.map(Arc::new);
        let catalogue = match &config.catalogue {
            Some(path) => Catalogue::load_file(path)?,
            None => Catalogue::embedded(),
        };
        let translations = Translations::new().map_err(anyhow::Error::msg)?;

        let mut reader_names: Vec<String> = config
            .stations
            .iter()
            .map(|station| station.reader.clone())
            .collect();
        reader_names.push(config.desk_reader.clone());
        let (readers, sim_readers): (Arc<dyn CardReaders>, _) = match &config.card_readers {
            ReadersConfig::Simulated => {
                let readers = Arc::new(SimCardReaders::new(reader_names, demo_citizens()));
                (readers.clone(), Some(readers))
            }
            ReadersConfig::Pcsc { trust_anchors } => {
                let anchors = TrustAnchors::from_der(trust_anchors.iter().map(Vec::as_slice))
                    .context("the card readers' trust anchors")?;
                let readers =
                    PcscReaders::start(anchors).context("cannot start the card-reader monitor")?;
                (Arc::new(readers), None)
            }
        };
        let register: Arc<dyn Register> = if config.demo {
            Arc::new(DemoRegister::new(demo_citizens()))
        } else {
            Arc::new(UnknownRegister)
        };

        let (receipt_printer, sim_printer): (Arc<dyn ReceiptPrinter>, _) = match &config
            .receipt_printer
        {
            PrinterConfig::Simulated { name, output_dir } => {
                std::fs::create_dir_all(output_dir).with_context(|| {
                    format!(
                        "cannot create the printer output directory {}",
                        output_dir.display()
                    )
                })?;
                let printer = Arc::new(SimReceiptPrinter::new(name.clone(), output_dir.clone()));
                (printer.clone(), Some(printer))
            }
            PrinterConfig::Tcp {
                name,
                address,
                columns,
            } => (
                Arc::new(TcpReceiptPrinter::new(name.clone(), *address, *columns)),
                None,
            ),
        };
        let gps: Arc<dyn PositionSource> = match &config.gps {
            GpsConfig::Simulated {
                latitude,
                longitude,
            } => Arc::new(SimGps::fixed(*latitude, *longitude)),
            GpsConfig::Route { route } => {
                Arc::new(SimGps::driving(route.clone()).context("cannot start the simulated GPS")?)
            }
            GpsConfig::Gpsd { address } => Arc::new(
                GpsdSource::start(address.clone()).context("cannot start the gpsd client")?,
            ),
            GpsConfig::None => Arc::new(SimGps::no_fix()),
        };
        let demo = config.demo.then(|| DemoDevices {
            readers: sim_readers,
            receipt_printer: sim_printer,
        });
        let kiosks = Arc::new(KioskSessions::new(&config.stations));
        let events = Events::new();
        let position = Arc::new(PositionService::new(
            gps.clone(),
            config.stop.clone(),
            events.clone(),
        ));
        match store.synced_file(STOPS_FILE) {
            Ok(Some(file)) => position.take_schedule_file(&file.bytes),
            Ok(None) => {}
            Err(error) => tracing::warn!("cannot read the synced stop schedule: {error}"),
        }
        Ok(AppState {
            store: Arc::new(store),
            actor,
            catalogue: Arc::new(catalogue),
            translations: Arc::new(translations),
            readers,
            receipt_printer,
            gps,
            register,
            kiosks,
            staff_sessions: Arc::new(StaffSessions::default()),
            help_calls: Arc::new(HelpCalls::default()),
            desk: Arc::new(DeskCardSlot::default()),
            position,
            events,
            shutdown: Shutdown::new(),
            demo,
            enrolled,
            sync,
            config: Arc::new(config),
        })
    }

    /// The tasks that follow the devices: card events drive the kiosk sessions.
    pub fn start_background_tasks(&self) {
        // Subscribe before returning, so no card event between now and the task's start is lost.
        let card_events = self.readers.subscribe();
        tokio::spawn(crate::kiosk::follow_card_events(self.clone(), card_events));
        tokio::spawn(crate::kiosk::expire_idle_sessions(self.clone()));
        tokio::spawn(
            self.position
                .clone()
                .run(self.shutdown.clone(), self.store.clone()),
        );
        if let Some(enrolled) = &self.enrolled {
            tokio::spawn(crate::sync::run_loop(self.clone(), enrolled.clone()));
        }
    }

    /// The accounts that may sign in: the configuration's `[[staff]]`, then the bus clerks of
    /// the hub's staff file whose username the configuration does not already have (the
    /// configuration wins a clash: it is what the person at the bus controls).
    pub fn staff_accounts(&self) -> Vec<crate::config::StaffAccount> {
        let mut accounts = self.config.staff.clone();
        for account in self.sync.synced_staff() {
            if !accounts
                .iter()
                .any(|known| known.username == account.username)
            {
                accounts.push(account);
            }
        }
        accounts
    }

    /// The Wi-Fi TLS configuration when the node serves HTTPS.
    pub fn wifi_tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.enrolled
            .as_ref()
            .and_then(|enrolled| enrolled.wifi_tls.clone())
    }
}
