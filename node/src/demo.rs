//! The demo control page, mounted only in demo mode: insert and pull a demo citizen's card at a
//! station, switch the simulated printer's paper, see the last ticket that came out. Clearly
//! marked as a demo on every screen.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use busloket_hardware::card::DEMO_PIN;
use busloket_hardware::{PrinterStatus, ReceiptPrinter, demo_citizens};
use busloket_sync::terms::Language;
use maud::{Markup, html};
use serde::Deserialize;

use crate::error::ApiError;
use crate::layout::{Page, page};
use crate::state::{AppState, DemoDevices};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/demo", get(control_page))
        .route("/demo/insert", post(insert))
        .route("/demo/pull", post(pull))
        .route("/demo/paper", post(paper))
        .route("/demo/last-ticket", get(last_ticket))
}

fn devices(state: &AppState) -> Result<&DemoDevices, ApiError> {
    state
        .demo
        .as_ref()
        .ok_or_else(|| ApiError::not_found("not-demo", "this node is not in demo mode"))
}

fn simulated_readers(state: &AppState) -> Result<&busloket_hardware::SimCardReaders, ApiError> {
    devices(state)?.readers.as_deref().ok_or_else(|| {
        ApiError::not_found("no-simulated-readers", "this node uses real card readers")
    })
}

async fn control_page(State(state): State<AppState>) -> Result<Markup, ApiError> {
    let devices = devices(&state)?;
    let tr = state.translations.get(Language::default());
    let citizens = demo_citizens();
    let mut readers: Vec<(String, String)> = state
        .config
        .stations
        .iter()
        .map(|station| (station.reader.clone(), station.name.clone()))
        .collect();
    readers.push((state.config.desk_reader.clone(), tr.t("staff-desk")));
    let paper = devices
        .receipt_printer
        .as_ref()
        .map(|printer| !matches!(printer.status(), PrinterStatus::OutOfPaper));
    let last_ticket = devices
        .receipt_printer
        .as_ref()
        .and_then(|printer| printer.last_text());
    Ok(page(Page {
        tr,
        title: tr.t("demo-control"),
        kind: "demo",
        events: None,
        idle: None,
        header: html! { p.brand.demo-banner { (tr.t("demo-banner")) } },
        main: html! {
            h1 { (tr.t("demo-control")) }
            p.lead { (tr.t("demo-intro")) }
            p { (tr.t_with("demo-pin", &[("pin", DEMO_PIN)])) }
            ul.links {
                @for station in &state.config.stations {
                    li { a href={ "/kiosk/" (station.id) } target="_blank" { (station.name) " ↗" } }
                }
                li { a href="/staff" target="_blank" { (tr.t("staff-console")) " ↗" } }
            }
            h2 { (tr.t("demo-readers")) }
            @if devices.readers.is_none() {
                p { (tr.t("demo-real-readers")) }
            }
            @for (reader, label) in readers.iter().filter(|_| devices.readers.is_some()) {
                @let inserted = devices.readers.as_ref().and_then(|sim| sim.inserted(reader));
                section.panel {
                    h3 { (label) " — " code { (reader) } }
                    @if let Some(number) = &inserted {
                        @let name = citizens.iter().find(|c| &c.card.national_number == number).map(|c| format!("{} {}", c.card.first_names, c.card.surname)).unwrap_or_default();
                        p { (tr.t_with("demo-card-in", &[("name", &name)])) }
                        form.inline method="post" action="/demo/pull" {
                            input type="hidden" name="reader" value=(reader);
                            button.button type="submit" { (tr.t("demo-pull")) }
                        }
                    } @else {
                        form.inline method="post" action="/demo/insert" {
                            input type="hidden" name="reader" value=(reader);
                            label for={ "citizen-" (reader) } { (tr.t("demo-citizen")) }
                            select id={ "citizen-" (reader) } name="national_number" {
                                @for citizen in &citizens {
                                    option value=(citizen.card.national_number) {
                                        (citizen.card.first_names) " " (citizen.card.surname) " (" (citizen.household) ")"
                                    }
                                }
                            }
                            button.button.primary type="submit" { (tr.t("demo-insert")) }
                        }
                    }
                }
            }
            @if let Some(paper) = paper {
                h2 { (tr.t("demo-printer")) }
                form.inline method="post" action="/demo/paper" {
                    input type="hidden" name="paper" value=(if paper { "false" } else { "true" });
                    p { (if paper { tr.t("staff-printer-ready") } else { tr.t("staff-printer-no-paper") }) }
                    button.button type="submit" { (if paper { tr.t("demo-paper-out") } else { tr.t("demo-paper-in") }) }
                }
                h2 { (tr.t("demo-last-ticket")) }
                @match last_ticket {
                    Some(text) => pre.ticket aria-label=(tr.t("demo-last-ticket")) { (text) },
                    None => p { (tr.t("demo-no-ticket")) },
                }
            }
        },
    }))
}

#[derive(Debug, Deserialize)]
struct InsertForm {
    reader: String,
    national_number: String,
}

async fn insert(
    State(state): State<AppState>,
    Form(form): Form<InsertForm>,
) -> Result<Response, ApiError> {
    simulated_readers(&state)?
        .insert(&form.reader, &form.national_number)
        .map_err(|err| ApiError::bad_request("demo-insert-failed", err.to_string()))?;
    Ok(Redirect::to("/demo").into_response())
}

#[derive(Debug, Deserialize)]
struct PullForm {
    reader: String,
}

async fn pull(
    State(state): State<AppState>,
    Form(form): Form<PullForm>,
) -> Result<Response, ApiError> {
    simulated_readers(&state)?
        .pull(&form.reader)
        .map_err(|err| ApiError::bad_request("demo-pull-failed", err.to_string()))?;
    Ok(Redirect::to("/demo").into_response())
}

#[derive(Debug, Deserialize)]
struct PaperForm {
    paper: bool,
}

async fn paper(
    State(state): State<AppState>,
    Form(form): Form<PaperForm>,
) -> Result<Response, ApiError> {
    let printer = devices(&state)?.receipt_printer.as_ref().ok_or_else(|| {
        ApiError::not_found(
            "no-simulated-printer",
            "the receipt printer is not simulated",
        )
    })?;
    printer.set_paper(form.paper);
    state.events.send(crate::events::NodeEvent::Device);
    Ok(Redirect::to("/demo").into_response())
}

/// The text of the last ticket the simulated printer printed, for tests and the curious.
async fn last_ticket(State(state): State<AppState>) -> Result<Json<Option<String>>, ApiError> {
    let printer = devices(&state)?.receipt_printer.as_ref();
    Ok(Json(printer.and_then(|printer| printer.last_text())))
}
