//! Central IT's pages and API at the hub: sign-in, the device page (every enrolled device with
//! its state, last seen, last successful sync, requests held and quarantine), a device's
//! quarantine (time, code, reason, size — never the content), and
//! `POST /api/v1/requests/{id}/events`, which records an event of the city on a request (the bus
//! that holds it gets it in its next answer).
//!
//! Server-rendered HTML (maud), Dutch by default, French, German and English (`?lang=fr`, or the
//! browser's `Accept-Language`; every page links to itself in each language); plain tables with
//! headers and captions, a `lang` attribute, no script.

use std::collections::HashMap;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use busloket_provisioning::pki::Serial;
use busloket_provisioning::registry::Registry;
use busloket_sync::record::{EventId, EventKind, NewEvent, RecordError};
use busloket_sync::staff::Role;
use busloket_sync::terms::{DeviceId, RequestId};
use busloket_sync::trip::{TripEntry, route_length_m};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::auth::{self, Staff};
use crate::i18n::{Lang, Tr};
use crate::server::AppState;
use crate::storage::{DeviceState, QuarantineEntry};
use crate::sync::{HubError, error_chain};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/devices") }))
        .route("/signin", get(sign_in_page).post(sign_in))
        .route("/signout", post(sign_out))
        .route("/devices", get(devices_page))
        .route("/devices/{id}/quarantine", get(quarantine_page))
        .route("/api/v1/requests/{id}/events", post(record_event))
        .route("/api/v1/devices/{id}/trip", get(device_trip))
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct LangQuery {
    pub(crate) lang: Option<String>,
}

pub(crate) fn language(query: &LangQuery, headers: &HeaderMap) -> Lang {
    if let Some(lang) = query.lang.as_deref().and_then(Lang::from_code) {
        return lang;
    }
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .split(',')
                .filter_map(|item| item.split(';').next())
                .filter_map(|tag| tag.trim().get(..2))
                .find_map(Lang::from_code)
        })
        .unwrap_or(Lang::Nl)
}

pub(crate) fn signed_in(state: &AppState, headers: &HeaderMap) -> Option<Staff> {
    let token = auth::token(headers)?;
    state
        .sessions
        .staff(&token, &state.trust.staff())
        .filter(|staff| staff.roles.contains(&Role::CentralIt))
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;font-size:1.0625rem;line-height:1.5;margin:0;color:#1b1b1b;background:#fff}\
header,main{padding:1rem 2rem}header{background:#0b3d63;color:#fff;display:flex;gap:1.5rem;align-items:center;flex-wrap:wrap}\
header a,header button{color:#fff}header button{background:transparent;border:2px solid #fff;border-radius:4px;padding:.4rem .9rem;font:inherit;cursor:pointer}a{color:#0b4f8a}table{border-collapse:collapse;margin:1rem 0;min-width:60%}\
caption{text-align:left;padding:.5rem 0;color:#333}th,td{border:1px solid #8a8a8a;padding:.5rem .75rem;text-align:left}\
th{background:#eef2f6}.revoked{color:#a00000;font-weight:600}.skip-link{position:absolute;left:-999px}\
.skip-link:focus{left:1rem;top:1rem;background:#fff;color:#000;padding:.5rem}label{display:block;margin-top:1rem}\
input{font-size:1rem;padding:.5rem;min-width:16rem}button{font-size:1rem;padding:.5rem 1rem;margin-top:1rem;cursor:pointer}\
.error{color:#a00000;border-left:4px solid #a00000;padding-left:.75rem}:focus-visible{outline:3px solid #f0b400;outline-offset:2px}\
.languages ul,.sections ul{list-style:none;display:flex;gap:1rem;margin:0;padding:0}.languages [aria-current],.sections [aria-current]{font-weight:700}\
.figures{display:flex;flex-wrap:wrap;gap:1rem;margin:1rem 0;padding:0}.figures div{border:1px solid #8a8a8a;border-radius:6px;padding:.75rem 1rem;min-width:12rem}\
.figures dt{font-size:1rem;color:#333}.figures dd{margin:0;font-size:2rem;font-weight:700}.method{background:#f4f6f8;border-left:4px solid #0b3d63;padding:.5rem 1rem;max-width:60rem}\
.chart{width:100%;max-width:60rem;height:auto;display:block}.legend{list-style:none;display:flex;gap:1.5rem;padding:0}.legend svg{vertical-align:middle}\
td.number{text-align:right;font-variant-numeric:tabular-nums}fieldset{border:1px solid #8a8a8a;display:flex;flex-wrap:wrap;gap:1rem;align-items:end}\
fieldset input{min-width:10rem}.hint{flex-basis:100%;margin:0;color:#333}.exports{margin:1rem 0}";

/// A whole page: the header (the hub's name, the language navigation, who is signed in), then
/// `main` under the `title`. `path` is the page's own address without `lang`, with its other
/// query parameters if it has some (`/indicators?from=2026-11-01`): the language navigation
/// links to it in each language.
pub(crate) fn frame(
    tr: Tr<'_>,
    title: &str,
    staff: Option<&Staff>,
    path: &str,
    main: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(tr.lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — " (tr.t("app-name")) }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                a.skip-link href="#main" { (tr.t("skip-to-content")) }
                header {
                    strong { (tr.t("app-name")) }
                    (language_navigation(tr, path))
                    @if let Some(staff) = staff {
                        nav.sections aria-label=(tr.t("nav-sections")) {
                            ul {
                                @for (href, key) in [("/devices", "nav-devices"), ("/indicators", "nav-indicators")] {
                                    li {
                                        @if path.split('?').next() == Some(href) {
                                            a href={ (href) "?lang=" (tr.lang.code()) } aria-current="page" { (tr.t(key)) }
                                        } @else {
                                            a href={ (href) "?lang=" (tr.lang.code()) } { (tr.t(key)) }
                                        }
                                    }
                                }
                            }
                        }
                        span { (tr.t_with("signed-in-as", "name", &staff.display_name)) }
                        form method="post" action="/signout" {
                            button type="submit" { (tr.t("sign-out")) }
                        }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (main)
                }
            }
        }
    }
}

/// Every language by its own name, in its own `lang`, each a link to `path` in that language;
/// the current one is marked `aria-current` and is not a link.
fn language_navigation(tr: Tr<'_>, path: &str) -> Markup {
    let separator = if path.contains('?') { '&' } else { '?' };
    html! {
        nav.languages aria-label=(tr.t("language-navigation")) {
            ul {
                @for &lang in Lang::ALL {
                    li {
                        @if lang == tr.lang {
                            span lang=(lang.code()) aria-current="true" { (lang.own_name()) }
                        } @else {
                            a href={ (path) (separator) "lang=" (lang.code()) }
                              lang=(lang.code()) hreflang=(lang.code()) { (lang.own_name()) }
                        }
                    }
                }
            }
        }
    }
}

pub(crate) fn html_response(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

pub(crate) fn to_sign_in(lang: Lang) -> Response {
    Redirect::to(&format!("/signin?lang={}", lang.code())).into_response()
}

async fn sign_in_page(
    State(state): State<AppState>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let tr = state.translations.tr(language(&query, &headers));
    html_response(StatusCode::OK, sign_in_markup(tr, false))
}

fn sign_in_markup(tr: Tr<'_>, failed: bool) -> Markup {
    let title = tr.t("signin-title");
    frame(
        tr,
        &title,
        None,
        "/signin",
        html! {
            @if failed {
                p.error role="alert" { (tr.t("signin-failed")) }
            }
            p { (tr.t("signin-intro")) }
            form method="post" action="/signin" {
                input type="hidden" name="lang" value=(tr.lang.code());
                label for="username" { (tr.t("signin-username")) }
                input #username name="username" type="text" autocomplete="username" required autofocus;
                label for="password" { (tr.t("signin-password")) }
                input #password name="password" type="password" autocomplete="current-password" required;
                div { button type="submit" { (tr.t("signin-submit")) } }
            }
        },
    )
}

#[derive(Deserialize)]
struct SignInForm {
    username: String,
    password: String,
    pub(crate) lang: Option<String>,
}

async fn sign_in(State(state): State<AppState>, Form(form): Form<SignInForm>) -> Response {
    let lang = form
        .lang
        .as_deref()
        .and_then(Lang::from_code)
        .unwrap_or(Lang::Nl);
    let worker = state.clone();
    let username = form.username.clone();
    let token = tokio::task::spawn_blocking(move || {
        worker.sessions.sign_in(
            &worker.trust.staff(),
            &form.username,
            &form.password,
            Role::CentralIt,
        )
    })
    .await
    .ok()
    .flatten();
    match token {
        Some(token) => {
            tracing::info!(username, "central IT signed in");
            (
                [(header::SET_COOKIE, auth::session_cookie(&token))],
                Redirect::to(&format!("/devices?lang={}", lang.code())),
            )
                .into_response()
        }
        None => {
            tracing::warn!(username, "sign-in refused");
            html_response(
                StatusCode::UNAUTHORIZED,
                sign_in_markup(state.translations.tr(lang), true),
            )
        }
    }
}

async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = auth::token(&headers) {
        state.sessions.sign_out(&token);
    }
    (
        [(header::SET_COOKIE, auth::clear_cookie())],
        Redirect::to("/signin"),
    )
        .into_response()
}

/// One row of the device page.
struct DeviceRow {
    id: DeviceId,
    revoked: bool,
    state: DeviceState,
    held: u64,
    quarantined: usize,
}

fn read_registry(state: &AppState) -> Result<Registry, String> {
    let text = std::fs::read_to_string(&state.registry)
        .map_err(|error| format!("{}: {error}", state.registry.display()))?;
    toml::from_str(&text).map_err(|error| format!("{}: {error}", state.registry.display()))
}

fn device_rows(state: &AppState) -> Result<Vec<DeviceRow>, String> {
    state.refresh();
    let registry = read_registry(state)?;
    let storage = state.hub.storage();
    let mut seen: HashMap<DeviceId, DeviceState> = storage
        .devices()
        .map_err(|error| error_chain(&error))?
        .into_iter()
        .collect();
    registry
        .devices
        .iter()
        .map(|(id, record)| {
            let revoked = record.revoked_at.is_some()
                || record.certificates.iter().any(|issued| {
                    issued
                        .serial
                        .parse::<Serial>()
                        .is_ok_and(|serial| state.hub.is_revoked(serial.as_bytes()))
                });
            Ok(DeviceRow {
                id: id.clone(),
                revoked,
                state: seen.remove(id).unwrap_or_default(),
                held: storage
                    .held_count(id)
                    .map_err(|error| error_chain(&error))?,
                quarantined: storage
                    .quarantine_entries(id)
                    .map_err(|error| error_chain(&error))?
                    .len(),
            })
        })
        .collect()
}

/// A data table: its caption and one `scope="col"` header a column (message keys both), then
/// the rows.
pub(crate) fn table(tr: Tr<'_>, caption: &str, columns: &[&str], rows: Markup) -> Markup {
    html! {
        table {
            caption { (tr.t(caption)) }
            thead {
                tr {
                    @for column in columns {
                        th scope="col" { (tr.t(column)) }
                    }
                }
            }
            tbody { (rows) }
        }
    }
}

const DEVICE_COLUMNS: &[&str] = &[
    "col-device",
    "col-state",
    "col-last-seen",
    "col-last-sync",
    "col-held",
    "col-quarantine",
];

const QUARANTINE_COLUMNS: &[&str] = &[
    "col-time",
    "col-code",
    "col-message",
    "col-size",
    "col-counter",
    "col-request",
];

fn when(tr: Tr<'_>, ms: Option<i64>) -> String {
    ms.and_then(DateTime::<Utc>::from_timestamp_millis)
        .map(|at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| tr.t("never"))
}

async fn devices_page(
    State(state): State<AppState>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = language(&query, &headers);
    let Some(staff) = signed_in(&state, &headers) else {
        return to_sign_in(lang);
    };
    let worker = state.clone();
    let rows = match tokio::task::spawn_blocking(move || device_rows(&worker)).await {
        Ok(Ok(rows)) => rows,
        Ok(Err(error)) => {
            tracing::error!("the device page cannot be drawn: {error}");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    let tr = state.translations.tr(lang);
    let title = tr.t("devices-title");
    let main = html! {
        @if rows.is_empty() {
            p { (tr.t("devices-empty")) }
        } @else {
            (table(tr, "devices-caption", DEVICE_COLUMNS, html! {
                @for row in &rows {
                    tr data-device=(row.id) {
                        th scope="row" { (row.id) }
                        @if row.revoked {
                            td.revoked { (tr.t("state-revoked")) }
                        } @else {
                            td { (tr.t("state-active")) }
                        }
                        td { (when(tr, row.state.last_seen_ms)) }
                        td { (when(tr, row.state.last_sync_ms)) }
                        td { (row.held) }
                        td {
                            a href={ "/devices/" (row.id) "/quarantine?lang=" (lang.code()) }
                              aria-label=(tr.t_with("show-quarantine", "device", row.id.as_str())) {
                                (row.quarantined)
                            }
                        }
                    }
                }
            }))
        }
    };
    html_response(
        StatusCode::OK,
        frame(tr, &title, Some(&staff), "/devices", main),
    )
}

async fn quarantine_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = language(&query, &headers);
    let Some(staff) = signed_in(&state, &headers) else {
        return to_sign_in(lang);
    };
    let tr = state.translations.tr(lang);
    let Ok(device) = id.parse::<DeviceId>() else {
        return html_response(StatusCode::NOT_FOUND, html! { p { (tr.t("not-found")) } });
    };
    let worker = state.clone();
    let lookup = device.clone();
    let entries: Result<Option<Vec<QuarantineEntry>>, String> =
        tokio::task::spawn_blocking(move || {
            let registry = read_registry(&worker)?;
            if !registry.devices.contains_key(&lookup) {
                return Ok(None);
            }
            worker
                .hub
                .storage()
                .quarantine_entries(&lookup)
                .map(Some)
                .map_err(|error| error_chain(&error))
        })
        .await
        .unwrap_or_else(|error| Err(error.to_string()));
    let entries = match entries {
        Ok(Some(entries)) => entries,
        Ok(None) => {
            let title = tr.t("not-found");
            let main = html! { p { a href="/devices" { (tr.t("back-to-devices")) } } };
            return html_response(
                StatusCode::NOT_FOUND,
                frame(tr, &title, Some(&staff), "/devices", main),
            );
        }
        Err(error) => {
            tracing::error!("the quarantine page cannot be drawn: {error}");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let title = tr.t_with("quarantine-title", "device", device.as_str());
    let path = format!("/devices/{device}/quarantine");
    let main = html! {
        p { a href={ "/devices?lang=" (lang.code()) } { (tr.t("back-to-devices")) } }
        @if entries.is_empty() {
            p { (tr.t("quarantine-empty")) }
        } @else {
            (table(tr, "quarantine-caption", QUARANTINE_COLUMNS, html! {
                @for entry in &entries {
                    tr {
                        td { (when(tr, Some(entry.at_ms))) }
                        td { code { (entry.code) } }
                        td { (entry.message) }
                        td { (entry.size) }
                        td { (entry.counter.map(|c| c.to_string()).unwrap_or_default()) }
                        td { (entry.request.map(|id| RequestId::from_bytes(id).to_string()).unwrap_or_default()) }
                    }
                }
            }))
        }
    };
    html_response(StatusCode::OK, frame(tr, &title, Some(&staff), &path, main))
}

pub(crate) fn api_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(serde_json::json!({"code": code, "message": message.into()})),
    )
        .into_response()
}

/// The body of `POST /api/v1/requests/{id}/events`: an event kind as the record stores it,
/// e.g. `{"kind": "approved"}` or `{"kind": "rejected", "reason": "…"}`.
#[derive(Deserialize)]
struct EventBody {
    #[serde(flatten)]
    kind: EventKind,
}

/// A bus's trip log as the hub has it: the lines in order and the route's length (the bus's own
/// kilometres, from its thinned route; lost fixes bridged in a straight line).
#[derive(Serialize)]
struct TripBody {
    device: DeviceId,
    route_km: f64,
    lines: Vec<TripLineBody>,
}

#[derive(Serialize)]
struct TripLineBody {
    number: u64,
    #[serde(flatten)]
    entry: TripEntry,
}

async fn device_trip(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if signed_in(&state, &headers).is_none() {
        return api_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in as central IT",
        );
    }
    let Ok(device) = id.parse::<DeviceId>() else {
        return api_error(StatusCode::NOT_FOUND, "not-found", "no such device");
    };
    let worker = state.clone();
    let lookup = device.clone();
    let lines = match tokio::task::spawn_blocking(move || worker.hub.storage().trip(&lookup)).await
    {
        Ok(Ok(lines)) => lines,
        Ok(Err(error)) => {
            tracing::error!("the trip log cannot be read: {error}");
            return api_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the hub cannot read now",
            );
        }
        Err(error) => {
            tracing::error!("the trip log reader failed: {error}");
            return api_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the hub cannot read now",
            );
        }
    };
    let entries: Vec<TripEntry> = lines.iter().map(|(_, entry)| entry.clone()).collect();
    Json(TripBody {
        device,
        route_km: route_length_m(&entries) / 1000.0,
        lines: lines
            .into_iter()
            .map(|(number, entry)| TripLineBody { number, entry })
            .collect(),
    })
    .into_response()
}

async fn record_event(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<EventBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Some(staff) = signed_in(&state, &headers) else {
        return api_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in as central IT",
        );
    };
    let Ok(id) = id.parse::<RequestId>() else {
        return api_error(StatusCode::NOT_FOUND, "not-found", "no such request");
    };
    let Json(body) = match body {
        Ok(body) => body,
        Err(rejection) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "bad-request",
                rejection.body_text(),
            );
        }
    };
    let now = Utc::now();
    let event = NewEvent {
        id: EventId::new(
            u64::try_from(now.timestamp_millis()).unwrap_or(0),
            rand::thread_rng().r#gen(),
        ),
        at: now,
        by: staff.actor(),
        device: state.hub_id.clone(),
        kind: body.kind,
    };
    let event_id = event.id;
    let worker = state.clone();
    let result = tokio::task::spawn_blocking(move || worker.hub.append_event(id, event)).await;
    let cannot_write = || {
        api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the hub cannot write now",
        )
    };
    match result {
        Ok(Ok(view)) => (
            StatusCode::CREATED,
            Json(serde_json::json!({
                "request": id.to_string(),
                "event": event_id.to_string(),
                "status": view.status.code(),
            })),
        )
            .into_response(),
        Ok(Err(HubError::NotFound(_))) => api_error(
            StatusCode::NOT_FOUND,
            "not-found",
            "no such request at the hub",
        ),
        Ok(Err(HubError::Refused(error))) => {
            let code = match error {
                RecordError::NotAllowedNow { .. } => "not-allowed-now",
                _ => "refused",
            };
            api_error(StatusCode::CONFLICT, code, error.to_string())
        }
        Ok(Err(error)) => {
            tracing::error!("recording an event failed: {}", error_chain(&error));
            cannot_write()
        }
        Err(error) => {
            tracing::error!("recording an event failed: {error}");
            cannot_write()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Translations;

    #[test]
    fn the_language_navigation_keeps_the_page_and_its_query() {
        let translations = Translations::new().unwrap();
        let french = language_navigation(translations.tr(Lang::Fr), "/devices").into_string();
        assert_eq!(
            french,
            "<nav class=\"languages\" aria-label=\"Langue\"><ul>\
             <li><a href=\"/devices?lang=nl\" lang=\"nl\" hreflang=\"nl\">Nederlands</a></li>\
             <li><span lang=\"fr\" aria-current=\"true\">Français</span></li>\
             <li><a href=\"/devices?lang=de\" lang=\"de\" hreflang=\"de\">Deutsch</a></li>\
             <li><a href=\"/devices?lang=en\" lang=\"en\" hreflang=\"en\">English</a></li>\
             </ul></nav>"
        );
        let german = language_navigation(translations.tr(Lang::De), "/indicators?from=2026-11-01")
            .into_string();
        assert!(german.contains("aria-label=\"Sprache\""), "{german}");
        assert!(
            german.contains("href=\"/indicators?from=2026-11-01&amp;lang=nl\""),
            "{german}"
        );
    }
}
