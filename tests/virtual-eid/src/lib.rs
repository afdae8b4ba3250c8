//! `busloket-virtual-eid`: a virtual Belgian eID card for tests, written in Rust.
//!
//! - [`profile`]: applet 1.7 (RSA) or 1.8 (ECDSA P-384).
//! - [`pki`]: the test PKI (test root → RRN certificate; test Citizen/Foreigner CA →
//!   authentication and signature certificates), deterministic from a seed; [`keys`]: the
//!   seeded keys behind it.
//! - [`files`]: the card's files as a real card lays them out (TLV identity and address files,
//!   signature files, padded certificate files, a synthetic JPEG photo).
//! - [`personalise`]: a [`CardSpec`] (a demo citizen, PIN, forgeries) → a [`VirtualCard`].
//! - [`card`]: the card as a pure APDU state machine with T=0 behaviour (applet 1.7 and 1.8).
//! - [`apdu`]: command parsing, status words, transcripts with masked PINs.
//! - [`vpcd`]: the card served to pcscd through the vpcd driver (insert = connect, pull =
//!   close; or a card that pulls itself out after a number of APDUs).
//!
//! Invariants:
//! - Test support only: nothing here may be a dependency of a crate that is deployed on a bus
//!   (its root is a test root; vpcd listens on all interfaces).
//! - It depends on `busloket-hardware` only for `CardIdentity` and the demo citizens, never on
//!   the node or sync crates, and never on pcsc: the card side needs no libpcsclite.
//! - Only `vpcd` does IO; everything else is deterministic and clock-free.
//! - No PIN is ever logged: transcripts mask VERIFY data.

pub mod apdu;
pub mod card;
pub mod files;
pub mod keys;
pub mod personalise;
pub mod pki;
pub mod profile;
mod security;
pub mod vpcd;

pub use apdu::{Exchange, render_transcript};
pub use card::{CardContents, FileId, VirtualCard, file};
pub use keys::TestKey;
pub use personalise::{CardSpec, DEFAULT_PIN, Forgery, PersonaliseError, personalise};
pub use pki::{CardKeys, DEFAULT_SEED, PkiError, TestPki};
pub use profile::{Profile, UnknownProfile};
pub use vpcd::{DEFAULT_VPCD_PORT, InsertedCard, Removal, VpcdError, insert, insert_pulled_after};
