//! End-to-end tests: the real `busloket-node` binary, over HTTP, with headless Chromium.
//!
//! - `crash`: SIGKILL in the middle of a stream of submissions loses nothing acknowledged.
//! - `eid`: Belgian eID cards (the virtual card) through the real pcscd and the PC/SC driver.
//! - `eid_pin`: holder authentication with the PIN through pcscd: signatures, tries, refusals.
//! - `kiosk_eid`: the kiosk with the node reading the virtual card through pcscd.
//! - `lte`: the emulated LTE link (namespaces, veth, delay, loss, 5 Mbit/s up) the sync tests use.
//! - `pages`: the kiosk flow in Dutch and French and the staff console, in a browser, with
//!   screenshots under `target/e2e/`.
//! - `position`: the real gpsd fed by gpsfake from a route through two stops (a tunnel, a noisy
//!   stop edge, a 50 km jump), the node's stops following it and stamped on requests.
//! - `staff_eid`: clerks sign in with their own eID and PIN through pcscd; the desk card's photo.
//! - `sync`: a bus and the hub in two namespaces over the emulated LTE link, mutual TLS: a day
//!   offline, a link cut and a hub killed mid-round, a decision of the city reaching the bus.

mod crash;
mod eid;
mod eid_pin;
mod kiosk_eid;
mod lte;
mod pages;
mod position;
mod staff_eid;
mod sync;
