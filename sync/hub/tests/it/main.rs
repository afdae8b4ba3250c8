//! The hub's integration tests: the engine over a real sled store, and the real server over TLS
//! with a city CA made in a temporary directory.

mod engine;
mod indicators;
mod server;
mod support;
