//! The staff console's pages: rendering only, the actions are in `staff`.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use busloket_hardware::PrinterStatus;
use busloket_sync::national_number::NationalNumber;
use busloket_sync::record::{EventKind, RequestView, StopSource};
use busloket_sync::stops::StopSchedule;
use busloket_sync::terms::{DeliveryMethod, Language, Relation, RequestId};
use chrono::Utc;
use maud::{Markup, html};
use serde::Deserialize;

use crate::auth::{MaybeStaff, Staff};
use crate::error::ApiError;
use crate::i18n::Tr;
use crate::kiosk::pages::language_name;
use crate::layout::{Page, local_time, page};
use crate::position::PositionStatus;
use crate::state::AppState;
use crate::sync::{LinkState, SyncStatus};
use crate::workflow;

fn staff_page(state: &AppState, staff: Option<&Staff>, title: String, main: Markup) -> Markup {
    let tr = state.translations.get(Language::default());
    page(Page {
        tr,
        title,
        kind: "staff",
        events: staff.map(|_| "/staff/events".to_owned()),
        idle: None,
        header: html! {
            p.brand { a href="/staff" { (tr.t("staff-console")) } }
            @if let Some(staff) = staff {
                nav aria-label=(tr.t("staff-menu")) {
                    a.button href="/staff" accesskey="q" { (tr.t("staff-queue")) }
                    a.button.primary href="/staff/serve" accesskey="n" { "+ " (tr.t("staff-serve")) }
                    form method="post" action="/staff/logout" {
                        button.button.secondary type="submit" { (tr.t_with("staff-sign-out", &[("name", &staff.display_name)])) }
                    }
                }
            }
        },
        main,
    })
}

pub async fn login_page(State(state): State<AppState>) -> Markup {
    login_form(&state, None)
}

/// The sign-in page: eID and PIN first, the password for when no reader works. `message` is a
/// translated problem to show.
pub fn login_form(state: &AppState, message: Option<String>) -> Markup {
    let tr = state.translations.get(Language::default());
    staff_page(
        state,
        None,
        tr.t("staff-sign-in"),
        html! {
            h1 { (tr.t("staff-sign-in")) }
            @if let Some(message) = message {
                p.message.problem role="alert" { (message) }
            }
            div.columns {
                section.panel aria-labelledby="sign-in-eid" {
                    h2 #sign-in-eid { (tr.t("staff-sign-in-eid")) }
                    p #eid-hint { (tr.t("staff-sign-in-eid-text")) }
                    form.stack method="post" action="/staff/login/eid" {
                        label for="pin" { (tr.t("staff-pin")) }
                        input #pin .text type="password" name="pin" inputmode="numeric" pattern="[0-9]*"
                            minlength="4" maxlength="12" autocomplete="off" required autofocus
                            aria-describedby="eid-hint";
                        button.button.primary type="submit" { (tr.t("staff-sign-in-eid-button")) }
                    }
                }
                section.panel aria-labelledby="sign-in-password" {
                    h2 #sign-in-password { (tr.t("staff-sign-in-password")) }
                    p { (tr.t("staff-sign-in-password-text")) }
                    form.stack method="post" action="/staff/login" {
                        label for="username" { (tr.t("staff-username")) }
                        input #username .text type="text" name="username" autocomplete="username" required;
                        label for="password" { (tr.t("staff-password")) }
                        input #password .text type="password" name="password" autocomplete="current-password" required;
                        button.button type="submit" { (tr.t("staff-sign-in")) }
                    }
                }
            }
        },
    )
}

pub async fn dashboard(
    State(state): State<AppState>,
    MaybeStaff(staff): MaybeStaff,
) -> Result<Response, ApiError> {
    let Some(staff) = staff else {
        return Ok(Redirect::to("/staff/login").into_response());
    };
    let tr = state.translations.get(Language::default());
    let today = Utc::now().date_naive();
    let store = state.store.clone();
    let summaries = tokio::task::spawn_blocking(move || store.summaries_by_day(today))
        .await?
        .map_err(ApiError::internal)?;
    let help = state.help_calls.list();
    let readers = state.readers.readers();
    let printer_status = state.receipt_printer.status();
    let gps = state.gps.current();
    let gps_health = state.gps.health();
    let position = state.position.status(Utc::now());
    let schedule = state.position.schedule();
    let open = summaries.iter().filter(|s| !s.status.is_finished()).count();
    let sync = crate::sync::current_status(&state).await;
    let main = html! {
        h1 { (tr.t("staff-today")) " — " (today.format("%d.%m.%Y")) }
        p #live-status .visually-hidden aria-live="polite" {}
        div.columns {
            section #help .panel data-live aria-labelledby="help-title" {
                h2 #help-title { (tr.t("staff-help-calls")) " (" (help.len()) ")" }
                @if help.is_empty() {
                    p { (tr.t("staff-no-help-calls")) }
                } @else {
                    ul.plain {
                        @for (station, at) in &help {
                            li.message.problem {
                                strong { (station_name(&state, station)) } " — " (local_time(*at, "%H:%M"))
                                form.inline method="post" action={ "/staff/help/" (station) "/answer" } {
                                    button.button type="submit" { (tr.t("staff-help-answer")) }
                                }
                            }
                        }
                    }
                }
            }
            section #devices .panel data-live aria-labelledby="devices-title" {
                h2 #devices-title { (tr.t("staff-devices")) }
                ul.plain {
                    @for reader in &readers {
                        li {
                            strong { (reader.name) } ": "
                            (if reader.card_present { tr.t("staff-reader-card") } else { tr.t("staff-reader-empty") })
                        }
                    }
                    li {
                        strong { (state.receipt_printer.name()) } ": "
                        @match &printer_status {
                            PrinterStatus::Ready => span.ok { (tr.t("staff-printer-ready")) },
                            PrinterStatus::PaperNearEnd => span.bad { (tr.t("staff-printer-near-end")) },
                            PrinterStatus::OutOfPaper => span.bad { (tr.t("staff-printer-no-paper")) },
                            PrinterStatus::Offline { .. } => span.bad { (tr.t("staff-printer-offline")) },
                            PrinterStatus::Unknown => span { (tr.t("staff-printer-unknown")) },
                        }
                    }
                    li {
                        strong { "GPS" } ": "
                        @match &gps {
                            busloket_hardware::GpsState::Fix(fix) => { (format!("{:.5}, {:.5}", fix.latitude, fix.longitude)) }
                            busloket_hardware::GpsState::NoFix => span.bad { (tr.t("staff-gps-no-fix")) },
                        }
                        // The receiver's own words (gpsd's address and the reason), for the
                        // clerk to pass on to IT: a device diagnostic, not translated.
                        @if !gps_health.is_ok() { " — " small.bad lang="en" { (gps_health) } }
                    }
                }
            }
            (stop_panel(tr, &position, &schedule))
        }
        (sync_panel(tr, &sync))
        section #queue data-live aria-labelledby="queue-title" {
            h2 #queue-title { (tr.t_count("staff-queue-count", open)) }
            @if summaries.is_empty() {
                p { (tr.t("staff-queue-empty")) }
            } @else {
                table.queue {
                    thead { tr {
                        th scope="col" { (tr.t("staff-col-number")) }
                        th scope="col" { (tr.t("staff-col-time")) }
                        th scope="col" { (tr.t("staff-col-document")) }
                        th scope="col" { (tr.t("staff-col-where")) }
                        th scope="col" { (tr.t("staff-col-status")) }
                    } }
                    tbody {
                        @for summary in summaries.iter().rev() {
                            tr.(format!("status-{}", summary.status.code())) {
                                td.number { a href={ "/staff/requests/" (summary.id) } { (summary.queue_number) } }
                                td { (local_time(summary.created_at, "%H:%M")) }
                                td { (document_name(&state, tr, summary.document.as_str())) }
                                td { (station_name(&state, &summary.station)) }
                                td { span.status { (tr.t(&format!("status-{}", summary.status.code()))) } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(staff_page(&state, Some(&staff), tr.t("staff-console"), main).into_response())
}

/// The sync panel: the link in words with an icon (never color alone), the last successful
/// sync, what waits, what the last round brought, the last problem, and "sync now".
fn sync_panel(tr: Tr<'_>, sync: &SyncStatus) -> Markup {
    let (icon, class) = match sync.state {
        LinkState::Online => ("✓", "ok"),
        LinkState::Offline => ("⚠", "bad"),
        LinkState::Revoked => ("⛔", "bad"),
        LinkState::Never => ("…", ""),
        LinkState::NotConfigured => ("–", ""),
    };
    let configured = sync.state != LinkState::NotConfigured;
    html! {
        section #sync .panel data-live aria-labelledby="sync-title" {
            h2 #sync-title { (tr.t("staff-sync")) }
            p #sync-state {
                span.(class) {
                    span aria-hidden="true" { (icon) } " "
                    (tr.t(&format!("staff-sync-state-{}", sync.state.code())))
                }
            }
            @if configured {
                dl.summary {
                    dt { (tr.t("staff-sync-last")) }
                    dd #sync-last {
                        @match sync.last_success {
                            Some(at) => time datetime=(at.to_rfc3339()) { (local_time(at, "%d.%m.%Y %H:%M:%S")) },
                            None => (tr.t("staff-sync-never")),
                        }
                    }
                    dt { (tr.t("staff-sync-waiting")) }
                    dd #sync-waiting { (sync.waiting) }
                    @if sync.set_aside > 0 {
                        dt { (tr.t("staff-sync-set-aside")) }
                        dd { (sync.set_aside) }
                    }
                    @if let Some(round) = &sync.last_round {
                        dt { (tr.t("staff-sync-received")) }
                        dd #sync-received { (round.requests_received) }
                        @if !round.refused.is_empty() {
                            dt { (tr.t("staff-sync-refused")) }
                            dd #sync-refused {
                                ul.plain {
                                    @for refusal in &round.refused {
                                        li { (crate::workflow::short_reference(refusal.request)) ": " code { (refusal.code) } }
                                    }
                                }
                            }
                        }
                        @if !round.files.is_empty() {
                            dt { (tr.t("staff-sync-files")) }
                            dd #sync-files {
                                @for (index, file) in round.files.iter().enumerate() {
                                    @if index > 0 { ", " }
                                    (tr.t(&format!("staff-sync-file-{}", file_key(&file.name)))) " (" (file.version) ")"
                                }
                            }
                        }
                    }
                    @if let Some(count) = sync.revoked_devices {
                        dt { (tr.t("staff-sync-revoked-devices")) }
                        dd { (count) }
                    }
                    @if let Some(count) = sync.synced_staff {
                        dt { (tr.t("staff-sync-staff")) }
                        dd { (count) }
                    }
                }
                @if let Some(problem) = &sync.last_error {
                    p #sync-problem .message.problem role="status" {
                        (tr.t("staff-sync-problem")) " (" (local_time(problem.at, "%H:%M:%S")) "): "
                        code { (problem.code) } " — " (problem.message)
                    }
                }
                @if sync.state != LinkState::Revoked {
                    form.inline method="post" action="/staff/sync" {
                        button.button type="submit" accesskey="s" { (tr.t("staff-sync-now")) }
                    }
                }
            }
        }
    }
}

/// Where the bus is: the stop requests get and how it is known, the clock's skew and refused
/// jumps, and the form to set the stop by hand.
fn stop_panel(tr: Tr, position: &PositionStatus, schedule: &StopSchedule) -> Markup {
    let by_hand = position.manual.as_ref();
    html! {
        section #stop .panel data-live aria-labelledby="stop-title" {
            h2 #stop-title { (tr.t("staff-stop")) }
            p.big {
                @match (&position.stop, position.stop_source) {
                    (Some(stop), source) => {
                        strong { (position.stop_name.clone().unwrap_or_else(|| stop.to_string())) }
                        " — "
                        @match (source, by_hand) {
                            (Some(StopSource::Staff), Some(manual)) => (tr.t_with("staff-stop-source-staff", &[
                                ("by", manual.by.trim_start_matches("staff:")),
                                ("time", &local_time(manual.at, "%H:%M")),
                            ])),
                            (Some(StopSource::Configured), _) => (tr.t("staff-stop-source-configured")),
                            _ => (tr.t("staff-stop-source-gps")),
                        }
                    }
                    (None, _) if by_hand.is_some() => strong { (tr.t("staff-no-stop")) },
                    (None, _) if position.location == "driving" => (tr.t("staff-location-driving")),
                    (None, _) => span.bad { (tr.t("staff-location-unknown")) },
                }
            }
            @if position.clock_skew_warning {
                p.message.problem role="alert" {
                    (tr.t_with("staff-clock-skew", &[("seconds", &(position.clock_skew_ms.unwrap_or(0) / 1000).to_string())]))
                }
            }
            @if let Some(jump) = &position.last_jump {
                p.message.problem {
                    (tr.t_with("staff-gps-jump", &[
                        ("km", &format!("{:.1}", jump.distance_m / 1000.0)),
                        ("time", &local_time(jump.at, "%H:%M")),
                    ]))
                }
            }
            @if schedule.stops.is_empty() {
                p { (tr.t("staff-stops-none-known")) }
            } @else {
                form method="post" action="/staff/stop" {
                    label for="stop-choice" { (tr.t("staff-stop-set-label")) }
                    select #stop-choice name="stop" {
                        @for stop in &schedule.stops {
                            option value=(stop.id) selected[position.stop.as_ref() == Some(&stop.id)] { (stop.name) }
                        }
                        option value="none" { (tr.t("staff-stop-none-option")) }
                    }
                    " "
                    button.button type="submit" { (tr.t("staff-stop-set")) }
                }
            }
            @if by_hand.is_some() {
                form.inline method="post" action="/staff/stop/clear" {
                    button.button.secondary type="submit" { (tr.t("staff-stop-clear")) }
                }
            }
        }
    }
}

/// The translation key part of a synced file's name; unknown names share one key.
fn file_key(name: &str) -> &'static str {
    match name {
        crate::sync::CRL_FILE => "crl",
        crate::sync::STAFF_FILE => "staff",
        crate::sync::STOPS_FILE => "stops",
        _ => "other",
    }
}

fn station_name(state: &AppState, station: &str) -> String {
    if station == "desk" {
        return state.translations.get(Language::default()).t("staff-desk");
    }
    state
        .config
        .station(station)
        .map(|s| s.name.clone())
        .unwrap_or_else(|| station.to_owned())
}

fn document_name(state: &AppState, tr: Tr<'_>, code: &str) -> String {
    code.parse()
        .ok()
        .and_then(|code| state.catalogue.get(&code))
        .map(|document| document.names.get(tr.language).to_owned())
        .unwrap_or_else(|| code.to_owned())
}

/// The desk form, also its own parsed input (`staff::serve` reads it back).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ServeForm {
    #[serde(default)]
    pub requester_number: String,
    #[serde(default)]
    pub requester_name: String,
    #[serde(default)]
    pub from_card: bool,
    #[serde(default = "default_relation")]
    pub relation: String,
    #[serde(default)]
    pub subject_number: String,
    #[serde(default)]
    pub subject_name: String,
    #[serde(default)]
    pub subject_minor: Option<String>,
    #[serde(default)]
    pub document: String,
    #[serde(default)]
    pub purpose: String,
    #[serde(default)]
    pub language: String,
    #[serde(default = "default_delivery")]
    pub delivery: String,
    #[serde(default)]
    pub email: String,
    #[serde(skip)]
    pub message: Option<String>,
}

fn default_relation() -> String {
    Relation::Myself.as_str().to_owned()
}

fn default_delivery() -> String {
    DeliveryMethod::PrintHere.as_str().to_owned()
}

pub async fn serve_page(State(state): State<AppState>, MaybeStaff(staff): MaybeStaff) -> Response {
    let Some(staff) = staff else {
        return Redirect::to("/staff/login").into_response();
    };
    serve_form(
        &state,
        &staff,
        &ServeForm {
            relation: default_relation(),
            delivery: default_delivery(),
            ..Default::default()
        },
    )
    .into_response()
}

pub fn serve_form(state: &AppState, staff: &Staff, form: &ServeForm) -> Markup {
    let tr = state.translations.get(Language::default());
    let desk_photo = form.from_card
        && NationalNumber::parse(&form.requester_number)
            .ok()
            .and_then(|number| state.desk.card_of(&number))
            .is_some_and(|card| card.photo.is_some());
    let main = html! {
        h1 { (tr.t("staff-serve")) }
        @if let Some(message) = &form.message {
            p.message.problem role="alert" { (tr.t(message)) }
        }
        form.inline method="post" action="/staff/serve/read-card" {
            button.button type="submit" accesskey="r" { (tr.t("staff-read-desk-card")) }
        }
        form.stack method="post" action="/staff/serve" {
            fieldset {
                legend { (tr.t("staff-requester")) }
                @if form.from_card {
                    p.message.notice role="status" { (tr.t("staff-from-card")) }
                    input type="hidden" name="from_card" value="true";
                    @if desk_photo {
                        figure.card-photo {
                            img src="/staff/serve/photo" width="150" height="200"
                                alt=(tr.t_with("staff-photo-alt", &[("name", &form.requester_name)]));
                            figcaption { (tr.t("staff-photo-caption")) }
                        }
                    }
                }
                label for="requester_number" { (tr.t("staff-national-number")) }
                input #requester_number .text type="text" name="requester_number" value=(form.requester_number)
                    inputmode="numeric" autocomplete="off" required readonly[form.from_card] placeholder="85.07.31-003.28";
                label for="requester_name" { (tr.t("staff-name")) }
                input #requester_name .text type="text" name="requester_name" value=(form.requester_name) autocomplete="off" required readonly[form.from_card];
            }
            fieldset {
                legend { (tr.t("staff-subject")) }
                label for="relation" { (tr.t("staff-relation")) }
                select #relation name="relation" {
                    @for relation in Relation::ALL {
                        option value=(relation.as_str()) selected[form.relation == relation.as_str()] { (tr.t(&format!("relation-{}", relation.as_str()))) }
                    }
                }
                label for="subject_number" { (tr.t("staff-subject-number")) }
                input #subject_number .text type="text" name="subject_number" value=(form.subject_number) inputmode="numeric" autocomplete="off";
                label for="subject_name" { (tr.t("staff-subject-name")) }
                input #subject_name .text type="text" name="subject_name" value=(form.subject_name) autocomplete="off";
                label.check { input type="checkbox" name="subject_minor" value="yes" checked[form.subject_minor.is_some()]; (tr.t("staff-subject-minor")) }
            }
            fieldset {
                legend { (tr.t("staff-request")) }
                label for="document" { (tr.t("staff-col-document")) }
                select #document name="document" required {
                    @for document in state.catalogue.types() {
                        option value=(document.code.as_str()) selected[form.document == document.code.as_str()] { (document.names.get(tr.language)) }
                    }
                }
                label for="purpose" { (tr.t("staff-purpose")) }
                input #purpose .text type="text" name="purpose" value=(form.purpose) maxlength="200";
                label for="language" { (tr.t("staff-language")) }
                select #language name="language" {
                    @for language in Language::ALL {
                        option value=(language.as_str()) selected[form.language == language.as_str()] { (language_name(*language)) }
                    }
                }
                label for="delivery" { (tr.t("staff-delivery")) }
                select #delivery name="delivery" {
                    option value=(DeliveryMethod::PrintHere.as_str()) selected[form.delivery == DeliveryMethod::PrintHere.as_str()] { (tr.t("kiosk-delivery-print")) }
                    option value=(DeliveryMethod::Email.as_str()) selected[form.delivery == DeliveryMethod::Email.as_str()] { (tr.t("kiosk-delivery-email")) }
                }
                label for="email" { (tr.t("staff-email")) }
                input #email .text type="email" name="email" value=(form.email) autocomplete="off";
            }
            button.button.primary type="submit" { (tr.t("staff-submit")) }
        }
    };
    staff_page(state, Some(staff), tr.t("staff-serve"), main)
}

#[derive(Debug, Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

pub async fn request_page(
    State(state): State<AppState>,
    MaybeStaff(staff): MaybeStaff,
    Path(id): Path<String>,
    Query(query): Query<DoneQuery>,
) -> Result<Response, ApiError> {
    let Some(staff) = staff else {
        return Ok(Redirect::to("/staff/login").into_response());
    };
    let id: RequestId = id
        .parse()
        .map_err(|_| ApiError::not_found("unknown-request", "no such request"))?;
    let Some(view) = workflow::load_view(&state, id).await? else {
        return Err(ApiError::not_found(
            "unknown-request",
            format!("no request {id}"),
        ));
    };
    workflow::log_access(
        &state,
        &staff.actor(),
        view.fields.subject.national_number,
        &["request"],
        "request details at the staff console",
        Some(id),
        Utc::now(),
    )
    .await?;
    let tr = state.translations.get(Language::default());
    let main = request_details(&state, tr, &view, query.done.as_deref());
    Ok(staff_page(
        &state,
        Some(&staff),
        tr.t_with(
            "staff-request-title",
            &[("number", &view.fields.queue_number.to_string())],
        ),
        main,
    )
    .into_response())
}

fn request_details(state: &AppState, tr: Tr<'_>, view: &RequestView, done: Option<&str>) -> Markup {
    let finished = view.status.is_finished();
    let fields = &view.fields;
    html! {
        h1 { (tr.t_with("staff-request-title", &[("number", &fields.queue_number.to_string())])) }
        @if let Some((class, key)) = done.and_then(done_message) {
            p.message.(class) role="status" { (tr.t(key)) }
        }
        dl.summary {
            dt { (tr.t("staff-col-status")) } dd { span.status { (tr.t(&format!("status-{}", view.status.code()))) } }
            dt { (tr.t("staff-col-document")) } dd { (document_name(state, tr, fields.document.as_str())) }
            dt { (tr.t("staff-requester")) } dd { (fields.requester.name) " (" (fields.requester.national_number.formatted()) ")" }
            dt { (tr.t("staff-subject")) } dd { (fields.subject.name) " (" (fields.subject.national_number.formatted()) ") — " (tr.t(&format!("relation-{}", fields.relation.as_str()))) }
            @if let Some(purpose) = &fields.purpose { dt { (tr.t("staff-purpose")) } dd { (purpose) } }
            dt { (tr.t("staff-channel")) } dd { (tr.t(&format!("channel-{}", fields.channel.as_str()))) " — " (station_name(state, &fields.origin.station)) }
            dt { (tr.t("staff-delivery")) } dd {
                @if fields.delivery.method == DeliveryMethod::Email { (tr.t("kiosk-delivery-email")) ": " (fields.delivery.email.as_deref().unwrap_or_default()) }
                @else { (tr.t("kiosk-delivery-print")) }
            }
            dt { (tr.t("staff-evidence")) } dd {
                @match &fields.evidence {
                    Some(evidence) => {
                        (tr.t_with("staff-evidence-card", &[("applet", &format!("{:x}.{:x}", evidence.applet_version >> 4, evidence.applet_version & 0x0f))]))
                        @if evidence.chip_verified { "; " (tr.t("staff-evidence-chip")) }
                        @if evidence.holder.is_some() { "; " (tr.t("staff-evidence-pin")) }
                    },
                    None => (tr.t("staff-evidence-none")),
                }
            }
            dt { (tr.t("staff-reference")) } dd { code { (fields.id) } }
        }
        h2 { (tr.t("staff-history")) }
        table.history {
            thead { tr { th scope="col" { (tr.t("staff-col-time")) } th scope="col" { (tr.t("staff-who")) } th scope="col" { (tr.t("staff-event")) } } }
            tbody {
                @for event in &view.events {
                    tr {
                        td { (local_time(event.at, "%d.%m.%Y %H:%M:%S")) }
                        td { (event.by) }
                        td { (event_text(tr, &event.kind)) }
                    }
                }
            }
        }
        div.actions {
            form.inline method="post" action={ "/staff/requests/" (fields.id) "/reprint" } {
                button.button type="submit" { (tr.t("staff-reprint")) }
            }
            @if !finished {
                form.stack method="post" action={ "/staff/requests/" (fields.id) "/cancel" } {
                    label for="reason" { (tr.t("staff-cancel-reason")) }
                    input #reason .text type="text" name="reason" maxlength="500" required;
                    button.button.danger type="submit" { (tr.t("staff-cancel")) }
                }
            }
        }
    }
}

/// The message for the `done` flag an action redirects with; unknown flags show nothing.
fn done_message(done: &str) -> Option<(&'static str, &'static str)> {
    let message = match done {
        "printed" => ("notice", "staff-done-printed"),
        "cancelled" => ("notice", "staff-done-cancelled"),
        "print-failed" => ("problem", "staff-done-print-failed"),
        "error-reason-required" => ("problem", "error-reason-required"),
        "error-already-finished" => ("problem", "error-already-finished"),
        "error-unknown-request" => ("problem", "error-unknown-request"),
        other if other.starts_with("error-") => ("problem", "staff-action-failed"),
        _ => return None,
    };
    Some(message)
}

fn event_text(tr: Tr<'_>, kind: &EventKind) -> String {
    match kind {
        EventKind::EligibilityDecided { outcome, reason } => {
            let mut text = tr.t(&format!("event-decided-{}", outcome.code()));
            if let Some(reason) = reason {
                text.push_str(" — ");
                text.push_str(&tr.t(&format!("reason-{reason}")));
            }
            text
        }
        EventKind::Cancelled { reason } => format!("{}: {reason}", tr.t("event-cancelled")),
        EventKind::Rejected { reason } => format!("{}: {reason}", tr.t("event-rejected")),
        EventKind::ReceiptPrinted { printer } => {
            format!("{} ({printer})", tr.t("event-receipt-printed"))
        }
        EventKind::Printed { printer } => format!("{} ({printer})", tr.t("event-printed")),
        EventKind::Emailed { to } => format!("{}: {to}", tr.t("event-emailed")),
        EventKind::Issued { document_id } => format!("{}: {document_id}", tr.t("event-issued")),
        other => tr.t(&format!("event-{}", other.code())),
    }
}
