//! The edge node in the bus: it serves the kiosk (tablets for citizens), the staff console and the
//! JSON API over the bus Wi-Fi, keeps every request in the encrypted store, and drives the card
//! readers, printers and GPS through the traits of `busloket-hardware`.
//!
//! Layout:
//! - [`config`]: the TOML configuration, validated once.
//! - [`state`]: what every handler shares ([`state::AppState`]), and how it is built from the
//!   configuration (real devices or, in demo mode, simulators).
//! - [`workflow`]: submitting a request and the lifecycle actions; the only code that writes
//!   request records.
//! - [`kiosk`], [`staff`], [`demo`], [`api`]: the pages and the JSON API, one router each.
//! - [`i18n`], [`layout`]: translations and the shared page frame.
//! - [`sync`]: the enrolment, the sync loop with the hub, the sync status and retention.
//! - [`tls`]: HTTPS on the bus Wi-Fi with the enrolment's certificate.
//!
//! Invariants: only this crate knows axum and HTML; handlers never hold a lock across `.await`;
//! blocking store calls run on `spawn_blocking`; every read of citizen data writes an access-log
//! entry ([`workflow::log_access`]).

pub mod api;
pub mod auth;
pub mod config;
pub mod demo;
pub mod error;
pub mod events;
pub mod i18n;
pub mod kiosk;
pub mod layout;
pub mod position;
pub mod register;
pub mod staff;
pub mod state;
pub mod sync;
pub mod tls;
pub mod workflow;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::MatchedPath;
use axum::http::{HeaderValue, Request, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::state::AppState;

/// The whole router; tests drive it in-process with `oneshot`.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/", get(layout::index))
        .route("/healthz", get(healthz))
        .route("/assets/busloket.css", get(layout::stylesheet))
        .route("/assets/busloket.js", get(layout::script))
        .merge(kiosk::routes())
        .merge(staff::routes())
        .nest("/api/v1", api::routes());
    if state.demo.is_some() {
        router = router.merge(demo::routes());
    }
    router
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let matched = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map(MatchedPath::as_str)
                    .unwrap_or("");
                tracing::info_span!("http", method = %request.method(), path = matched)
            }),
        )
        // Pages carry citizen data: never keep them in a tablet's cache or history.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .with_state(state)
}

async fn healthz() -> impl IntoResponse {
    "ok"
}

/// Serves until `shutdown` resolves, then drains open requests for at most ten seconds. With an
/// enrolment (and unless `wifi_tls = false`) over HTTPS with the Wi-Fi certificate, with HSTS;
/// otherwise plain HTTP (the demo, tests, a lab bench). Starts the background tasks, the sync
/// loop among them.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    state.start_background_tasks();
    let stopping = state.shutdown.clone();
    let tls = state.wifi_tls();
    let app = app(state).layer(TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        Duration::from_secs(30),
    ));
    let shutdown = async move {
        shutdown.await;
        // Ends the server-sent event streams and the sync loop, which would otherwise keep the
        // drain waiting.
        stopping.cancel();
    };
    match tls {
        Some(tls) => {
            // Tablets and the laptop remember to come back over HTTPS only.
            let app = app.layer(SetResponseHeaderLayer::overriding(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000"),
            ));
            tls::serve_tls(listener, tls, app, shutdown).await
        }
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}
