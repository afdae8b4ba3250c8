//! The pure half of the Belgian eID reader: everything between the bytes a card answers and a
//! verified [`crate::card::CardIdentity`], without PC/SC.
//!
//! - [`tlv`]: the simple-TLV encoding of the identity and address files.
//! - [`files`]: the identity file (`DF01/4031`) and address file (`DF01/4033`) as typed structs,
//!   and their conversion into a [`crate::card::CardIdentity`].
//! - [`apdu`]: the command APDUs the Belpic applet understands, the [`Pin`] that never shows
//!   itself, and status words.
//! - [`session`]: a card session over any [`Transmit`] (T=0 `61xx`/`6Cxx` handling, chunked file
//!   reads, PIN, holder authentication, chip challenge).
//! - [`certificate`]: X.509 certificates as stored on the card (zero-padded), their keys, and
//!   chains to configured trust anchors.
//! - [`verify`]: the checks that the files were signed by the national register, that the photo
//!   is the card's, that the chip is genuine and that the holder signed with their PIN.
//!
//! Invariants: nothing here does IO, reads a clock or draws random numbers — the transport, the
//! current time and the challenges are arguments. Nothing here logs; a [`Pin`] and a national
//! number never appear in a `Debug` or `Display` output. Parsers never panic on any input and
//! allocate at most in proportion to it.

pub mod apdu;
pub mod certificate;
pub mod files;
pub mod roots;
pub mod session;
pub mod tlv;
pub mod verify;

pub use apdu::{AuthenticationAlgorithm, Command, FilePath, Pin, PinError, StatusWord};
pub use certificate::{CertificateError, CertificateKey, TrustAnchors, X509Certificate};
pub use files::{FileError, IdentityFile, PhotoHash, parse_address, parse_identity};
pub use session::{CardData, CardSession, SessionError, Transmit, TransmitError};
pub use tlv::{TlvError, TlvField, parse_tlv};
pub use verify::{CardFiles, VerifiedCard, VerifyError, verify_card};
