//! The holder statement: the bytes a citizen's eID signs, with their PIN, to say "I ask for this".
//!
//! It is built from the request's set-once fields alone, so whoever holds the record — the bus,
//! the hub, an auditor years later — can rebuild it and check the card's signature with the
//! certificate the record carries. It covers what the citizen chose and where and when they
//! chose it; not what the system decides afterwards (queue number, document language,
//! authentication strength, evidence).
//!
//! Layout, version 1: UTF-8 text, one `key: value` line per field in this order, each ending in
//! `\n`, after the first line `busloket holder statement v1`. Values are JSON strings (so a
//! purpose with a line break cannot forge a line), `null` when absent; `at` is the request time
//! in whole milliseconds since the Unix epoch, as the record stores it. The request id is a
//! fresh UUIDv7, which makes every statement unique: a signature cannot be replayed onto another
//! request.

use std::fmt::Write;

use super::NewRequest;

const HEADER: &str = "busloket holder statement v1";

/// The statement of `request` the holder's card signs (see the module documentation).
pub fn holder_statement(request: &NewRequest) -> Vec<u8> {
    let json = |value: Option<&str>| match value {
        // Serialising a string cannot fail.
        Some(text) => serde_json::to_string(text).unwrap_or_default(),
        None => "null".to_owned(),
    };
    let id = request.id.to_string();
    let fields: [(&str, Option<&str>); 12] = [
        ("request", Some(&id)),
        ("document", Some(request.document.as_str())),
        (
            "requester",
            Some(request.requester.national_number.digits()),
        ),
        ("subject", Some(request.subject.national_number.digits())),
        ("relation", Some(request.relation.as_str())),
        ("channel", Some(request.channel.as_str())),
        ("delivery", Some(request.delivery.method.as_str())),
        ("email", request.delivery.email.as_deref()),
        ("purpose", request.purpose.as_deref()),
        ("device", Some(request.origin.device.as_str())),
        ("station", Some(request.origin.station.as_str())),
        (
            "stop",
            request.origin.stop.as_ref().map(|stop| stop.as_str()),
        ),
    ];
    let mut text = format!("{HEADER}\n");
    for (key, value) in fields {
        // Writing to a String cannot fail.
        let _ = writeln!(text, "{key}: {}", json(value));
    }
    let _ = writeln!(text, "at: {}", request.origin.at.timestamp_millis());
    text.into_bytes()
}
