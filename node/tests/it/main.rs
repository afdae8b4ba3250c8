//! The node's router in-process (`oneshot`), with simulated devices and a store in a temporary
//! directory: the JSON API's answers to good and bad input, and the kiosk flow driven by card
//! events.

mod api;
mod gps;
mod kiosk;
mod position;
mod staff;
mod sync;

use std::path::Path;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use busloket_node::config::Config;
use busloket_node::state::AppState;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// A demo-mode state in `dir`, as `deploy/node.example.toml` configures it.
pub fn demo_state(dir: &Path) -> AppState {
    let example = include_str!("../../../deploy/node.example.toml");
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    busloket_sync::at_rest::AtRestKey::generate_file(&dir.join("keys/at-rest.key")).unwrap();
    let config = Config::parse(&dir.join("node.toml"), example).unwrap();
    AppState::from_config(config).unwrap()
}

pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub text: String,
}

pub async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let request = request
        .body(Body::from(body.unwrap_or("").to_owned()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer { status, body, text }
}

pub async fn form(app: &Router, uri: &str, fields: &str) -> Answer {
    let request = Request::builder()
        .method("POST")
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(fields.to_owned()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Answer {
        status,
        body: Value::Null,
        text,
    }
}

/// A request for `document` by the holder of `number`, at the desk, as the API takes it.
pub fn request_body(document: &str, number: &str) -> String {
    json!({
        "document": document,
        "requester": { "national_number": number, "name": "Tom Pieter Janssens" },
        "relation": "self",
        "authentication": "card-read",
        "channel": "bus-counter",
        "language": "nl",
        "delivery": { "method": "print-here" },
        "station": "desk"
    })
    .to_string()
}

pub async fn sign_in(app: &Router) -> String {
    let answer = call(
        app,
        "POST",
        "/api/v1/session",
        None,
        Some(r#"{"username":"demo","password":"bus-demo-2026"}"#),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.body["token"].as_str().unwrap().to_owned()
}
