//! The integration tests of `busloket-hardware`, one binary (link time matters) with a module
//! per device. They use the simulators, loopback TCP and temporary folders, no hardware; the
//! one system service is gpsd, which `gpsd` starts itself through gpsfake (`cargo xtask deps`
//! installs it).

mod card;
mod demo;
mod eid;
mod escpos_hex;
mod gps;
mod gpsd;
mod printer;
mod receipt;
