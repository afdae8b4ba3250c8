//! The kiosk driven by card events, in-process: insert a card, walk the steps, submit; pulling the
//! card clears everything of the citizen.

use std::time::Duration;

use axum::http::StatusCode;
use busloket_node::app;
use busloket_node::kiosk::{Step, step};
use busloket_node::state::AppState;

use crate::{call, demo_state, form};

const PARENT: &str = "78031203701";

async fn wait_for_step(state: &AppState, station: &str, wanted: Step) {
    let mut events = state.events.subscribe();
    loop {
        let session = state.kiosks.get(station).unwrap();
        if step(&session, |_| false) == wanted {
            return;
        }
        tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the kiosk did not reach {wanted:?}, it is at {:?}",
                    step(&session, |_| false)
                )
            })
            .unwrap();
    }
}

#[tokio::test]
async fn walk_the_kiosk_and_pull_the_card() {
    let dir = tempfile::tempdir().unwrap();
    let state = demo_state(dir.path());
    state.start_background_tasks();
    let app = app(state.clone());
    let readers = state.demo.as_ref().unwrap().readers.clone().unwrap();

    assert_eq!(
        form(&app, "/kiosk/tablet-1/language", "language=fr")
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let page = call(&app, "GET", "/kiosk/tablet-1", None, None).await;
    assert!(page.text.contains("lang=\"fr\""), "{}", page.text);
    readers.insert("Demo Reader 1", PARENT).unwrap();
    wait_for_step(&state, "tablet-1", Step::ForWhom).await;
    let page = call(&app, "GET", "/kiosk/tablet-1", None, None).await;
    assert!(page.text.contains("Tom"), "the greeting names the citizen");
    assert!(
        page.text.contains("Lotte Janssens"),
        "a minor child is offered"
    );

    form(&app, "/kiosk/tablet-1/for-whom", "who=self").await;
    let page = call(&app, "GET", "/kiosk/tablet-1", None, None).await;
    assert!(page.text.contains("value=\"household-composition\""));
    assert!(
        !page.text.contains("value=\"death-extract\""),
        "documents not allowed are not offered"
    );
    form(
        &app,
        "/kiosk/tablet-1/document",
        "document=criminal-record-595",
    )
    .await;
    assert_eq!(
        step(&state.kiosks.get("tablet-1").unwrap(), |_| true),
        Step::Purpose
    );
    form(&app, "/kiosk/tablet-1/purpose", "purpose=").await;
    let page = call(&app, "GET", "/kiosk/tablet-1", None, None).await;
    assert!(
        page.text.contains("role=\"alert\""),
        "an empty purpose is refused with a message"
    );
    form(
        &app,
        "/kiosk/tablet-1/purpose",
        "purpose=b%C3%A9n%C3%A9volat+%C3%A0+l%27%C3%A9cole",
    )
    .await;
    form(&app, "/kiosk/tablet-1/delivery", "method=email&email=nope").await;
    assert!(state.kiosks.get("tablet-1").unwrap().delivery.is_none());
    form(&app, "/kiosk/tablet-1/delivery", "method=print-here").await;
    form(&app, "/kiosk/tablet-1/confirm", "").await;
    let session = state.kiosks.get("tablet-1").unwrap();
    let done = session.done.clone().expect("the request was submitted");
    assert!(
        !done.automatic,
        "without a PIN a criminal-record extract goes to a clerk"
    );
    assert!(done.ticket_printed);
    assert_eq!(state.store.count(), 1);

    readers.pull("Demo Reader 1").unwrap();
    wait_for_step(&state, "tablet-1", Step::Language).await;
    let session = state.kiosks.get("tablet-1").unwrap();
    assert!(session.citizen().is_none() && session.subject.is_none() && session.purpose.is_none());
    let page = call(&app, "GET", "/kiosk/tablet-1", None, None).await;
    assert!(!page.text.contains("Tom") && !page.text.contains("Janssens"));
    assert_eq!(state.store.count(), 1, "the request stays stored");
    state.shutdown.cancel();
}

#[tokio::test]
async fn help_shows_at_the_staff_console_and_unknown_stations_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = demo_state(dir.path());
    let app = app(state.clone());
    form(&app, "/kiosk/tablet-2/help", "").await;
    assert_eq!(state.help_calls.list().len(), 1);
    let missing = call(&app, "GET", "/kiosk/no-such-tablet", None, None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["error"]["code"], "unknown-station");
}

#[tokio::test(start_paused = true)]
async fn an_untouched_kiosk_forgets_the_citizen() {
    let dir = tempfile::tempdir().unwrap();
    let state = demo_state(dir.path());
    state.start_background_tasks();
    let app = app(state.clone());
    form(&app, "/kiosk/tablet-1/language", "language=de").await;
    assert_eq!(
        step(&state.kiosks.get("tablet-1").unwrap(), |_| false),
        Step::InsertCard
    );
    // The page warns after the idle time; the node ends the session a minute later.
    tokio::time::advance(state.config.kiosk_idle + Duration::from_secs(30)).await;
    assert_eq!(
        step(&state.kiosks.get("tablet-1").unwrap(), |_| false),
        Step::InsertCard
    );
    tokio::time::advance(Duration::from_secs(40)).await;
    wait_for_step(&state, "tablet-1", Step::Language).await;
    assert_eq!(state.kiosks.get("tablet-1").unwrap().language, None);
    state.shutdown.cancel();
}

/// Walks a fresh session of the parent at tablet 1 to the confirm step for a criminal-record
/// extract, which is automatic only with the PIN.
async fn to_confirm_criminal_record(app: &axum::Router, state: &AppState) {
    let readers = state.demo.as_ref().unwrap().readers.clone().unwrap();
    form(app, "/kiosk/tablet-1/language", "language=nl").await;
    readers.insert("Demo Reader 1", PARENT).unwrap();
    wait_for_step(state, "tablet-1", Step::ForWhom).await;
    form(app, "/kiosk/tablet-1/for-whom", "who=self").await;
    let page = call(app, "GET", "/kiosk/tablet-1", None, None).await;
    assert!(
        page.text.contains("Meteen klaar met uw pincode"),
        "documents that need the PIN say so"
    );
    form(
        app,
        "/kiosk/tablet-1/document",
        "document=criminal-record-595",
    )
    .await;
    form(app, "/kiosk/tablet-1/purpose", "purpose=vrijwilligerswerk").await;
    form(app, "/kiosk/tablet-1/delivery", "method=print-here").await;
}

#[tokio::test]
async fn the_pin_makes_a_request_automatic_and_wrong_pins_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let state = demo_state(dir.path());
    state.start_background_tasks();
    let app = app(state.clone());
    to_confirm_criminal_record(&app, &state).await;
    let page = call(&app, "GET", "/kiosk/tablet-1", None, None).await;
    assert!(
        page.text.contains("type=\"password\" name=\"pin\""),
        "{}",
        page.text
    );

    form(&app, "/kiosk/tablet-1/confirm", "pin=12a4").await;
    let page = call(&app, "GET", "/kiosk/tablet-1", None, None).await;
    assert!(
        page.text.contains("4 tot 12 cijfers"),
        "a malformed PIN is not sent to the card"
    );
    form(&app, "/kiosk/tablet-1/confirm", "pin=9999").await;
    let page = call(&app, "GET", "/kiosk/tablet-1", None, None).await;
    assert!(page.text.contains("nog 2 keer"), "{}", page.text);
    assert!(!page.text.contains("9999"), "the PIN is never echoed");
    assert_eq!(state.store.count(), 0, "a wrong PIN stores nothing");

    form(&app, "/kiosk/tablet-1/confirm", "pin=1234").await;
    let session = state.kiosks.get("tablet-1").unwrap();
    let done = session.done.clone().expect("the request was submitted");
    assert!(done.automatic, "with the PIN the extract is automatic");
    let summaries = state
        .store
        .summaries_by_day(chrono::Utc::now().date_naive())
        .unwrap();
    let view = state
        .store
        .load(summaries[0].id)
        .unwrap()
        .unwrap()
        .view()
        .unwrap();
    assert_eq!(
        view.fields.authentication,
        busloket_sync::terms::AuthStrength::CardPin
    );
    // A demo card has no keys: its "signature" is no evidence.
    assert_eq!(view.fields.evidence, None);
    // Of the card's address, the request keeps the postcode only.
    assert_eq!(
        view.fields.requester_postcode.map(|code| code.number()),
        Some(8500)
    );
    state.shutdown.cancel();
}

#[tokio::test]
async fn a_blocked_pin_leaves_the_way_through_the_clerk() {
    let dir = tempfile::tempdir().unwrap();
    let state = demo_state(dir.path());
    state.start_background_tasks();
    let app = app(state.clone());
    to_confirm_criminal_record(&app, &state).await;
    for pin in ["1111", "2222"] {
        form(&app, "/kiosk/tablet-1/confirm", &format!("pin={pin}")).await;
    }
    let page = call(&app, "GET", "/kiosk/tablet-1", None, None).await;
    assert!(page.text.contains("nog één keer"), "{}", page.text);
    form(&app, "/kiosk/tablet-1/confirm", "pin=3333").await;
    let page = call(&app, "GET", "/kiosk/tablet-1", None, None).await;
    assert!(page.text.contains("geblokkeerd"), "{}", page.text);
    assert!(
        !page.text.contains("name=\"pin\""),
        "a blocked PIN is not asked again"
    );

    form(&app, "/kiosk/tablet-1/confirm", "").await;
    let done = state.kiosks.get("tablet-1").unwrap().done.clone().unwrap();
    assert!(
        !done.automatic,
        "without the PIN a clerk checks the extract"
    );
    assert_eq!(state.store.count(), 1);
    state.shutdown.cancel();
}

#[tokio::test]
async fn a_kids_card_is_never_asked_for_a_pin() {
    let dir = tempfile::tempdir().unwrap();
    let state = demo_state(dir.path());
    state.start_background_tasks();
    let app = app(state.clone());
    let readers = state.demo.as_ref().unwrap().readers.clone().unwrap();
    form(&app, "/kiosk/tablet-1/language", "language=en").await;
    readers.insert("Demo Reader 1", "17100321158").unwrap();
    wait_for_step(&state, "tablet-1", Step::ForWhom).await;
    form(&app, "/kiosk/tablet-1/for-whom", "who=self").await;
    let page = call(&app, "GET", "/kiosk/tablet-1", None, None).await;
    assert!(
        page.text.contains("value=\"household-composition\""),
        "{}",
        page.text
    );
    assert!(!page.text.contains("with your PIN code"), "{}", page.text);
    state.shutdown.cancel();
}

/// The first frame of a station's event stream, if one comes within half a second.
async fn first_event(app: &axum::Router, uri: &str) -> Option<String> {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let request = axum::http::Request::get(uri)
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let frame = tokio::time::timeout(Duration::from_millis(500), body.frame())
        .await
        .ok()??
        .unwrap();
    Some(String::from_utf8_lossy(frame.data_ref().unwrap()).into_owned())
}

#[tokio::test]
async fn a_page_drawn_before_a_change_hears_of_it_when_it_starts_listening() {
    let dir = tempfile::tempdir().unwrap();
    let state = demo_state(dir.path());
    let app = app(state.clone());
    let page = call(&app, "GET", "/kiosk/tablet-1", None, None).await;
    assert!(
        page.text.contains("/kiosk/tablet-1/events?seen=0"),
        "{}",
        page.text
    );
    // The session changes (say, a card read ends) while the page reloads…
    form(&app, "/kiosk/tablet-1/language", "language=nl").await;
    // …so the page drawn at revision 0 is told at once; a page drawn after the change is not.
    let event = first_event(&app, "/kiosk/tablet-1/events?seen=0").await;
    assert!(
        event
            .as_deref()
            .is_some_and(|e| e.contains("event: changed")),
        "{event:?}"
    );
    let revision = state.kiosks.get("tablet-1").unwrap().revision;
    assert_eq!(
        first_event(&app, &format!("/kiosk/tablet-1/events?seen={revision}")).await,
        None
    );
}
