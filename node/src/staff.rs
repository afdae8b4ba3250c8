//! The staff console: the day at a glance (queue, help calls, devices), serving a citizen at the
//! desk, a request's full history, reprint and cancel. Keyboard-first; live through server-sent
//! events. Clerks sign in with a local account.
//!
//! The queue shows numbers, documents and statuses, not names: a name is citizen data, shown on a
//! request's page, and every such page view writes an access-log entry.

mod desk;
mod pages;

pub use desk::{DeskCard, DeskCardSlot};

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use busloket_hardware::eid::Pin;
use busloket_hardware::{CardError, HolderRequest};
use busloket_sync::national_number::NationalNumber;
use busloket_sync::record::{Delivery, Person};
use busloket_sync::terms::{
    AuthStrength, Channel, DeliveryMethod, Language, Relation, RequestId, StopId,
};
use chrono::Utc;
use futures::Stream;
use serde::Deserialize;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

use crate::auth::{self, MaybeStaff, Staff};
use crate::error::ApiError;
use crate::events::NodeEvent;
use crate::state::AppState;
use crate::workflow::{self, SubmitInput};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/staff", get(pages::dashboard))
        .route("/staff/login", get(pages::login_page).post(login))
        .route("/staff/login/eid", post(login_with_eid))
        .route("/staff/logout", post(logout))
        .route("/staff/events", get(events))
        .route("/staff/help/{station}/answer", post(answer_help))
        .route("/staff/sync", post(sync_now))
        .route("/staff/stop", post(set_stop))
        .route("/staff/stop/clear", post(clear_stop))
        .route("/staff/serve", get(pages::serve_page).post(serve))
        .route("/staff/serve/read-card", post(read_desk_card))
        .route("/staff/serve/photo", get(desk_photo))
        .route("/staff/requests/{id}", get(pages::request_page))
        .route("/staff/requests/{id}/reprint", post(reprint))
        .route("/staff/requests/{id}/cancel", post(cancel))
}

fn to_login() -> Response {
    Redirect::to("/staff/login").into_response()
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    username: String,
    password: String,
}

async fn login(State(state): State<AppState>, Form(form): Form<LoginForm>) -> Response {
    let accounts = state.staff_accounts();
    let sessions = state.staff_sessions.clone();
    // Argon2 takes tens of milliseconds of CPU: keep it off the async workers.
    let token = tokio::task::spawn_blocking(move || {
        sessions.sign_in(&accounts, form.username.trim(), &form.password)
    })
    .await
    .ok()
    .flatten();
    match token {
        Some(token) => (
            [(header::SET_COOKIE, auth::session_cookie(&token))],
            Redirect::to("/staff"),
        )
            .into_response(),
        None => {
            let tr = state.translations.get(Language::default());
            pages::login_form(&state, Some(tr.t("staff-sign-in-failed"))).into_response()
        }
    }
}

/// No `Debug`: it holds a PIN.
#[derive(Deserialize)]
struct EidLoginForm {
    pin: String,
}

/// Sign-in with the clerk's own eID in the desk reader: the card signs a fresh statement with its
/// PIN, and the certificate's national number names the account.
async fn login_with_eid(State(state): State<AppState>, Form(form): Form<EidLoginForm>) -> Response {
    let tr = state.translations.get(Language::default());
    let Ok(pin) = Pin::new(form.pin.trim()) else {
        return pages::login_form(&state, Some(tr.t("kiosk-pin-format"))).into_response();
    };
    let request = HolderRequest {
        pin,
        statement: auth::sign_in_statement(&state.config.device_id, Utc::now()),
        expected_national_number: None,
    };
    let message = match state
        .readers
        .authenticate_holder(&state.config.desk_reader, request)
        .await
    {
        // A simulated card signs nothing: only a demo node takes it.
        Ok(signature) if signature.demo && !state.config.demo => tr.t("staff-eid-failed"),
        Ok(signature) => {
            let account = NationalNumber::parse(&signature.national_number)
                .ok()
                .and_then(|number| {
                    state
                        .staff_sessions
                        .sign_in_with_eid(&state.staff_accounts(), &number)
                });
            match account {
                Some((token, staff)) => {
                    tracing::info!(username = staff.username, "staff signed in with eID");
                    return (
                        [(header::SET_COOKIE, auth::session_cookie(&token))],
                        Redirect::to("/staff"),
                    )
                        .into_response();
                }
                None => tr.t("staff-eid-unknown"),
            }
        }
        Err(CardError::WrongPin { tries_left, .. }) => {
            tr.t_count("staff-eid-wrong-pin", tries_left.into())
        }
        Err(CardError::PinBlocked { .. }) => tr.t("staff-eid-blocked"),
        Err(
            CardError::NoCard { .. }
            | CardError::CardRemoved { .. }
            | CardError::UnknownReader { .. },
        ) => tr.t("staff-eid-no-card"),
        Err(err) => {
            tracing::info!("staff eID sign-in failed: {err}");
            tr.t("staff-eid-failed")
        }
    };
    pages::login_form(&state, Some(message)).into_response()
}

async fn logout(State(state): State<AppState>, request: axum::http::request::Parts) -> Response {
    if let Some(token) = auth::token(&request) {
        state.staff_sessions.sign_out(&token);
    }
    (
        [(header::SET_COOKIE, auth::clear_cookie())],
        Redirect::to("/staff/login"),
    )
        .into_response()
}

async fn answer_help(
    State(state): State<AppState>,
    MaybeStaff(staff): MaybeStaff,
    Path(station): Path<String>,
) -> Response {
    if staff.is_none() {
        return to_login();
    }
    if state.help_calls.answer(&station) {
        state.kiosks.update(&station, |session| {
            if session.message.as_deref() == Some("kiosk-help-called") {
                session.message = None;
            }
        });
        state.events.send(NodeEvent::Help);
        crate::kiosk::notify(&state, &station);
    }
    Redirect::to("/staff").into_response()
}

#[derive(Debug, Deserialize)]
struct StopForm {
    /// A stop id, or `none` for "at no stop".
    stop: String,
}

/// Staff set the stop by hand (the GPS is wrong or absent): requests made meanwhile record it
/// as set by staff.
async fn set_stop(
    State(state): State<AppState>,
    MaybeStaff(staff): MaybeStaff,
    Form(form): Form<StopForm>,
) -> Response {
    let Some(staff) = staff else {
        return to_login();
    };
    let stop = match form.stop.as_str() {
        "none" => None,
        text => match text.parse::<StopId>() {
            Ok(stop) => Some(stop),
            Err(error) => {
                return ApiError::bad_request("bad-stop", error.to_string()).into_response();
            }
        },
    };
    let by = format!("staff:{}", staff.username);
    if let Err(error) = state.position.set_manual(stop, &by, Utc::now()) {
        return ApiError::unprocessable("unknown-stop", error.to_string()).into_response();
    }
    Redirect::to("/staff").into_response()
}

/// Back to the stop the GPS says.
async fn clear_stop(State(state): State<AppState>, MaybeStaff(staff): MaybeStaff) -> Response {
    let Some(staff) = staff else {
        return to_login();
    };
    state
        .position
        .clear_manual(&format!("staff:{}", staff.username));
    Redirect::to("/staff").into_response()
}

/// "Sync now": wakes the sync loop (a form post, protected like the others by the session
/// cookie's `SameSite=Strict`); the console follows the round through its event stream.
async fn sync_now(State(state): State<AppState>, MaybeStaff(staff): MaybeStaff) -> Response {
    let Some(staff) = staff else {
        return to_login();
    };
    if state.enrolled.is_some() {
        tracing::info!(username = staff.username, "staff asked for a sync");
        state.sync.request_sync();
    }
    Redirect::to("/staff").into_response()
}

/// The citizen whose card is in the staff desk's reader, read on the clerk's demand.
async fn read_desk_card(
    State(state): State<AppState>,
    MaybeStaff(staff): MaybeStaff,
) -> Result<Response, ApiError> {
    let Some(staff) = staff else {
        return Ok(to_login());
    };
    let reader = state.config.desk_reader.clone();
    state.desk.clear();
    let form = match state.readers.read_identity(&reader).await {
        Ok(identity) => match NationalNumber::parse(&identity.national_number) {
            Ok(number) => {
                workflow::log_access(
                    &state,
                    &staff.actor(),
                    number,
                    &["identity", "address", "photo"],
                    "serving a citizen at the desk",
                    None,
                    Utc::now(),
                )
                .await?;
                state.desk.put(DeskCard::new(number, &identity));
                pages::ServeForm {
                    requester_number: number.formatted(),
                    requester_name: format!("{} {}", identity.first_names, identity.surname),
                    from_card: true,
                    ..pages::ServeForm::default()
                }
            }
            Err(_) => pages::ServeForm {
                message: Some("staff-card-bad-number".into()),
                ..Default::default()
            },
        },
        Err(err) => {
            tracing::info!("desk card not read: {err}");
            pages::ServeForm {
                message: Some("staff-card-not-read".into()),
                ..Default::default()
            }
        }
    };
    Ok(pages::serve_form(&state, &staff, &form).into_response())
}

/// The photo on the card read at the desk, for the clerk to compare with the person.
async fn desk_photo(State(state): State<AppState>, MaybeStaff(staff): MaybeStaff) -> Response {
    if staff.is_none() {
        return to_login();
    }
    match state.desk.get().and_then(|card| card.photo) {
        Some((content_type, bytes)) => {
            ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
        }
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

async fn serve(
    State(state): State<AppState>,
    MaybeStaff(staff): MaybeStaff,
    Form(form): Form<pages::ServeForm>,
) -> Result<Response, ApiError> {
    let Some(staff) = staff else {
        return Ok(to_login());
    };
    match serve_input(&state, &staff, &form) {
        Err(message) => Ok(pages::serve_form(
            &state,
            &staff,
            &pages::ServeForm {
                message: Some(message),
                ..form
            },
        )
        .into_response()),
        Ok(input) => match workflow::submit(&state, input, Utc::now()).await {
            Ok(submitted) => {
                Ok(Redirect::to(&format!("/staff/requests/{}", submitted.id)).into_response())
            }
            Err(err) if err.status.is_client_error() => {
                let message = format!("error-{}", err.code);
                Ok(pages::serve_form(
                    &state,
                    &staff,
                    &pages::ServeForm {
                        message: Some(message),
                        ..form
                    },
                )
                .into_response())
            }
            Err(err) => Err(err),
        },
    }
}

/// Parses the desk form; an error is a translation key.
fn serve_input(
    state: &AppState,
    staff: &Staff,
    form: &pages::ServeForm,
) -> Result<SubmitInput, String> {
    let requester_number = NationalNumber::parse(&form.requester_number)
        .map_err(|_| "staff-bad-requester-number".to_owned())?;
    let relation: Relation = form
        .relation
        .parse()
        .map_err(|_| "staff-bad-relation".to_owned())?;
    let requester = Person {
        national_number: requester_number,
        name: form.requester_name.trim().to_owned(),
    };
    let desk_card = form
        .from_card
        .then(|| state.desk.card_of(&requester_number))
        .flatten();
    let subject = if relation == Relation::Myself {
        requester.clone()
    } else {
        let number = NationalNumber::parse(&form.subject_number)
            .map_err(|_| "staff-bad-subject-number".to_owned())?;
        Person {
            national_number: number,
            name: form.subject_name.trim().to_owned(),
        }
    };
    let today = Utc::now().date_naive();
    let subject_is_minor = state
        .register
        .is_minor(&subject.national_number, today)
        .unwrap_or(form.subject_minor.is_some());
    let method: DeliveryMethod = form
        .delivery
        .parse()
        .map_err(|_| "staff-bad-delivery".to_owned())?;
    let email = (method == DeliveryMethod::Email).then(|| form.email.trim().to_owned());
    Ok(SubmitInput {
        document: form
            .document
            .parse()
            .map_err(|_| "error-unknown-document".to_owned())?,
        requester,
        subject,
        relation,
        subject_is_minor,
        // Card strength only while the requester's card, read at the desk, is still in the reader.
        authentication: if desk_card.is_some() {
            AuthStrength::CardRead
        } else {
            AuthStrength::Declared
        },
        channel: Channel::BusCounter,
        language: form.language.parse::<Language>().unwrap_or_default(),
        delivery: Delivery { method, email },
        purpose: Some(form.purpose.clone()).filter(|p| !p.trim().is_empty()),
        requester_postcode: desk_card.as_ref().and_then(|card| card.postcode),
        evidence: desk_card.and_then(|card| card.evidence),
        station: "desk".into(),
        by: staff.actor(),
    })
}

async fn reprint(
    State(state): State<AppState>,
    MaybeStaff(staff): MaybeStaff,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if staff.is_none() {
        return Ok(to_login());
    }
    let id: RequestId = id
        .parse()
        .map_err(|_| ApiError::not_found("unknown-request", "no such request"))?;
    let printed = workflow::print_ticket(&state, id, Utc::now()).await;
    let flag = if printed.is_ok() {
        "printed"
    } else {
        "print-failed"
    };
    Ok(Redirect::to(&format!("/staff/requests/{id}?done={flag}")).into_response())
}

#[derive(Debug, Deserialize)]
struct CancelForm {
    reason: String,
}

async fn cancel(
    State(state): State<AppState>,
    MaybeStaff(staff): MaybeStaff,
    Path(id): Path<String>,
    Form(form): Form<CancelForm>,
) -> Result<Response, ApiError> {
    let Some(staff) = staff else {
        return Ok(to_login());
    };
    let id: RequestId = id
        .parse()
        .map_err(|_| ApiError::not_found("unknown-request", "no such request"))?;
    let flag = match workflow::cancel(&state, id, &form.reason, &staff.actor(), Utc::now()).await {
        Ok(_) => "cancelled".to_owned(),
        Err(err) if err.status.is_client_error() => format!("error-{}", err.code),
        Err(err) => return Err(err),
    };
    Ok(Redirect::to(&format!("/staff/requests/{id}?done={flag}")).into_response())
}

/// Tells the console to redraw its live parts.
async fn events(
    State(state): State<AppState>,
    MaybeStaff(staff): MaybeStaff,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    staff.ok_or_else(ApiError::unauthorized)?;
    let shutdown = state.shutdown.clone();
    let stream = BroadcastStream::new(state.events.subscribe()).filter_map(|event| match event {
        Ok(NodeEvent::Kiosk { .. }) => None,
        _ => Some(Ok(SseEvent::default().event("changed").data("console"))),
    });
    let stream = futures::StreamExt::take_until(stream, async move { shutdown.cancelled().await });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
