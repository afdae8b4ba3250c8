//! The indicators page (`/indicators`) and its exports: `/indicators/visits.csv` (per day and
//! stop), `/indicators/bus.csv` (the bus's kilometres per day) and `/api/v1/indicators` (the
//! whole [`Report`] as JSON). Each takes `from` and `to` (local dates, both included; by default
//! the last 28 days). Central IT only, like the other pages; nothing shown names a citizen.

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{Duration, NaiveDate, Utc};
use maud::{Markup, html};
use serde::Deserialize;

use super::chart::{Chart, Series, bar_chart};
use super::{CITY_TIME_ZONE, Counts, MAX_PERIOD_DAYS, Period, Report, local_day, report};
use crate::i18n::{Lang, Tr};
use crate::pages::{api_error, frame, html_response, language, signed_in, table, to_sign_in};
use crate::server::AppState;
use crate::sync::error_chain;
use busloket_sync::terms::StopId;

/// The period a page shows when none is asked for.
const DEFAULT_DAYS: u64 = 28;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/indicators", get(indicators_page))
        .route("/indicators/visits.csv", get(visits_csv))
        .route("/indicators/bus.csv", get(bus_csv))
        .route("/api/v1/indicators", get(indicators_json))
}

#[derive(Debug, Deserialize, Default)]
struct PeriodQuery {
    lang: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// Why a period asked for cannot be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PeriodError {
    BadDate,
    Reversed,
    TooLong,
}

impl PeriodError {
    /// The page's message.
    fn key(self) -> &'static str {
        match self {
            PeriodError::BadDate => "indicators-bad-date",
            PeriodError::Reversed => "indicators-reversed",
            PeriodError::TooLong => "indicators-too-long",
        }
    }

    /// The API's message.
    fn message(self) -> String {
        match self {
            PeriodError::BadDate => "from and to are dates written YYYY-MM-DD".to_owned(),
            PeriodError::Reversed => "the period starts after it ends".to_owned(),
            PeriodError::TooLong => format!("a period has at most {MAX_PERIOD_DAYS} days"),
        }
    }
}

impl PeriodQuery {
    fn lang_query(&self) -> crate::pages::LangQuery {
        crate::pages::LangQuery {
            lang: self.lang.clone(),
        }
    }

    /// The period asked for, or the last [`DEFAULT_DAYS`] days.
    fn period(&self) -> Result<Period, PeriodError> {
        let date = |text: &Option<String>| -> Result<Option<NaiveDate>, PeriodError> {
            match text
                .as_deref()
                .map(str::trim)
                .filter(|text| !text.is_empty())
            {
                Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .map(Some)
                    .map_err(|_| PeriodError::BadDate),
                None => Ok(None),
            }
        };
        let today = local_day(Utc::now());
        match (date(&self.from)?, date(&self.to)?) {
            (None, None) => Ok(Period::last(DEFAULT_DAYS, today)),
            (Some(from), None) => {
                Period::new(from, today.max(from)).map_err(|_| PeriodError::TooLong)
            }
            (None, Some(to)) => Ok(Period::last(DEFAULT_DAYS, to)),
            (Some(from), Some(to)) if from > to => Err(PeriodError::Reversed),
            (Some(from), Some(to)) => Period::new(from, to).map_err(|_| PeriodError::TooLong),
        }
    }
}

/// Computes the report of `period` on a blocking thread.
async fn compute(state: &AppState, period: Period) -> Result<Report, String> {
    let worker = state.clone();
    tokio::task::spawn_blocking(move || {
        let storage = worker.hub.storage();
        let (start, end) = period.span();
        // The rows are found by request id, made by the same clock as the request's time; a
        // day's margin either side keeps the search simple, and `report` keeps the period.
        let rows = storage
            .indicator_rows(start - Duration::days(1), end + Duration::days(1))
            .map_err(|error| error_chain(&error))?;
        let mut trips = Vec::new();
        for (device, _) in storage.devices().map_err(|error| error_chain(&error))? {
            let lines = storage.trip(&device).map_err(|error| error_chain(&error))?;
            trips.push((device, lines.into_iter().map(|(_, entry)| entry).collect()));
        }
        let schedule = worker.schedule.current();
        Ok(report(
            &rows,
            &trips,
            &schedule,
            worker.indicators.as_ref(),
            period,
        ))
    })
    .await
    .unwrap_or_else(|error| Err(error.to_string()))
}

/// A number as the language writes it, with `places` decimals (a decimal comma in nl, fr, de).
fn decimal(lang: Lang, value: f64, places: usize) -> String {
    let text = format!("{value:.places$}");
    match lang {
        Lang::En => text,
        _ => text.replace('.', ","),
    }
}

/// A date for the chart's axis: day/month.
fn short_date(day: NaiveDate) -> String {
    day.format("%-d/%-m").to_string()
}

async fn indicators_page(
    State(state): State<AppState>,
    Query(query): Query<PeriodQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = language(&query.lang_query(), &headers);
    let Some(staff) = signed_in(&state, &headers) else {
        return to_sign_in(lang);
    };
    let tr = state.translations.tr(lang);
    let title = tr.t("indicators-title");
    let (period, error) = match query.period() {
        Ok(period) => (period, None),
        Err(error) => (
            Period::last(DEFAULT_DAYS, local_day(Utc::now())),
            Some(error.key()),
        ),
    };
    let report = match compute(&state, period).await {
        Ok(report) => report,
        Err(error) => {
            tracing::error!("the indicators cannot be computed: {error}");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let path = format!("/indicators?from={}&to={}", period.from, period.to);
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let main = html! {
        (period_form(tr, period, error))
        (exports(tr, period))
        (key_figures(tr, &report))
        (charts(tr, &report))
        (tables(tr, &report))
    };
    html_response(status, frame(tr, &title, Some(&staff), &path, main))
}

fn period_form(tr: Tr<'_>, period: Period, error: Option<&str>) -> Markup {
    html! {
        @if let Some(key) = error {
            p.error role="alert" id="period-error" {
                (tr.t_with(key, "days", &MAX_PERIOD_DAYS.to_string()))
            }
        }
        form.period method="get" action="/indicators" {
            input type="hidden" name="lang" value=(tr.lang.code());
            fieldset {
                legend { (tr.t("indicators-period")) }
                div.field {
                    label for="from" { (tr.t("indicators-from")) }
                    input #from type="date" name="from" value=(period.from)
                        aria-describedby=[error.map(|_| "period-error")];
                }
                div.field {
                    label for="to" { (tr.t("indicators-to")) }
                    input #to type="date" name="to" value=(period.to);
                }
                button type="submit" { (tr.t("indicators-show")) }
                p.hint { (tr.t_with("indicators-period-hint", "zone", CITY_TIME_ZONE.name())) }
            }
        }
    }
}

fn exports(tr: Tr<'_>, period: Period) -> Markup {
    let query = format!("from={}&to={}", period.from, period.to);
    html! {
        nav.exports aria-label=(tr.t("indicators-exports")) {
            (tr.t("indicators-download")) " "
            a href={ "/indicators/visits.csv?" (query) } download { (tr.t("indicators-visits-csv")) }
            " · "
            a href={ "/indicators/bus.csv?" (query) } download { (tr.t("indicators-bus-csv")) }
            " · "
            a href={ "/api/v1/indicators?" (query) } { (tr.t("indicators-json")) }
        }
    }
}

fn key_figures(tr: Tr<'_>, report: &Report) -> Markup {
    let lang = tr.lang;
    let totals = &report.totals;
    let period = tr.t_args(
        "indicators-figures",
        &[
            ("from", report.from.to_string()),
            ("to", report.to.to_string()),
        ],
    );
    html! {
        section aria-labelledby="figures-heading" {
            h2 #figures-heading { (period) }
            dl.figures {
                div { dt { (tr.t("indicators-visits")) } dd { (totals.counts.visits) } }
                div { dt { (tr.t("indicators-requests")) } dd { (totals.counts.requests) } }
                div { dt { (tr.t("indicators-delivered")) } dd { (totals.counts.delivered) } }
                div {
                    dt { (tr.t("indicators-km-avoided")) }
                    dd {
                        @if report.method.is_some() {
                            (decimal(lang, totals.counts.km_avoided, 1)) " km"
                        } @else {
                            (tr.t("indicators-not-estimated"))
                        }
                    }
                }
                div { dt { (tr.t("indicators-bus-km")) } dd { (decimal(lang, totals.bus_km, 1)) " km" } }
            }
            (method(tr, report))
        }
    }
}

/// How the kilometres are estimated, next to the figure.
fn method(tr: Tr<'_>, report: &Report) -> Markup {
    let lang = tr.lang;
    let totals = &report.totals;
    html! {
        section.method aria-labelledby="method-heading" {
            h3 #method-heading { (tr.t("indicators-method")) }
            @if let Some(method) = &report.method {
                p.formula {
                    (tr.t("indicators-formula"))
                }
                ul {
                    li { (tr.t_args("indicators-assume-town-hall", &[
                        ("name", method.town_hall.name.clone()),
                        ("position", format!("{:.4}, {:.4}", method.town_hall.position.latitude, method.town_hall.position.longitude)),
                    ])) }
                    li { (tr.t_with("indicators-assume-road", "factor", &decimal(lang, method.road_factor, 2))) }
                    li { (tr.t("indicators-assume-home")) }
                    li { (tr.t("indicators-assume-visit")) }
                    li { (tr.t("indicators-assume-bus")) }
                }
                p {
                    (tr.t_args("indicators-coverage", &[
                        ("estimated", totals.counts.visits_estimated.to_string()),
                        ("visits", totals.counts.visits.to_string()),
                        ("without_home", totals.visits_without_home.to_string()),
                        ("without_place", totals.visits_without_place.to_string()),
                    ]))
                }
            } @else {
                p { (tr.t("indicators-not-configured")) }
            }
        }
    }
}

fn charts(tr: Tr<'_>, report: &Report) -> Markup {
    let lang = tr.lang;
    let categories: Vec<String> = report.days.iter().map(|day| short_date(day.day)).collect();
    let busiest = report.days.iter().max_by_key(|day| day.counts.visits);
    let visits_name = tr.t("indicators-visits");
    let requests_name = tr.t("indicators-requests");
    let avoided_name = tr.t("indicators-km-avoided");
    let bus_name = tr.t("indicators-bus-km");
    let visits_title = tr.t("indicators-chart-visits");
    let visits_desc = match busiest.filter(|day| day.counts.visits > 0) {
        Some(day) => tr.t_args(
            "indicators-chart-visits-desc",
            &[
                ("day", day.day.to_string()),
                ("visits", day.counts.visits.to_string()),
                ("total", report.totals.counts.visits.to_string()),
            ],
        ),
        None => tr.t("indicators-chart-empty"),
    };
    let km_title = tr.t("indicators-chart-km");
    let km_desc = tr.t_args(
        "indicators-chart-km-desc",
        &[
            ("avoided", decimal(lang, report.totals.counts.km_avoided, 1)),
            ("bus", decimal(lang, report.totals.bus_km, 1)),
        ],
    );
    let whole = |value: f64| format!("{value:.0}");
    let km = move |value: f64| decimal(lang, value, if value < 10.0 { 1 } else { 0 });
    html! {
        section aria-labelledby="visits-chart-heading" {
            h2 #visits-chart-heading { (visits_title) }
            (bar_chart(&Chart {
                id: "visits-chart",
                title: &visits_title,
                description: &visits_desc,
                categories: categories.clone(),
                series: vec![
                    Series { name: &visits_name, values: report.days.iter().map(|day| day.counts.visits as f64).collect() },
                    Series { name: &requests_name, values: report.days.iter().map(|day| day.counts.requests as f64).collect() },
                ],
                whole: true,
                format: &whole,
            }))
        }
        section aria-labelledby="km-chart-heading" {
            h2 #km-chart-heading { (km_title) }
            (bar_chart(&Chart {
                id: "km-chart",
                title: &km_title,
                description: &km_desc,
                categories,
                series: vec![
                    Series { name: &avoided_name, values: report.days.iter().map(|day| day.counts.km_avoided).collect() },
                    Series { name: &bus_name, values: report.days.iter().map(|day| day.bus_km).collect() },
                ],
                whole: false,
                format: &km,
            }))
        }
    }
}

const STOP_COLUMNS: &[&str] = &[
    "indicators-col-stop",
    "indicators-visits",
    "indicators-requests",
    "indicators-delivered",
    "indicators-col-km-avoided",
];

const STOP_DAY_COLUMNS: &[&str] = &[
    "indicators-col-day",
    "indicators-col-stop",
    "indicators-visits",
    "indicators-requests",
    "indicators-delivered",
    "indicators-col-km-avoided",
];

const BUS_COLUMNS: &[&str] = &[
    "indicators-col-day",
    "indicators-col-bus",
    "indicators-col-km",
];

/// A stop's row header and its counts, as the per-stop and per-day tables show them.
fn stop_cells(tr: Tr<'_>, stop: Option<&StopId>, name: Option<&str>, counts: &Counts) -> Markup {
    let label = match (name, stop) {
        (Some(name), _) => name.to_owned(),
        (None, Some(stop)) => stop.to_string(),
        (None, None) => tr.t("indicators-no-stop"),
    };
    html! {
        th scope="row" { (label) }
        td.number { (counts.visits) }
        td.number { (counts.requests) }
        td.number { (counts.delivered) }
        td.number { (decimal(tr.lang, counts.km_avoided, 1)) }
    }
}

fn tables(tr: Tr<'_>, report: &Report) -> Markup {
    let lang = tr.lang;
    html! {
        section aria-labelledby="stops-heading" {
            h2 #stops-heading { (tr.t("indicators-per-stop")) }
            @if report.stops.is_empty() {
                p { (tr.t("indicators-nothing")) }
            } @else {
                (table(tr, "indicators-per-stop-caption", STOP_COLUMNS, html! {
                    @for stop in &report.stops {
                        tr { (stop_cells(tr, stop.stop.as_ref(), stop.stop_name.as_deref(), &stop.counts)) }
                    }
                }))
            }
        }
        section aria-labelledby="days-heading" {
            h2 #days-heading { (tr.t("indicators-per-day")) }
            @if report.stop_days.is_empty() {
                p { (tr.t("indicators-nothing")) }
            } @else {
                (table(tr, "indicators-per-day-caption", STOP_DAY_COLUMNS, html! {
                    @for row in &report.stop_days {
                        tr {
                            td { time datetime=(row.day) { (row.day) } }
                            (stop_cells(tr, row.stop.as_ref(), row.stop_name.as_deref(), &row.counts))
                        }
                    }
                }))
            }
        }
        section aria-labelledby="bus-heading" {
            h2 #bus-heading { (tr.t("indicators-per-bus")) }
            @if report.buses.is_empty() {
                p { (tr.t("indicators-no-trips")) }
            } @else {
                (table(tr, "indicators-per-bus-caption", BUS_COLUMNS, html! {
                    @for row in &report.buses {
                        tr {
                            td { time datetime=(row.day) { (row.day) } }
                            th scope="row" { (row.device) }
                            td.number { (decimal(lang, row.km, 1)) }
                        }
                    }
                }))
            }
        }
    }
}

/// The report for an export, or the error response: `401` when not signed in, `400` for a bad
/// period.
async fn export_report(
    state: &AppState,
    query: &PeriodQuery,
    headers: &HeaderMap,
) -> Result<Report, Response> {
    if signed_in(state, headers).is_none() {
        return Err(api_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in as central IT",
        ));
    }
    let period = query
        .period()
        .map_err(|error| api_error(StatusCode::BAD_REQUEST, "bad-period", error.message()))?;
    compute(state, period).await.map_err(|error| {
        tracing::error!("the indicators cannot be computed: {error}");
        api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the hub cannot read now",
        )
    })
}

async fn indicators_json(
    State(state): State<AppState>,
    Query(query): Query<PeriodQuery>,
    headers: HeaderMap,
) -> Response {
    match export_report(&state, &query, &headers).await {
        Ok(report) => Json(report).into_response(),
        Err(response) => response,
    }
}

/// A CSV field: quoted when it holds a separator, a quote or a line break; a text that a
/// spreadsheet would take for a formula starts with `'`.
fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn csv_response(name: &str, report: &Report, body: String) -> Response {
    let file = format!("busloket-{name}-{}-{}.csv", report.from, report.to);
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// Visits and documents per day and stop: one line each, with the kilometres avoided.
pub fn visits_csv_text(report: &Report) -> String {
    let mut out = String::from(
        "day,stop,stop_name,visits,requests,delivered,visits_estimated,km_avoided\r\n",
    );
    for row in &report.stop_days {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{:.3}\r\n",
            row.day,
            row.stop.as_ref().map(|stop| stop.as_str()).unwrap_or(""),
            csv_field(row.stop_name.as_deref().unwrap_or("")),
            row.counts.visits,
            row.counts.requests,
            row.counts.delivered,
            row.counts.visits_estimated,
            row.counts.km_avoided,
        ));
    }
    out
}

/// The bus's kilometres per day and bus.
pub fn bus_csv_text(report: &Report) -> String {
    let mut out = String::from("day,bus,km\r\n");
    for row in &report.buses {
        out.push_str(&format!("{},{},{:.3}\r\n", row.day, row.device, row.km));
    }
    out
}

async fn visits_csv(
    State(state): State<AppState>,
    Query(query): Query<PeriodQuery>,
    headers: HeaderMap,
) -> Response {
    match export_report(&state, &query, &headers).await {
        Ok(report) => csv_response("visits", &report, visits_csv_text(&report)),
        Err(response) => response,
    }
}

async fn bus_csv(
    State(state): State<AppState>,
    Query(query): Query<PeriodQuery>,
    headers: HeaderMap,
) -> Response {
    match export_report(&state, &query, &headers).await {
        Ok(report) => csv_response("bus", &report, bus_csv_text(&report)),
        Err(response) => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("Markt"), "Markt");
        assert_eq!(csv_field("Markt, noord"), "\"Markt, noord\"");
        assert_eq!(csv_field("De \"Brug\""), "\"De \"\"Brug\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field("-1"), "'-1");
    }

    #[test]
    fn numbers_are_written_as_the_language_does() {
        assert_eq!(decimal(Lang::Nl, 12.345, 1), "12,3");
        assert_eq!(decimal(Lang::En, 12.345, 1), "12.3");
    }
}
