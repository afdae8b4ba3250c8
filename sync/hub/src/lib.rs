//! The city's hub: receives the buses' signed sync uploads over mutual TLS, verifies and merges
//! them, keeps what it refuses in quarantine, and answers with the city's changes
//! (`sync/PROTOCOL.md` is the contract). Central IT sees the devices and the service's
//! indicators on a few web pages.
//!
//! - [`storage`] — the [`storage::HubStorage`] trait and its sled implementation.
//! - [`sync`] — the engine ([`sync::Hub::receive`], [`sync::Hub::append_event`]); no HTTP.
//! - [`trust`] — TLS, device identities from certificates, the CRL and staff file reloaded live.
//! - [`schedule`] — the stop schedule, reloaded live and synced to the buses.
//! - [`server`] — axum over tokio-rustls, `app(state)` and `run(listener, tls, state, shutdown)`.
//! - [`pages`], [`auth`], [`i18n`] — central IT's sign-in, device page and API, in nl, fr, de, en.
//! - [`indicators`] — a row per request for the service's indicators, the report (visits,
//!   documents, kilometres avoided, the bus's kilometres), the page and its CSV/JSON exports.
//! - [`config`] — `hub.toml`.
//!
//! Architecture invariants: the engine and the storage know nothing of HTTP, TLS or HTML; the
//! server and pages know nothing of Automerge. Citizen data is sealed at rest and never logged
//! at `info`. This crate may depend on `busloket-sync` and `busloket-provisioning`, never on the
//! node or on `busloket-hardware`.

pub mod auth;
pub mod config;
pub mod i18n;
pub mod indicators;
pub mod pages;
pub mod schedule;
pub mod server;
pub mod storage;
pub mod sync;
pub mod trust;
