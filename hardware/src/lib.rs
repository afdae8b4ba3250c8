//! `busloket-hardware`: the bus's devices behind small traits, each with a simulator.
//!
//! - [`card`]: eID card readers ([`CardReaders`]; [`SimCardReaders`] for the demo and tests;
//!   `PcscReaders`, behind the `pcsc` feature, for real readers through pcscd).
//! - [`eid`]: the pure half of the Belgian eID reader: files, APDUs, the card session over any
//!   transport, and the checks (builds without libpcsclite).
//! - [`demo`]: the synthetic demo citizens whose cards the simulator holds.
//! - [`receipt`]: the queue ticket / receipt model and its ESC/POS and text encodings.
//! - [`printer`]: the thermal receipt printer ([`ReceiptPrinter`]: [`TcpReceiptPrinter`] for
//!   network printers, [`SimReceiptPrinter`]) and the document printer ([`DocumentPrinter`]:
//!   [`SimDocumentPrinter`]).
//! - [`gps`]: where the bus is ([`PositionSource`]: [`GpsdSource`] through gpsd, [`SimGps`]
//!   parked or driving a route; NMEA logs for gpsfake; the gpsfake runner behind the
//!   `test-support` feature).
//!
//! Invariants:
//! - `hardware` knows nothing of requests, catalogues or HTTP. It may depend on tokio, serde,
//!   chrono and device crates; it never depends on `busloket-sync` (or on `busloket-node`).
//!   Callers hand it finished data (a receipt's translated lines, a rendered PDF) and get device
//!   facts back.
//! - The node holds `Arc<dyn Trait>` and cannot tell a real device from a simulator.
//! - Blocking device calls and file IO run on `spawn_blocking` or a dedicated thread, never on
//!   an async task.
//! - A national number or an address never goes into a log or a `Debug` output in full.

pub mod card;
pub mod demo;
pub mod eid;
pub mod gps;
#[cfg(feature = "pcsc")]
pub mod pcsc_readers;
pub mod printer;
pub mod receipt;

pub use card::{
    Address, CardError, CardEvent, CardEvidence, CardIdentity, CardReaders, DocumentType,
    HolderAlgorithm, HolderRequest, HolderSignature, ReaderState, Sex, SimCardReaders,
};
pub use demo::{DemoCitizen, DemoRole, demo_avatar_svg, demo_citizens};
pub use gps::{
    FixMode, GpsFix, GpsHealth, GpsLink, GpsState, GpsdOptions, GpsdSource, PositionSource, Route,
    SimGps,
};
#[cfg(feature = "pcsc")]
pub use pcsc_readers::PcscReaders;
pub use printer::{
    DocumentPrinter, PrintError, PrintJob, PrinterStatus, ReceiptPrinter, SimDocumentPrinter,
    SimReceiptPrinter, TcpPrinterTimeouts, TcpReceiptPrinter,
};
pub use receipt::{Receipt, ReceiptLine, encode_escpos, render_text};
