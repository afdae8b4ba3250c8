//! The kiosk's screens, one question each: big type, big targets, the language switch and the
//! "help" button always there, every icon with words. Rendering only: the state is in `kiosk`.

use axum::extract::{Path, State};
use busloket_sync::catalogue::{DocumentType, Family};
use busloket_sync::eligibility::{Decision, EligibilityQuery, decide};
use busloket_sync::terms::{AuthStrength, DeliveryMethod, DocumentCode, Language, Relation};
use maud::{Markup, PreEscaped, html};

use super::{CardState, Citizen, KioskSession, PinProblem, Step, Subject, step};
use crate::error::ApiError;
use crate::i18n::Tr;
use crate::layout::{Page, page};
use crate::state::AppState;

pub async fn show(
    State(state): State<AppState>,
    Path(station): Path<String>,
) -> Result<Markup, ApiError> {
    let session = state.kiosks.get(&station).ok_or_else(|| {
        ApiError::not_found("unknown-station", format!("no kiosk station `{station}`"))
    })?;
    let tr = state.translations.get(session.language());
    let purpose_required = |code: &DocumentCode| {
        state
            .catalogue
            .get(code)
            .is_some_and(|d| d.purpose_required)
    };
    let current = step(&session, purpose_required);
    let (title, main) = screen(&state, &station, &session, current, tr);
    let idle = (current != Step::Language || session.language.is_some()).then(|| {
        (
            state.config.kiosk_idle.as_secs(),
            format!("/kiosk/{station}/end"),
        )
    });
    Ok(page(Page {
        tr,
        title: title.clone(),
        kind: "kiosk",
        events: Some(format!("/kiosk/{station}/events?seen={}", session.revision)),
        idle,
        header: header(&station, &session, tr),
        main: html! {
            @if let Some(message) = &session.message {
                @let is_notice = message == "kiosk-help-called";
                div.message.(if is_notice { "notice" } else { "problem" }) role=(if is_notice { "status" } else { "alert" }) {
                    p { (tr.t(message)) }
                }
            }
            (main)
        },
    }))
}

fn header(station: &str, session: &KioskSession, tr: Tr<'_>) -> Markup {
    html! {
        p.brand { (icon(BUS)) (tr.t("app-name")) }
        form.language-switch method="post" action={ "/kiosk/" (station) "/language" } {
            span.visually-hidden { (tr.t("language-switch")) }
            @for language in Language::ALL {
                button.button.language type="submit" name="language" value=(language.as_str())
                    lang=(language.as_str()) aria-pressed=(if session.language == Some(*language) { "true" } else { "false" }) {
                    (language_name(*language))
                }
            }
        }
        form.help method="post" action={ "/kiosk/" (station) "/help" } {
            button.button.help type="submit" { (icon(HELP)) (tr.t("kiosk-help")) }
        }
    }
}

fn screen(
    state: &AppState,
    station: &str,
    session: &KioskSession,
    current: Step,
    tr: Tr<'_>,
) -> (String, Markup) {
    let action = |path: &str| format!("/kiosk/{station}/{path}");
    match current {
        Step::Language => {
            let title = "Welkom · Bienvenue · Willkommen · Welcome".to_owned();
            (
                title.clone(),
                html! {
                    h1 tabindex="-1" { (title) }
                    p.lead { "Kies uw taal · Choisissez votre langue · Wählen Sie Ihre Sprache · Choose your language" }
                    form.choices method="post" action=(action("language")) {
                        @for language in Language::ALL {
                            button.button.choice type="submit" name="language" value=(language.as_str()) lang=(language.as_str()) {
                                (language_name(*language))
                            }
                        }
                    }
                },
            )
        }
        Step::InsertCard => {
            let title = tr.t("kiosk-insert-card");
            (
                title.clone(),
                html! {
                    h1 tabindex="-1" { (title) }
                    div.card-picture aria-hidden="true" { (PreEscaped(CARD_PICTURE)) }
                    p.lead { (tr.t("kiosk-insert-card-text")) }
                    p { (tr.t("kiosk-insert-card-no-card")) }
                    // Without JavaScript the page cannot hear the card: let the citizen say it.
                    noscript {
                        a.button.primary href=(format!("/kiosk/{station}")) { (tr.t("kiosk-card-inserted")) }
                    }
                    (back_button(station, "language", tr))
                },
            )
        }
        Step::Reading => {
            let title = tr.t("kiosk-reading");
            (
                title.clone(),
                html! {
                    h1 tabindex="-1" { (title) }
                    p.lead role="status" { (tr.t("kiosk-reading-text")) }
                    noscript { a.button href=(format!("/kiosk/{station}")) { (tr.t("kiosk-refresh")) } }
                },
            )
        }
        Step::CardFailed => {
            let code = match &session.card {
                CardState::Failed { code } => *code,
                _ => "card-unreadable",
            };
            let title = tr.t("kiosk-card-failed");
            (
                title.clone(),
                html! {
                    h1 tabindex="-1" { (title) }
                    p.lead role="alert" { (tr.t(&format!("kiosk-{code}"))) }
                    p { (tr.t("kiosk-card-failed-next")) }
                },
            )
        }
        Step::ForWhom => for_whom(station, session, tr),
        Step::Document => documents(state, station, session, tr),
        Step::Purpose => {
            let title = tr.t("kiosk-purpose-title");
            (
                title.clone(),
                html! {
                    form method="post" action=(action("purpose")) {
                        h1 tabindex="-1" { label for="purpose" { (title) } }
                        p #purpose-hint .lead { (tr.t("kiosk-purpose-hint")) }
                        input #purpose .text type="text" name="purpose" maxlength="200" required
                            aria-describedby="purpose-hint" autocomplete="off" value=[session.purpose.as_deref()];
                        button.button.primary type="submit" { (tr.t("kiosk-continue")) " →" }
                    }
                    (back_button(station, "document", tr))
                },
            )
        }
        Step::Delivery => {
            let title = tr.t("kiosk-delivery");
            (
                title.clone(),
                html! {
                    h1 tabindex="-1" { (title) }
                    form.choices method="post" action=(action("delivery")) {
                        button.button.choice type="submit" name="method" value=(DeliveryMethod::PrintHere.as_str()) {
                            (icon(PRINTER)) (tr.t("kiosk-delivery-print"))
                        }
                    }
                    form.email-form method="post" action=(action("delivery")) {
                        input type="hidden" name="method" value=(DeliveryMethod::Email.as_str());
                        label for="email" { (icon(MAIL)) (tr.t("kiosk-delivery-email")) }
                        input #email .text type="email" name="email" autocomplete="off" inputmode="email" required;
                        button.button type="submit" { (tr.t("kiosk-delivery-email-send")) " →" }
                    }
                    (back_button(station, if purpose_needed(state, session) { "purpose" } else { "document" }, tr))
                },
            )
        }
        Step::Confirm => confirm(state, station, session, tr),
        Step::Done => {
            let done = session.done.as_ref();
            let number = done.map(|d| d.queue_number.to_string()).unwrap_or_default();
            let title = tr.t_with("kiosk-done-number", &[("number", &number)]);
            (
                title.clone(),
                html! {
                    h1 tabindex="-1" { (tr.t("kiosk-done-title")) }
                    p.queue-number aria-label=(title) { (number) }
                    @if done.is_some_and(|d| d.ticket_printed) {
                        p.lead { (icon(PRINTER)) (tr.t("kiosk-done-take-ticket")) }
                    } @else {
                        p.lead.message.problem role="alert" { (tr.t("kiosk-done-no-ticket")) }
                    }
                    p.lead { (if done.is_some_and(|d| d.automatic) { tr.t("kiosk-done-automatic") } else { tr.t("kiosk-done-clerk") }) }
                    p.lead.strong { (icon(CARD)) (tr.t("kiosk-done-take-card")) }
                    form method="post" action=(action("another")) {
                        button.button type="submit" { (tr.t("kiosk-another")) }
                    }
                },
            )
        }
    }
}

fn for_whom(station: &str, session: &KioskSession, tr: Tr<'_>) -> (String, Markup) {
    let citizen = session.citizen();
    let first_name = citizen.map(|c| c.first_name.as_str()).unwrap_or_default();
    let title = tr.t("kiosk-for-whom");
    (
        title.clone(),
        html! {
            p.lead { (tr.t_with("kiosk-hello", &[("name", first_name)])) }
            h1 tabindex="-1" { (title) }
            form.choices method="post" action={ "/kiosk/" (station) "/for-whom" } {
                button.button.choice type="submit" name="who" value="self" {
                    (icon(PERSON)) (tr.t("kiosk-for-myself"))
                }
                @for (index, relative) in session.relatives.iter().flatten().enumerate() {
                    button.button.choice type="submit" name="who" value=(index) {
                        (icon(PERSON))
                        (tr.t_with(relation_key(relative.relation), &[("name", &relative.person.name)]))
                    }
                }
            }
            p { (tr.t("kiosk-for-someone-else")) }
            form method="post" action={ "/kiosk/" (station) "/help" } {
                button.button type="submit" { (icon(HELP)) (tr.t("kiosk-ask-clerk")) }
            }
        },
    )
}

fn relation_key(relation: Relation) -> &'static str {
    match relation {
        Relation::Partner => "kiosk-for-partner",
        Relation::ParentOfMinor => "kiosk-for-child",
        Relation::DirectRelative => "kiosk-for-adult-child",
        _ => "kiosk-for-other",
    }
}

fn documents(
    state: &AppState,
    station: &str,
    session: &KioskSession,
    tr: Tr<'_>,
) -> (String, Markup) {
    let title = tr.t("kiosk-choose-document");
    let Some((subject, citizen)) = session.subject.as_ref().zip(session.citizen()) else {
        return (title, html! {});
    };
    let offered: Vec<(&DocumentType, Handling)> = state
        .catalogue
        .types()
        .iter()
        .filter_map(|document| handling(document, subject, citizen, session).map(|h| (document, h)))
        .collect();
    let language = tr.language;
    let families = [
        Family::CivilStatus,
        Family::Population,
        Family::CriminalRecord,
        Family::Counter,
    ];
    (
        title.clone(),
        html! {
            h1 tabindex="-1" { (title) }
            @if subject.relation != Relation::Myself {
                p.lead { (tr.t_with("kiosk-documents-for", &[("name", &subject.person.name)])) }
            }
            form method="post" action={ "/kiosk/" (station) "/document" } {
                @for family in families {
                    @let in_family: Vec<_> = offered.iter().filter(|(d, _)| d.family == family).collect();
                    @if !in_family.is_empty() {
                        fieldset.documents {
                            legend { h2 { (tr.t(family_key(family))) } }
                            @for (document, handling) in in_family {
                                button.button.document type="submit" name="document" value=(document.code.as_str()) {
                                    span.name { (document.names.get(language)) }
                                    span.description { (document.descriptions.get(language)) }
                                    (badge(*handling, tr))
                                }
                            }
                        }
                    }
                }
            }
            (back_button(station, "for-whom", tr))
        },
    )
}

/// How a document would be handled for this citizen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handling {
    Automatic,
    /// Automatic once the citizen confirms with their PIN; a clerk checks it otherwise.
    AutomaticWithPin,
    Clerk,
}

/// `None` when the citizen may not request the document.
fn handling(
    document: &DocumentType,
    subject: &Subject,
    citizen: &Citizen,
    session: &KioskSession,
) -> Option<Handling> {
    let decision = |authentication| {
        decide(&EligibilityQuery {
            document,
            relation: subject.relation,
            authentication,
            subject_is_minor: subject.minor,
        })
    };
    match decision(citizen.authentication) {
        Decision::Automatic => Some(Handling::Automatic),
        Decision::NotAllowed(_) => None,
        Decision::NeedsClerk(_) => {
            let pin_possible = citizen.authentication == AuthStrength::CardRead
                && citizen.can_sign
                && !session.pin_problem.is_some_and(PinProblem::ends_pin);
            if pin_possible && decision(AuthStrength::CardPin) == Decision::Automatic {
                Some(Handling::AutomaticWithPin)
            } else {
                Some(Handling::Clerk)
            }
        }
    }
}

fn badge(handling: Handling, tr: Tr<'_>) -> Markup {
    html! {
        @match handling {
            Handling::Automatic => span.badge.automatic { "✓ " (tr.t("kiosk-badge-automatic")) },
            Handling::AutomaticWithPin => span.badge.automatic { "✓ " (tr.t("kiosk-badge-automatic-pin")) },
            Handling::Clerk => span.badge.clerk { (icon(PERSON)) (tr.t("kiosk-badge-clerk")) },
        }
    }
}

fn family_key(family: Family) -> &'static str {
    match family {
        Family::CivilStatus => "family-civil-status",
        Family::Population => "family-population",
        Family::CriminalRecord => "family-criminal-record",
        Family::Counter => "family-counter",
    }
}

fn purpose_needed(state: &AppState, session: &KioskSession) -> bool {
    session
        .document
        .as_ref()
        .and_then(|code| state.catalogue.get(code))
        .is_some_and(|document| document.purpose_required)
}

fn confirm(
    state: &AppState,
    station: &str,
    session: &KioskSession,
    tr: Tr<'_>,
) -> (String, Markup) {
    let title = tr.t("kiosk-confirm");
    let document = session
        .document
        .as_ref()
        .and_then(|code| state.catalogue.get(code));
    let handling = match (document, session.subject.as_ref(), session.citizen()) {
        (Some(document), Some(subject), Some(citizen)) => {
            handling(document, subject, citizen, session).unwrap_or(Handling::Clerk)
        }
        _ => Handling::Clerk,
    };
    let delivery = match &session.delivery {
        Some(delivery) if delivery.method == DeliveryMethod::Email => tr.t_with(
            "kiosk-confirm-email",
            &[("email", delivery.email.as_deref().unwrap_or_default())],
        ),
        _ => tr.t("kiosk-delivery-print"),
    };
    (
        title.clone(),
        html! {
            h1 tabindex="-1" { (title) }
            dl.summary {
                dt { (tr.t("kiosk-confirm-document")) }
                dd { (document.map(|d| d.names.get(tr.language)).unwrap_or_default()) }
                dt { (tr.t("kiosk-confirm-for")) }
                dd { (session.subject.as_ref().map(|s| s.person.name.as_str()).unwrap_or_default()) }
                @if let Some(purpose) = &session.purpose {
                    dt { (tr.t("kiosk-confirm-purpose")) }
                    dd { (purpose) }
                }
                dt { (tr.t("kiosk-confirm-delivery")) }
                dd { (delivery) }
                dt { (tr.t("kiosk-confirm-next")) }
                dd { (badge(handling, tr)) }
            }
            @if let Some(problem) = session.pin_problem {
                div #pin-problem .message.problem role="alert" { p { (pin_problem_text(problem, tr)) } }
            }
            @if handling == Handling::AutomaticWithPin {
                form.pin method="post" action={ "/kiosk/" (station) "/confirm" } {
                    h2 { label for="pin" { (tr.t("kiosk-pin-title")) } }
                    p id="pin-hint" { (tr.t("kiosk-pin-hint")) }
                    // After a PIN problem the field takes the focus (the script moves it there
                    // instead of the title) and is described by the problem.
                    input #pin.text.pin-code type="password" name="pin" inputmode="numeric" pattern="[0-9]*"
                        minlength="4" maxlength="12" autocomplete="off" required
                        aria-describedby=(if session.pin_problem.is_some() { "pin-problem pin-hint" } else { "pin-hint" })
                        data-focus[session.pin_problem.is_some()];
                    button.button.primary.big type="submit" { "✓ " (tr.t("kiosk-pin-button")) }
                }
                form method="post" action={ "/kiosk/" (station) "/confirm" } {
                    button.button.secondary type="submit" { (icon(PERSON)) (tr.t("kiosk-pin-skip")) }
                }
            } @else {
                form method="post" action={ "/kiosk/" (station) "/confirm" } {
                    button.button.primary.big type="submit" { "✓ " (tr.t("kiosk-confirm-button")) }
                }
            }
            (back_button(station, "delivery", tr))
        },
    )
}

fn pin_problem_text(problem: PinProblem, tr: Tr<'_>) -> String {
    match problem {
        PinProblem::Format => tr.t("kiosk-pin-format"),
        PinProblem::Wrong { tries_left } => tr.t_count("kiosk-pin-wrong", tries_left.into()),
        PinProblem::Blocked => tr.t("kiosk-pin-blocked"),
        PinProblem::Failed => tr.t("kiosk-pin-failed"),
    }
}

fn back_button(station: &str, to: &str, tr: Tr<'_>) -> Markup {
    html! {
        form.back method="post" action={ "/kiosk/" (station) "/back" } {
            input type="hidden" name="to" value=(to);
            button.button.secondary type="submit" { "← " (tr.t("kiosk-back")) }
        }
    }
}

pub fn language_name(language: Language) -> &'static str {
    match language {
        Language::Nl => "Nederlands",
        Language::Fr => "Français",
        Language::De => "Deutsch",
        Language::En => "English",
    }
}

fn icon(path: &str) -> Markup {
    html! {
        svg.icon aria-hidden="true" focusable="false" viewBox="0 0 24 24" width="1.2em" height="1.2em" {
            path d=(path) fill="currentColor" {}
        }
    }
}

const BUS: &str = "M4 16c0 .9.4 1.7 1 2.2V20a1 1 0 0 0 1 1h1a1 1 0 0 0 1-1v-1h8v1a1 1 0 0 0 1 1h1a1 1 0 0 0 1-1v-1.8c.6-.5 1-1.3 1-2.2V6c0-3.5-3.6-4-8-4s-8 .5-8 4v10zm3.5 1a1.5 1.5 0 1 1 0-3 1.5 1.5 0 0 1 0 3zm9 0a1.5 1.5 0 1 1 0-3 1.5 1.5 0 0 1 0 3zM18 11H6V6h12v5z";
const HELP: &str = "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm1 17h-2v-2h2v2zm2.1-7.8-.9.9c-.7.7-1.2 1.3-1.2 2.9h-2v-.5c0-1.1.5-2.1 1.2-2.8l1.2-1.3c.4-.4.6-.9.6-1.4a2 2 0 0 0-4 0H8a4 4 0 0 1 8 0c0 .9-.4 1.7-.9 2.2z";
const PERSON: &str =
    "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm0 2c-2.7 0-8 1.3-8 4v2h16v-2c0-2.7-5.3-4-8-4z";
const PRINTER: &str = "M19 8H5a3 3 0 0 0-3 3v6h4v4h12v-4h4v-6a3 3 0 0 0-3-3zm-3 11H8v-5h8v5zm3-7a1 1 0 1 1 0-2 1 1 0 0 1 0 2zm-1-9H6v4h12V3z";
const MAIL: &str = "M20 4H4a2 2 0 0 0-2 2v12a2 2 0 0 0 2 2h16a2 2 0 0 0 2-2V6a2 2 0 0 0-2-2zm0 4-8 5-8-5V6l8 5 8-5v2z";
const CARD: &str = "M20 4H4a2 2 0 0 0-2 2v12a2 2 0 0 0 2 2h16a2 2 0 0 0 2-2V6a2 2 0 0 0-2-2zm0 14H4v-6h16v6zm0-10H4V6h16v2z";

/// A card going into a reader, drawn for the "insert your card" screen.
const CARD_PICTURE: &str = r##"<svg viewBox="0 0 240 160" width="240" height="160"><rect x="20" y="100" width="200" height="50" rx="8" fill="#2b2b2b"/><rect x="60" y="96" width="120" height="8" rx="3" fill="#555"/><g><rect x="70" y="10" width="100" height="88" rx="8" fill="#f4d35e" stroke="#1a1a1a" stroke-width="3"/><rect x="84" y="58" width="24" height="20" rx="3" fill="#b08d2c"/><rect x="84" y="24" width="70" height="8" fill="#1a1a1a" opacity=".5"/></g><path d="M200 30 l0 40 m-10 -10 l10 10 l10 -10" stroke="#0b4f9c" stroke-width="6" fill="none" stroke-linecap="round"/></svg>"##;
