//! The JSON API under `/api/v1`: everything the pages do, for scripts, tests and the benchmark.
//!
//! Every request except sign-in and the catalogue needs a staff session (cookie or bearer token).
//! Bad input gets a 4xx with a stable `code` and nothing is stored.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use busloket_hardware::{GpsState, PrinterStatus};
use busloket_sync::eligibility::Decision;
use busloket_sync::national_number::NationalNumber;
use busloket_sync::record::{Delivery, Person, RequestView};
use busloket_sync::store::RequestSummary;
use busloket_sync::terms::{
    AuthStrength, Channel, DeliveryMethod, DocumentCode, Language, Postcode, Relation, RequestId,
};
use chrono::{NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::auth::Staff;
use crate::error::ApiError;
use crate::state::AppState;
use crate::workflow::{self, SubmitInput};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/session", post(sign_in))
        .route("/catalogue", get(catalogue))
        .route("/requests", post(submit).get(list))
        .route("/requests/{id}", get(show))
        .route("/requests/{id}/cancel", post(cancel))
        .route("/requests/{id}/reprint", post(reprint))
        .route("/devices", get(devices))
        .route("/sync", get(sync_status).post(request_sync))
        .route("/position", get(position))
}

/// `Json` whose rejections answer in the API's error shape.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::bad_request(
                "bad-content-type",
                "send JSON with Content-Type: application/json",
            )),
            Err(rejection) => Err(ApiError::bad_request("bad-json", rejection.body_text())),
        }
    }
}

fn parse_id(text: &str) -> Result<RequestId, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad_request("bad-request-id", format!("`{text}` is not a request id"))
    })
}

#[derive(Debug, Deserialize)]
struct SignIn {
    username: String,
    password: String,
}

#[derive(Debug, Serialize)]
struct SignedIn {
    token: String,
}

async fn sign_in(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<Json<SignedIn>, ApiError> {
    let accounts = state.staff_accounts();
    let sessions = state.staff_sessions.clone();
    let token = tokio::task::spawn_blocking(move || {
        sessions.sign_in(&accounts, &body.username, &body.password)
    })
    .await?;
    token
        .map(|token| Json(SignedIn { token }))
        .ok_or_else(|| ApiError {
            code: "bad-credentials",
            message: "unknown user or wrong password".into(),
            ..ApiError::unauthorized()
        })
}

#[derive(Debug, Serialize)]
struct CatalogueBody<'a> {
    version: &'a str,
    documents: &'a [busloket_sync::catalogue::DocumentType],
}

async fn catalogue(State(state): State<AppState>) -> Response {
    Json(CatalogueBody {
        version: state.catalogue.version(),
        documents: state.catalogue.types(),
    })
    .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonBody {
    national_number: String,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryBody {
    method: DeliveryMethod,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRequestBody {
    document: DocumentCode,
    requester: PersonBody,
    /// Absent when the requester asks for themself.
    #[serde(default)]
    subject: Option<PersonBody>,
    relation: Relation,
    #[serde(default)]
    subject_is_minor: bool,
    /// As the clerk saw it: `declared` (typed in) or `card-read` (the card was read at the desk).
    authentication: AuthStrength,
    channel: Channel,
    language: Language,
    delivery: DeliveryBody,
    #[serde(default)]
    purpose: Option<String>,
    /// The requester's postcode, as they told it (four digits).
    #[serde(default)]
    requester_postcode: Option<Postcode>,
    /// The kiosk station or `desk`.
    station: String,
}

#[derive(Debug, Serialize)]
struct Created {
    id: RequestId,
    queue_number: u32,
    decision: Decision,
    ticket_printed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    ticket_error: Option<String>,
}

fn person(body: PersonBody, which: &'static str) -> Result<Person, ApiError> {
    let national_number = NationalNumber::parse(&body.national_number)
        .map_err(|err| ApiError::unprocessable("bad-national-number", format!("{which}: {err}")))?;
    Ok(Person {
        national_number,
        name: body.name.trim().to_owned(),
    })
}

async fn submit(
    State(state): State<AppState>,
    staff: Staff,
    ApiJson(body): ApiJson<NewRequestBody>,
) -> Result<Response, ApiError> {
    if body.authentication == AuthStrength::CardPin {
        return Err(ApiError::unprocessable(
            "bad-authentication",
            "a PIN cannot be vouched for through the API",
        ));
    }
    if body.station != "desk" && state.config.station(&body.station).is_none() {
        return Err(ApiError::unprocessable(
            "unknown-station",
            format!("no station `{}`", body.station),
        ));
    }
    let requester = person(body.requester, "requester")?;
    let subject = match body.subject {
        Some(subject) => person(subject, "subject")?,
        None => requester.clone(),
    };
    let input = SubmitInput {
        document: body.document,
        requester,
        subject,
        relation: body.relation,
        subject_is_minor: body.subject_is_minor,
        authentication: body.authentication,
        channel: body.channel,
        language: body.language,
        delivery: Delivery {
            method: body.delivery.method,
            email: body.delivery.email,
        },
        purpose: body.purpose,
        // The API takes no card evidence: a client cannot vouch for a card.
        evidence: None,
        requester_postcode: body.requester_postcode,
        station: body.station,
        by: staff.actor(),
    };
    let submitted = workflow::submit(&state, input, Utc::now()).await?;
    // Server-Timing (a standard header) lets the benchmark see when the request became durable,
    // which the client cannot: the answer comes after the ticket is printed.
    let timing = format!(
        "durable;dur={:.3}, ticket;dur={:.3}",
        submitted.durable_after.as_secs_f64() * 1000.0,
        submitted.ticket_took.as_secs_f64() * 1000.0
    );
    let created = Created {
        id: submitted.id,
        queue_number: submitted.queue_number,
        decision: submitted.decision,
        ticket_printed: submitted.ticket.is_ok(),
        ticket_error: submitted.ticket.err().map(|err| err.to_string()),
    };
    Ok((
        StatusCode::CREATED,
        [("server-timing", timing)],
        Json(created),
    )
        .into_response())
}

async fn show(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, ApiError> {
    let id = parse_id(&id)?;
    let view = workflow::load_view(&state, id)
        .await?
        .ok_or_else(|| ApiError::not_found("unknown-request", format!("no request {id}")))?;
    workflow::log_access(
        &state,
        &staff.actor(),
        view.fields.subject.national_number,
        &["request"],
        "request read through the API",
        Some(id),
        Utc::now(),
    )
    .await?;
    Ok(Json(view))
}

#[derive(Debug, Deserialize)]
struct DayQuery {
    day: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    _staff: Staff,
    Query(query): Query<DayQuery>,
) -> Result<Json<Vec<QueueEntry>>, ApiError> {
    let day = match query.day {
        Some(text) => NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|_| {
            ApiError::bad_request("bad-day", format!("`{text}` is not a day (YYYY-MM-DD)"))
        })?,
        None => Utc::now().date_naive(),
    };
    let store = state.store.clone();
    let summaries = tokio::task::spawn_blocking(move || store.summaries_by_day(day))
        .await?
        .map_err(ApiError::internal)?;
    Ok(Json(summaries.into_iter().map(QueueEntry::from).collect()))
}

/// A request in a day's list: what the queue needs, without the citizen's name or number (those
/// are read one request at a time, and each read is logged).
#[derive(Debug, Serialize)]
struct QueueEntry {
    id: RequestId,
    queue_number: u32,
    document: DocumentCode,
    status: busloket_sync::record::Status,
    station: String,
    channel: Channel,
    stop: Option<busloket_sync::terms::StopId>,
    created_at: chrono::DateTime<Utc>,
    updated_at: chrono::DateTime<Utc>,
}

impl From<RequestSummary> for QueueEntry {
    fn from(summary: RequestSummary) -> QueueEntry {
        QueueEntry {
            id: summary.id,
            queue_number: summary.queue_number,
            document: summary.document,
            status: summary.status,
            station: summary.station,
            channel: summary.channel,
            stop: summary.stop,
            created_at: summary.created_at,
            updated_at: summary.updated_at,
        }
    }
}

#[derive(Debug, Deserialize)]
struct CancelBody {
    reason: String,
}

async fn cancel(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CancelBody>,
) -> Result<Json<QueueEntry>, ApiError> {
    let id = parse_id(&id)?;
    workflow::cancel(&state, id, &body.reason, &staff.actor(), Utc::now())
        .await
        .map(|summary| Json(summary.into()))
}

#[derive(Debug, Serialize)]
struct Reprinted {
    printed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

async fn reprint(
    State(state): State<AppState>,
    _staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<Reprinted>, ApiError> {
    let id = parse_id(&id)?;
    if workflow::load_view(&state, id).await?.is_none() {
        return Err(ApiError::not_found(
            "unknown-request",
            format!("no request {id}"),
        ));
    }
    let result = workflow::print_ticket(&state, id, Utc::now()).await;
    Ok(Json(Reprinted {
        printed: result.is_ok(),
        error: result.err().map(|err| err.to_string()),
    }))
}

#[derive(Debug, Serialize)]
struct Devices {
    readers: Vec<busloket_hardware::ReaderState>,
    receipt_printer: PrinterBody,
    gps: GpsState,
}

#[derive(Debug, Serialize)]
struct PrinterBody {
    name: String,
    status: PrinterStatus,
}

async fn devices(State(state): State<AppState>, _staff: Staff) -> Json<Devices> {
    Json(Devices {
        readers: state.readers.readers(),
        receipt_printer: PrinterBody {
            name: state.receipt_printer.name().to_owned(),
            status: state.receipt_printer.status(),
        },
        gps: state.gps.current(),
    })
}

/// Where the bus is, as the staff console shows it: the stop requests get and how it is
/// known, the fix, the clock's skew, the receiver's health.
async fn position(
    State(state): State<AppState>,
    _staff: Staff,
) -> Json<crate::position::PositionStatus> {
    Json(state.position.status(Utc::now()))
}

/// The sync status, as the staff console shows it.
async fn sync_status(
    State(state): State<AppState>,
    _staff: Staff,
) -> Json<crate::sync::SyncStatus> {
    Json(crate::sync::current_status(&state).await)
}

/// Asks the sync loop for a round now; 202, or 409 `not-synced` on a node without `[sync]`.
async fn request_sync(
    State(state): State<AppState>,
    _staff: Staff,
) -> Result<StatusCode, ApiError> {
    if state.enrolled.is_none() {
        return Err(ApiError::conflict(
            "not-synced",
            "this node has no [sync] configuration",
        ));
    }
    state.sync.request_sync();
    Ok(StatusCode::ACCEPTED)
}
