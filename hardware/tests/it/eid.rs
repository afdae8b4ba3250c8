//! The pure eID reader: TLV and file parsing, APDUs and the T=0 session over a scripted card,
//! and the signature, certificate, chip and holder checks against a test PKI the tests generate.

mod file_card;
mod fixtures;
mod parsing;
mod properties;
mod session;
mod verification;
