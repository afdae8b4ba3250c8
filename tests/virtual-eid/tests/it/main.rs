//! The virtual eID's tests, one binary: the card's APDU behaviour (`reading`, `pin`,
//! `signatures`), the forged cards (`forgeries`), the test PKI (`pki`) and the vpcd framing
//! against a fake vpcd (`vpcd`).

mod forgeries;
mod pin;
mod pki;
mod reading;
mod signatures;
mod support;
mod vpcd;
