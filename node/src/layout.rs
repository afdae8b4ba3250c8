//! The page frame shared by the kiosk, the staff console and the demo page; the stylesheet and
//! the small script, served from the binary (no front-end build step).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use maud::{DOCTYPE, Markup, html};

use crate::i18n::Tr;
use crate::state::AppState;

const STYLESHEET: &str = include_str!("../assets/busloket.css");
const SCRIPT: &str = include_str!("../assets/busloket.js");

pub async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
}

pub async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}

/// What a page puts into the frame.
pub struct Page<'a> {
    pub tr: Tr<'a>,
    pub title: String,
    /// `kiosk`, `staff` or `demo`: picks the type scale and layout.
    pub kind: &'static str,
    /// The server-sent events the script listens to; on an event it redraws the page.
    pub events: Option<String>,
    /// Kiosk only: seconds without a touch before the "are you still there?" warning, and where to
    /// go when nobody answers it.
    pub idle: Option<(u64, String)>,
    pub header: Markup,
    pub main: Markup,
}

pub fn page(page: Page<'_>) -> Markup {
    let Page {
        tr,
        title,
        kind,
        events,
        idle,
        header,
        main,
    } = page;
    let idle_seconds = idle.as_ref().map(|(seconds, _)| seconds.to_string());
    let idle_end = idle.as_ref().map(|(_, url)| url.clone());
    html! {
        (DOCTYPE)
        html lang=(tr.language.as_str()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — " (tr.t("app-name")) }
                link rel="stylesheet" href="/assets/busloket.css";
                script src="/assets/busloket.js" defer {}
            }
            body class=(kind) data-events=[events] data-idle-seconds=[idle_seconds] data-idle-end=[idle_end] {
                a.skip-link href="#main" { (tr.t("skip-to-content")) }
                header.top { (header) }
                main #main tabindex="-1" { (main) }
                @if idle.is_some() {
                    div #idle-warning .dialog role="alertdialog" aria-modal="true" aria-labelledby="idle-title" hidden {
                        h2 #idle-title { (tr.t("kiosk-idle-title")) }
                        p { (tr.t("kiosk-idle-text")) }
                        button #idle-continue .button.primary type="button" { (tr.t("kiosk-idle-continue")) }
                    }
                }
            }
        }
    }
}

/// A time as the bus's clock shows it: the system's time zone (Europe/Brussels on a bus).
pub fn local_time(at: chrono::DateTime<chrono::Utc>, format: &str) -> String {
    at.with_timezone(&chrono::Local).format(format).to_string()
}

/// The node's front door: where the tablets and the staff go.
pub async fn index(State(state): State<AppState>) -> Markup {
    let tr = state.translations.get(Default::default());
    page(Page {
        tr,
        title: tr.t("index-title"),
        kind: "staff",
        events: None,
        idle: None,
        header: html! { p.brand { (tr.t("app-name")) } },
        main: html! {
            h1 { (tr.t("index-title")) }
            h2 { (tr.t("index-kiosks")) }
            ul.links {
                @for station in &state.config.stations {
                    li { a href={ "/kiosk/" (station.id) } { (station.name) } }
                }
            }
            h2 { (tr.t("index-staff")) }
            ul.links { li { a href="/staff" { (tr.t("staff-console")) } } }
            @if state.demo.is_some() {
                h2 { (tr.t("demo-title")) }
                ul.links { li { a href="/demo" { (tr.t("demo-control")) } } }
            }
        },
    })
}
