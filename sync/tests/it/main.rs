//! Integration tests of `busloket-sync`: request records (examples and merge properties, the
//! holder statement), the at-rest key, the store (including a crash of a child process, and the
//! trip log), the access log and the sync protocol (uploads and answers, and every way to tamper
//! with them). One test binary, so linking happens once.

mod access_log;
mod at_rest;
mod crash;
mod protocol;
mod record;
mod record_merge;
mod statement;
mod store;
mod store_sync;
mod support;
mod trip;
