//! The shared state of busloket, used by the node in the bus and by the hub at the city.
//!
//! What lives here: national numbers ([`national_number`]), the document catalogue and its
//! eligibility rules ([`catalogue`], [`eligibility`]), the request record as one Automerge document
//! per request ([`record`]), the encrypted sled store ([`store`], [`at_rest`]) and the hash-chained
//! access log ([`access_log`]), the link of staff accounts to their own eID ([`staff`]), and the
//! sync protocol between a bus and the hub ([`protocol`]), the bus's stop schedule ([`stops`]) and
//! its trip log ([`trip`]).
//!
//! Architecture invariants:
//! - The pure modules (`national_number`, `catalogue`, `eligibility`, `record`, `staff`, `terms`,
//!   `protocol`, `stops`, `trip`) do no IO and
//!   read no clock: time, ids and keys are arguments. Only `store`, `at_rest` and `access_log` touch
//!   the disk.
//! - This crate knows nothing of HTTP, HTML or devices: it never depends on axum or on
//!   `busloket-hardware`.

pub mod access_log;
pub mod at_rest;
pub mod catalogue;
pub mod eligibility;
pub mod national_number;
pub mod protocol;
pub mod record;
pub mod staff;
pub mod stops;
pub mod store;
pub mod terms;
pub mod trip;

/// An error with its causes, `: `-separated, for logs and messages: an error's own text often
/// leaves out why ("error sending request"). The node and the hub use it; `busloket-hardware`,
/// which depends on nothing of ours, keeps a copy.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
