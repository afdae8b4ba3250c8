//! The hub's HTTPS server: axum over tokio-rustls.
//!
//! One listener serves both audiences. The TLS configuration asks every client for a
//! certificate and verifies one that is offered against the city CA (`allow_unauthenticated`), so
//! central IT's browser, which has none, reaches the device page, while `/sync/v1/…` refuses any
//! connection without a device certificate (`401 certificate-required`). A certificate from
//! another CA fails the handshake itself (logged at `warn` with the peer's address). The device's
//! identity is read once per connection from its verified certificate and handed to the
//! handlers as a request extension ([`Peer`]).
//!
//! Routes: `POST /sync/v1/upload` (PROTOCOL.md), `GET /health`, the device page (`/devices`,
//! `/devices/{id}/quarantine`, sign-in at `/signin`), and `POST /api/v1/requests/{id}/events`
//! for central IT (see [`crate::pages`]).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use busloket_sync::at_rest::AtRestKey;
use busloket_sync::protocol::{MAX_BODY_BYTES, MEDIA_TYPE};
use busloket_sync::terms::DeviceId;
use futures::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::auth::Sessions;
use crate::config::{Config, IndicatorsConfig};
use crate::i18n::Translations;
use crate::indicators::{Gazetteer, Settings};
use crate::schedule::{LiveSchedule, LoadError};
use crate::storage::{HubStorage, SledStorage, StorageError};
use crate::sync::{Hub, Refusal, error_chain};
use crate::trust::{LiveTrust, Peer, TrustError, load_tls};

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long open requests may take to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);

/// Why the hub cannot start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error("cannot use the at-rest key")]
    Key(#[from] busloket_sync::at_rest::AtRestError),
    #[error("cannot open the hub's store")]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Schedule(#[from] LoadError),
    #[error("the page translations are broken: {0}")]
    Translations(String),
    #[error("{path}: {problem}")]
    Postcodes { path: PathBuf, problem: String },
    #[error("cannot index the indicators")]
    Index(#[from] crate::sync::HubError),
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

pub struct Inner {
    pub hub: Arc<Hub<dyn HubStorage>>,
    pub trust: Arc<LiveTrust>,
    pub schedule: Arc<LiveSchedule>,
    pub registry: PathBuf,
    pub hub_id: DeviceId,
    pub sessions: Sessions,
    pub translations: Translations,
    /// The estimate's settings (`[indicators]`), when configured.
    pub indicators: Option<Settings>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("hub_id", &self.hub_id)
            .finish_non_exhaustive()
    }
}

/// Everything the server needs, opened from the configuration.
#[derive(Debug)]
pub struct Opened {
    pub state: AppState,
    pub tls: Arc<rustls::ServerConfig>,
}

impl AppState {
    /// Reads the trust material, the staff file and the at-rest key, and opens the store.
    /// Every error names the file.
    pub fn open(config: &Config) -> Result<Opened, StartError> {
        let tls = load_tls(&config.trust)?;
        let key = AtRestKey::load_file(&config.at_rest_key)?;
        let storage: Arc<dyn HubStorage> = Arc::new(SledStorage::open(&config.data_dir, key)?);
        let hub = Arc::new(Hub::new(storage, &tls.hub_public_key)?);
        let trust = LiveTrust::load(tls.ca.clone(), &config.trust.crl, &config.staff_file, &hub)?;
        let schedule = LiveSchedule::load(config.stops_file.as_deref(), &hub)?;
        let indicators = config
            .indicators
            .as_ref()
            .map(load_indicator_settings)
            .transpose()?;
        hub.index_indicators()?;
        let state = AppState {
            inner: Arc::new(Inner {
                hub,
                trust: Arc::new(trust),
                schedule: Arc::new(schedule),
                registry: config.trust.registry.clone(),
                hub_id: config.hub_id.clone(),
                sessions: Sessions::default(),
                translations: Translations::new().map_err(StartError::Translations)?,
                indicators,
            }),
        };
        Ok(Opened {
            state,
            tls: tls.server,
        })
    }

    /// Reloads the CRL, the staff file and the stop schedule if they changed (also what SIGHUP
    /// does).
    pub fn refresh(&self) {
        self.trust.refresh(&self.hub);
        self.schedule.refresh(&self.hub);
    }
}

/// Reads the postcode list the `[indicators]` section names.
fn load_indicator_settings(config: &IndicatorsConfig) -> Result<Settings, StartError> {
    let path = &config.postcodes_file;
    let problem = |problem: String| StartError::Postcodes {
        path: path.clone(),
        problem,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|error| problem(format!("cannot read the postcode list: {error}")))?;
    let postcodes = Gazetteer::parse(&text).map_err(|error| problem(error.to_string()))?;
    Ok(Settings {
        town_hall: config.town_hall.clone(),
        postcodes,
        road_factor: config.road_factor,
    })
}

/// The router: every route of the hub.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/sync/v1/upload", post(upload))
        .route("/health", get(health))
        .merge(crate::pages::routes())
        .merge(crate::indicators::page::routes())
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |request: &axum::http::Request<Body>| {
                    tracing::info_span!("http", method = %request.method(), path = %request.uri().path())
                },
            ),
        )
        .with_state(state)
}

/// A whole-upload refusal as PROTOCOL.md "Errors" says: the status and `{"code", "message"}`.
pub fn refusal_response(refusal: &Refusal) -> Response {
    let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        axum::Json(serde_json::json!({"code": refusal.code, "message": refusal.message})),
    )
        .into_response()
}

async fn upload(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let device = match parts.extensions.get::<Peer>() {
        Some(Peer::Device(device)) => device.clone(),
        Some(Peer::NotADevice(problem)) => {
            tracing::warn!("upload with a certificate that is not a device's: {problem}");
            return refusal_response(&Refusal::new(
                "wrong-device",
                403,
                format!("the client certificate is not a device certificate: {problem}"),
            ));
        }
        Some(Peer::Anonymous) | None => {
            return refusal_response(&Refusal::new(
                "certificate-required",
                401,
                "sync needs the device's client certificate",
            ));
        }
    };
    // Step 2 before the media type and the size: a revoked device is told so, and what it sent
    // (up to the size limit, never more) is kept in quarantine.
    let worker = state.clone();
    let serial = device.serial.clone();
    let revoked = tokio::task::spawn_blocking(move || {
        worker.refresh();
        worker.hub.is_revoked(&serial)
    })
    .await;
    match revoked {
        Ok(false) => {}
        Ok(true) => {
            let body = read_prefix(body, MAX_BODY_BYTES).await;
            let now = chrono::Utc::now();
            let worker = state.clone();
            let refused =
                tokio::task::spawn_blocking(move || worker.hub.refuse_revoked(&device, &body, now))
                    .await
                    .unwrap_or_else(|error| {
                        tracing::error!("the upload's worker failed: {error}");
                        Refusal::unavailable()
                    });
            return refusal_response(&refused);
        }
        Err(error) => {
            tracing::error!("the upload's worker failed: {error}");
            return refusal_response(&Refusal::unavailable());
        }
    }
    let media_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    if media_type != Some(MEDIA_TYPE) {
        tracing::warn!(device = %device.id, code = "bad-encoding", ?media_type, "upload refused: wrong media type");
        return refusal_response(&Refusal::new(
            "bad-encoding",
            400,
            format!("the body must be {MEDIA_TYPE}"),
        ));
    }
    let body = match read_limited(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(refusal) => {
            tracing::warn!(device = %device.id, code = refusal.code, "upload refused: {}", refusal.message);
            return refusal_response(&refusal);
        }
    };
    let now = chrono::Utc::now();
    let worker = state.clone();
    let result = tokio::task::spawn_blocking(move || {
        worker.refresh();
        worker.hub.receive(&device, &body, now)
    })
    .await;
    match result {
        Ok(Ok(answer)) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE))],
            answer,
        )
            .into_response(),
        Ok(Err(refusal)) => refusal_response(&refusal),
        Err(error) => {
            tracing::error!("the upload's worker failed: {error}");
            refusal_response(&Refusal::unavailable())
        }
    }
}

/// Reads a body of at most `limit` bytes; `413 too-large` beyond, without reading the rest.
async fn read_limited(body: Body, limit: usize) -> Result<Vec<u8>, Refusal> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| {
            Refusal::new(
                "bad-encoding",
                400,
                format!("the body did not arrive: {error}"),
            )
        })?;
        if bytes.len() + chunk.len() > limit {
            return Err(Refusal::new(
                "too-large",
                413,
                format!("the body is larger than {limit} bytes"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Reads at most `limit` bytes of a body (what arrived of it, for the quarantine), and none of
/// the rest.
async fn read_prefix(body: Body, limit: usize) -> Vec<u8> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while bytes.len() < limit
        && let Some(Ok(chunk)) = stream.next().await
    {
        let take = chunk.len().min(limit - bytes.len());
        bytes.extend_from_slice(&chunk[..take]);
    }
    bytes
}

async fn health(State(state): State<AppState>) -> Response {
    let worker = state.clone();
    let store = tokio::task::spawn_blocking(move || worker.hub.storage().check())
        .await
        .map_err(|error| error.to_string())
        .and_then(|result| result.map_err(|error| error_chain(&error)));
    if let Err(error) = &store {
        tracing::error!("health: the store fails: {error}");
    }
    let ok = store.is_ok();
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(serde_json::json!({
            "ok": ok,
            "version": env!("CARGO_PKG_VERSION"),
            "store": if ok { "ok" } else { "failing" },
            "crl_number": state.trust.crl_number(),
        })),
    )
        .into_response()
}

/// Serves `app(state)` over TLS on `listener` until `shutdown` completes, then lets open
/// connections finish their requests for up to ten seconds.
pub async fn run(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: AppState,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let app = app(state);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!("cannot accept a connection: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        connections.spawn(serve_connection(
            stream,
            peer,
            acceptor.clone(),
            app.clone(),
            stopped.clone(),
        ));
    }
    drop(listener);
    let _ = stop.send(true);
    let drained = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the drain; closing them"
        );
        connections.abort_all();
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    app: Router,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::warn!(%peer, "TLS handshake refused: {error}");
            return;
        }
        Err(_) => {
            tracing::warn!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let identity = Peer::from_certificates(tls.get_ref().1.peer_certificates());
    if let Peer::Device(device) = &identity {
        tracing::debug!(%peer, device = %device.id, "device connected");
    }
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(identity.clone());
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            app.clone().oneshot(request.map(Body::new))
        });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
    tokio::pin!(connection);
    let stopping = async move {
        // The guard `wait_for` returns is not `Send`: drop it before the connection is awaited.
        let _ = stopped.wait_for(|stop| *stop).await.map(|_| ());
    };
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stopping => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, "connection ended: {error}");
    }
}
