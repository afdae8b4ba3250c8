//! The integration tests of `busloket-hardware`, one binary (link time matters) with a module
//! per device. They use only the simulators, loopback TCP and temporary folders: no hardware,
//! no system service.

mod card;
mod demo;
mod eid;
mod escpos_hex;
mod gps;
mod printer;
mod receipt;
