//! The kiosk: the tablet pages a citizen walks through, one question per screen.
//!
//! language → insert your eID → for whom → which document → (purpose) → delivery → confirm →
//! ticket. The session lives on the node, one per station, never in the tablet: pulling the card
//! (or leaving the tablet alone) clears it, and the page follows through server-sent events.

pub mod pages;
mod session;

pub use session::{
    CardState, Citizen, Done, KioskSession, KioskSessions, PinProblem, Step, Subject, step,
};

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use busloket_hardware::eid::Pin;
use busloket_hardware::{CardError, CardEvent, CardIdentity, DocumentType};
use busloket_sync::national_number::NationalNumber;
use busloket_sync::record::{Delivery, Person};
use busloket_sync::terms::{
    AuthStrength, Channel, DeliveryMethod, DocumentCode, Language, Relation,
};
use chrono::Utc;
use futures::Stream;
use serde::Deserialize;
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

use crate::error::ApiError;
use crate::events::NodeEvent;
use crate::state::AppState;
use crate::workflow::{self, SubmitInput};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/kiosk/{station}", get(pages::show))
        .route("/kiosk/{station}/events", get(events))
        .route("/kiosk/{station}/language", post(choose_language))
        .route("/kiosk/{station}/for-whom", post(choose_subject))
        .route("/kiosk/{station}/document", post(choose_document))
        .route("/kiosk/{station}/purpose", post(give_purpose))
        .route("/kiosk/{station}/delivery", post(choose_delivery))
        .route("/kiosk/{station}/confirm", post(confirm))
        .route("/kiosk/{station}/back", post(back))
        .route("/kiosk/{station}/another", post(another))
        .route("/kiosk/{station}/help", post(help))
        .route("/kiosk/{station}/touch", post(touch))
        .route("/kiosk/{station}/end", post(end))
}

/// Follows the card readers: an inserted card is read, a pulled card ends the session.
pub async fn follow_card_events(
    state: AppState,
    mut events: tokio::sync::broadcast::Receiver<CardEvent>,
) {
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            () = state.shutdown.cancelled() => return,
        };
        match event {
            Ok(CardEvent::CardInserted { reader }) => card_inserted(&state, &reader),
            Ok(CardEvent::CardRemoved { reader }) => card_removed(&state, &reader),
            Ok(CardEvent::ReaderAdded { .. } | CardEvent::ReaderRemoved { .. }) => {
                state.events.send(NodeEvent::Device)
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "card events missed; kiosk sessions may be stale");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

fn card_inserted(state: &AppState, reader: &str) {
    let Some(station) = state.kiosks.station_of_reader(reader).map(str::to_owned) else {
        // The staff desk's reader: the card is read when the clerk asks (the old one was forgotten
        // when it left the reader).
        state.events.send(NodeEvent::Device);
        return;
    };
    let generation = state.kiosks.update(&station, |session| {
        session.clear_request();
        session.generation += 1;
        session.card = CardState::Reading {
            generation: session.generation,
        };
        session.relatives = None;
        session.last_touch = Instant::now();
        session.generation
    });
    notify(state, &station);
    let Some(generation) = generation else { return };
    let state = state.clone();
    let reader = reader.to_owned();
    tokio::spawn(async move {
        let card = match state.readers.read_identity(&reader).await {
            Ok(identity) => identify(&state, &station, identity).await,
            Err(err) => {
                tracing::info!(station, "card not read: {err}");
                CardState::Failed {
                    code: match err {
                        CardError::NotTrusted { .. } => "card-not-trusted",
                        CardError::ServiceUnavailable { .. } => "card-reader-down",
                        _ => "card-unreadable",
                    },
                }
            }
        };
        let relatives = match &card {
            CardState::Read(citizen) => state
                .register
                .relatives(&citizen.person.national_number, Utc::now().date_naive()),
            _ => None,
        };
        state.kiosks.update(&station, |session| {
            // A card pulled or swapped during the read leaves a newer generation: drop the result.
            if matches!(session.card, CardState::Reading { generation: current } if current == generation) {
                session.card = card;
                session.relatives = relatives;
            }
        });
        notify(&state, &station);
    });
}

/// Turns a read card into the session's citizen, logging the read of their data.
async fn identify(state: &AppState, station: &str, identity: CardIdentity) -> CardState {
    let Ok(national_number) = NationalNumber::parse(&identity.national_number) else {
        return CardState::Failed {
            code: "card-bad-number",
        };
    };
    let logged = workflow::log_access(
        state,
        &format!("kiosk:{station}"),
        national_number,
        &["identity", "address"],
        "identification at the kiosk",
        None,
        Utc::now(),
    )
    .await;
    if logged.is_err() {
        // Reading citizen data without a log entry is not allowed.
        return CardState::Failed {
            code: "card-unreadable",
        };
    }
    let first_name = identity
        .first_names
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    let name = format!("{} {}", identity.first_names, identity.surname);
    CardState::Read(Box::new(Citizen {
        person: Person {
            national_number,
            name,
        },
        first_name,
        authentication: AuthStrength::CardRead,
        can_sign: identity.document_type != DocumentType::KidsId,
        evidence: identity.evidence.as_ref().map(workflow::record_evidence),
        postcode: workflow::card_postcode(&identity),
    }))
}

fn card_removed(state: &AppState, reader: &str) {
    let Some(station) = state.kiosks.station_of_reader(reader).map(str::to_owned) else {
        if reader == state.config.desk_reader {
            state.desk.clear();
        }
        state.events.send(NodeEvent::Device);
        return;
    };
    state.kiosks.update(&station, |session| {
        session.generation += 1;
        session.clear();
    });
    tracing::debug!(station, "card removed, session cleared");
    notify(state, &station);
}

/// Tells the station's page that its session changed: a new revision of the session, and an
/// event for the pages that listen.
pub fn notify(state: &AppState, station: &str) {
    state
        .kiosks
        .update(station, |session| session.revision += 1);
    state.events.send(NodeEvent::Kiosk {
        station: station.to_owned(),
    });
}

/// Ends sessions nobody touched for the idle time plus the minute of warning.
pub async fn expire_idle_sessions(state: AppState) {
    let limit = state.config.kiosk_idle + Duration::from_secs(60);
    let mut ticker = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = state.shutdown.cancelled() => return,
        }
        for station in &state.config.stations {
            let expired = state.kiosks.update(&station.id, |session| {
                let expired = session.has_citizen_data() && session.last_touch.elapsed() > limit;
                if expired {
                    session.generation += 1;
                    session.clear();
                }
                expired
            });
            if expired == Some(true) {
                tracing::info!(station = station.id, "idle kiosk session ended");
                notify(&state, &station.id);
            }
        }
    }
}

fn redirect(station: &str) -> Response {
    Redirect::to(&format!("/kiosk/{station}")).into_response()
}

fn unknown_station(station: &str) -> ApiError {
    ApiError::not_found("unknown-station", format!("no kiosk station `{station}`"))
}

/// Applies a change to the session and goes back to its page.
fn change(
    state: &AppState,
    station: &str,
    apply: impl FnOnce(&mut KioskSession),
) -> Result<Response, ApiError> {
    state
        .kiosks
        .update(station, |session| {
            session.last_touch = Instant::now();
            session.message = None;
            apply(session);
        })
        .ok_or_else(|| unknown_station(station))?;
    notify(state, station);
    Ok(redirect(station))
}

#[derive(Debug, Deserialize)]
struct LanguageForm {
    language: String,
}

async fn choose_language(
    State(state): State<AppState>,
    Path(station): Path<String>,
    Form(form): Form<LanguageForm>,
) -> Result<Response, ApiError> {
    let language: Language = form
        .language
        .parse()
        .map_err(|err| ApiError::bad_request("bad-language", format!("{err}")))?;
    change(&state, &station, |session| {
        session.language = Some(language)
    })
}

#[derive(Debug, Deserialize)]
struct SubjectForm {
    /// `self` or the index of a relative in the session's list.
    who: String,
}

async fn choose_subject(
    State(state): State<AppState>,
    Path(station): Path<String>,
    Form(form): Form<SubjectForm>,
) -> Result<Response, ApiError> {
    let session = state
        .kiosks
        .get(&station)
        .ok_or_else(|| unknown_station(&station))?;
    let citizen = session
        .citizen()
        .ok_or_else(|| ApiError::conflict("no-card", "insert your card first"))?;
    let subject = if form.who == "self" {
        let today = Utc::now().date_naive();
        let minor = state
            .register
            .is_minor(&citizen.person.national_number, today)
            .unwrap_or(false);
        Subject {
            person: citizen.person.clone(),
            relation: Relation::Myself,
            minor,
        }
    } else {
        let index: usize = form
            .who
            .parse()
            .map_err(|_| ApiError::bad_request("bad-choice", "unknown choice"))?;
        let relative = session
            .relatives
            .as_ref()
            .and_then(|relatives| relatives.get(index))
            .ok_or_else(|| ApiError::bad_request("bad-choice", "unknown choice"))?;
        Subject {
            person: relative.person.clone(),
            relation: relative.relation,
            minor: relative.minor,
        }
    };
    change(&state, &station, |session| session.subject = Some(subject))
}

#[derive(Debug, Deserialize)]
struct DocumentForm {
    document: String,
}

async fn choose_document(
    State(state): State<AppState>,
    Path(station): Path<String>,
    Form(form): Form<DocumentForm>,
) -> Result<Response, ApiError> {
    let code: DocumentCode = form
        .document
        .parse()
        .map_err(|err| ApiError::bad_request("bad-document", format!("{err}")))?;
    workflow::document_type(&state, &code)?;
    change(&state, &station, |session| session.document = Some(code))
}

#[derive(Debug, Deserialize)]
struct PurposeForm {
    purpose: String,
}

async fn give_purpose(
    State(state): State<AppState>,
    Path(station): Path<String>,
    Form(form): Form<PurposeForm>,
) -> Result<Response, ApiError> {
    let purpose = form.purpose.trim().to_owned();
    change(&state, &station, |session| {
        if purpose.is_empty() {
            session.message = Some("kiosk-purpose-missing".into());
        } else {
            session.purpose = Some(purpose.chars().take(200).collect());
        }
    })
}

#[derive(Debug, Deserialize)]
struct DeliveryForm {
    method: String,
    #[serde(default)]
    email: String,
}

async fn choose_delivery(
    State(state): State<AppState>,
    Path(station): Path<String>,
    Form(form): Form<DeliveryForm>,
) -> Result<Response, ApiError> {
    let method: DeliveryMethod = form
        .method
        .parse()
        .map_err(|err| ApiError::bad_request("bad-delivery", format!("{err}")))?;
    let email = form.email.trim().to_owned();
    change(&state, &station, |session| {
        if method == DeliveryMethod::Email && !workflow::plausible_email(&email) {
            session.message = Some("kiosk-email-invalid".into());
            return;
        }
        let email = (method == DeliveryMethod::Email).then_some(email);
        session.delivery = Some(Delivery { method, email });
    })
}

/// No `Debug`: the form may hold a PIN.
#[derive(Deserialize)]
struct ConfirmForm {
    /// The eID PIN, when the citizen confirms with it. Never logged, never kept.
    #[serde(default)]
    pin: Option<String>,
}

async fn confirm(
    State(state): State<AppState>,
    Path(station): Path<String>,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, ApiError> {
    let session = state
        .kiosks
        .get(&station)
        .ok_or_else(|| unknown_station(&station))?;
    let reader = state
        .config
        .station(&station)
        .map(|config| config.reader.clone())
        .ok_or_else(|| unknown_station(&station))?;
    let purpose_required = |code: &DocumentCode| {
        state
            .catalogue
            .get(code)
            .is_some_and(|d| d.purpose_required)
    };
    if step(&session, purpose_required) != Step::Confirm {
        return Ok(redirect(&station));
    }
    let (Some(citizen), Some(subject), Some(document), Some(delivery)) = (
        session.citizen(),
        &session.subject,
        &session.document,
        &session.delivery,
    ) else {
        return Ok(redirect(&station));
    };
    let pin = match form
        .pin
        .as_deref()
        .map(str::trim)
        .filter(|pin| !pin.is_empty())
    {
        None => None,
        Some(digits) => match Pin::new(digits) {
            Ok(pin) => Some(pin),
            Err(_) => {
                return change(&state, &station, |session| {
                    session.pin_problem = Some(PinProblem::Format);
                });
            }
        },
    };
    let input = SubmitInput {
        document: document.clone(),
        requester: citizen.person.clone(),
        subject: subject.person.clone(),
        relation: subject.relation,
        subject_is_minor: subject.minor,
        authentication: citizen.authentication,
        channel: Channel::BusKiosk,
        language: session.language(),
        delivery: delivery.clone(),
        purpose: session.purpose.clone(),
        evidence: citizen.evidence.clone(),
        requester_postcode: citizen.postcode,
        station: station.clone(),
        by: format!("kiosk:{station}"),
    };
    let generation = session.generation;
    let outcome = submit_with_pin(&state, input, &reader, pin).await;
    state.kiosks.update(&station, |session| {
        // The card may have been pulled while the request was stored: then show nothing.
        if session.generation != generation {
            return;
        }
        session.last_touch = Instant::now();
        session.message = None;
        match &outcome {
            Ok(submitted) => {
                session.pin_problem = None;
                session.done = Some(Done {
                    queue_number: submitted.queue_number,
                    automatic: matches!(
                        submitted.decision,
                        busloket_sync::eligibility::Decision::Automatic
                    ),
                    ticket_printed: submitted.ticket.is_ok(),
                });
            }
            Err(Refusal::Pin(problem)) => session.pin_problem = Some(*problem),
            Err(Refusal::Request(err)) => {
                tracing::warn!(station, code = err.code, "kiosk submission refused");
                session.message = Some("kiosk-submit-failed".into());
            }
        }
    });
    notify(&state, &station);
    Ok(redirect(&station))
}

/// Why a kiosk confirmation did not store a request.
enum Refusal {
    /// The PIN confirmation did not work; the request can be made again.
    Pin(PinProblem),
    Request(ApiError),
}

/// Drafts the request, has the card sign it when a PIN was given, and stores it.
async fn submit_with_pin(
    state: &AppState,
    input: SubmitInput,
    reader: &str,
    pin: Option<Pin>,
) -> Result<workflow::Submitted, Refusal> {
    let station = input.station.clone();
    let mut draft = workflow::draft(state, input, Utc::now()).map_err(Refusal::Request)?;
    if let Some(pin) = pin {
        if let Err(err) = workflow::sign_with_pin(state, &mut draft, reader, pin).await {
            tracing::info!(station, "PIN confirmation did not work: {err}");
            return Err(Refusal::Pin(match err {
                CardError::WrongPin { tries_left, .. } => PinProblem::Wrong { tries_left },
                CardError::PinBlocked { .. } => PinProblem::Blocked,
                _ => PinProblem::Failed,
            }));
        }
        tracing::info!(station, request = %draft.request.id, "holder confirmed with PIN");
    }
    workflow::store(state, draft)
        .await
        .map_err(Refusal::Request)
}

#[derive(Debug, Deserialize)]
struct BackForm {
    /// The step to go back to.
    to: String,
}

async fn back(
    State(state): State<AppState>,
    Path(station): Path<String>,
    Form(form): Form<BackForm>,
) -> Result<Response, ApiError> {
    change(&state, &station, |session| match form.to.as_str() {
        "language" => {
            session.language = None;
        }
        "for-whom" => session.clear_request(),
        "document" => {
            session.document = None;
            session.purpose = None;
            session.delivery = None;
        }
        "purpose" => {
            session.purpose = None;
            session.delivery = None;
        }
        "delivery" => session.delivery = None,
        _ => {}
    })
}

async fn another(
    State(state): State<AppState>,
    Path(station): Path<String>,
) -> Result<Response, ApiError> {
    change(&state, &station, KioskSession::clear_request)
}

async fn help(
    State(state): State<AppState>,
    Path(station): Path<String>,
) -> Result<Response, ApiError> {
    state
        .config
        .station(&station)
        .ok_or_else(|| unknown_station(&station))?;
    state.help_calls.call(&station, Utc::now());
    state.events.send(NodeEvent::Help);
    tracing::info!(station, "citizen asked for help");
    let response = change(&state, &station, |session| {
        session.message = Some("kiosk-help-called".into())
    })?;
    Ok(response)
}

async fn touch(
    State(state): State<AppState>,
    Path(station): Path<String>,
) -> Result<Response, ApiError> {
    state
        .kiosks
        .update(&station, |session| session.last_touch = Instant::now())
        .ok_or_else(|| unknown_station(&station))?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

async fn end(
    State(state): State<AppState>,
    Path(station): Path<String>,
) -> Result<Response, ApiError> {
    change(&state, &station, |session| {
        session.generation += 1;
        session.clear();
    })
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    /// The session revision the page was drawn at.
    seen: Option<u64>,
}

/// Tells the station's page to redraw whenever its session changes — also at once, when it
/// changed between drawing the page and listening (a card read that ends while the page
/// reloads must not leave the citizen on "reading").
async fn events(
    State(state): State<AppState>,
    Path(station): Path<String>,
    Query(query): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    state
        .config
        .station(&station)
        .ok_or_else(|| unknown_station(&station))?;
    let shutdown = state.shutdown.clone();
    // Listen first, then look: a change after this point comes through the subscription.
    let changes = BroadcastStream::new(state.events.subscribe());
    let current = state.kiosks.get(&station).map(|session| session.revision);
    let behind =
        (query.seen != current).then(|| Ok(SseEvent::default().event("changed").data("behind")));
    let stream =
        futures::stream::iter(behind).chain(changes.filter_map(move |event| match event {
            Ok(NodeEvent::Kiosk { station: changed }) if changed == station => {
                Some(Ok(SseEvent::default().event("changed").data("session")))
            }
            Ok(_) => None,
            // Missed events: redraw to be safe.
            Err(_) => Some(Ok(SseEvent::default().event("changed").data("lagged"))),
        }));
    let stream = futures::StreamExt::take_until(stream, async move { shutdown.cancelled().await });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
