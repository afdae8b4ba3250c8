//! The staff console in-process: sign-in with the session cookie, serving a citizen by typed
//! national number or by the card in the desk reader, and the checks on what is typed.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use busloket_node::app;
use busloket_node::events::NodeEvent;
use busloket_sync::terms::AuthStrength;
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::demo_state;

struct Page {
    status: StatusCode,
    location: Option<String>,
    cookie: Option<String>,
    text: String,
}

async fn send(app: &Router, method: &str, uri: &str, cookie: Option<&str>, form: &str) -> Page {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    if method == "POST" {
        request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(form.to_owned())).unwrap())
        .await
        .unwrap();
    let header_text = |name| {
        response
            .headers()
            .get(name)
            .map(|v: &header::HeaderValue| v.to_str().unwrap().to_owned())
    };
    let location = header_text(header::LOCATION);
    let cookie = header_text(header::SET_COOKIE).map(|c| c.split(';').next().unwrap().to_owned());
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Page {
        status,
        location,
        cookie,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn signed_in(app: &Router) -> String {
    let failed = send(
        app,
        "POST",
        "/staff/login",
        None,
        "username=demo&password=wrong",
    )
    .await;
    assert!(failed.cookie.is_none());
    assert!(failed.text.contains("role=\"alert\""));
    let page = send(
        app,
        "POST",
        "/staff/login",
        None,
        "username=demo&password=bus-demo-2026",
    )
    .await;
    assert_eq!(page.location.as_deref(), Some("/staff"));
    page.cookie.expect("a session cookie")
}

#[tokio::test]
async fn pages_need_a_signed_in_clerk() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(demo_state(dir.path()));
    for uri in ["/staff", "/staff/serve"] {
        let page = send(&app, "GET", uri, None, "").await;
        assert_eq!(page.location.as_deref(), Some("/staff/login"), "{uri}");
    }
    let forged = send(&app, "GET", "/staff", Some("busloket_staff=forged"), "").await;
    assert_eq!(forged.location.as_deref(), Some("/staff/login"));
}

#[tokio::test]
async fn serve_a_citizen_by_typed_number_and_by_desk_card() {
    let dir = tempfile::tempdir().unwrap();
    let state = demo_state(dir.path());
    let app = app(state.clone());
    let cookie = signed_in(&app).await;

    // A typing slip in the national number: the form comes back with the message, nothing stored.
    let typed = "requester_number=44.02.29-048.21&requester_name=H%C3%A9l%C3%A8ne+Verschueren&relation=self&document=life-certificate&language=fr&delivery=print-here";
    let page = send(&app, "POST", "/staff/serve", Some(&cookie), typed).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text
            .contains("Het rijksregisternummer van de aanvrager is niet geldig."),
        "{}",
        page.text
    );
    assert!(
        page.text.contains("value=\"Hélène Verschueren\""),
        "what was typed is kept"
    );
    assert_eq!(state.store.count(), 0);

    let page = send(
        &app,
        "POST",
        "/staff/serve",
        Some(&cookie),
        &typed.replace("048.21", "048.20"),
    )
    .await;
    let location = page.location.expect("a redirect to the new request");
    assert!(location.starts_with("/staff/requests/"));
    assert_eq!(state.store.count(), 1);
    let request = send(&app, "GET", &location, Some(&cookie), "").await;
    assert!(
        request.text.contains("44.02.29-048.20"),
        "staff see the full number on the request page"
    );
    assert!(request.text.contains("balie in de bus"));

    // The card in the desk reader fills the requester.
    let readers = state.demo.as_ref().unwrap().readers.clone().unwrap();
    let empty = send(&app, "POST", "/staff/serve/read-card", Some(&cookie), "").await;
    assert!(
        empty
            .text
            .contains("In de balielezer kon geen kaart gelezen worden.")
    );
    readers.insert("Demo Desk Reader", "72110514335").unwrap();
    let filled = send(&app, "POST", "/staff/serve/read-card", Some(&cookie), "").await;
    assert!(
        filled.text.contains("72.11.05-143.35") && filled.text.contains("Julien"),
        "{}",
        filled.text
    );
    assert!(filled.text.contains("name=\"from_card\" value=\"true\""));

    let queue = send(&app, "GET", "/staff", Some(&cookie), "").await;
    assert!(queue.text.contains("Attest van leven"), "{}", queue.text);
    assert!(
        !queue.text.contains("Verschueren"),
        "the queue shows no names"
    );
    let signed_out = send(&app, "POST", "/staff/logout", Some(&cookie), "").await;
    assert_eq!(signed_out.location.as_deref(), Some("/staff/login"));
    let after = send(&app, "GET", "/staff", Some(&cookie), "").await;
    assert_eq!(after.location.as_deref(), Some("/staff/login"));
}

/// Serves a citizen with the desk form; the authentication strength the stored request got, and
/// the requester's postcode it keeps.
async fn served_authentication(
    app: &Router,
    state: &busloket_node::state::AppState,
    cookie: &str,
    form: &str,
) -> (AuthStrength, Option<u16>) {
    let page = send(app, "POST", "/staff/serve", Some(cookie), form).await;
    let location = page.location.expect("a redirect to the new request");
    let id = location
        .trim_start_matches("/staff/requests/")
        .parse()
        .unwrap();
    let view = state.store.load(id).unwrap().unwrap().view().unwrap();
    (
        view.fields.authentication,
        view.fields.requester_postcode.map(|code| code.number()),
    )
}

#[tokio::test]
async fn the_desk_card_shows_its_photo_and_counts_only_while_it_is_in_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let state = demo_state(dir.path());
    state.start_background_tasks();
    let app = app(state.clone());
    let cookie = signed_in(&app).await;
    let readers = state.demo.as_ref().unwrap().readers.clone().unwrap();
    readers.insert("Demo Desk Reader", "72110514335").unwrap();
    let filled = send(&app, "POST", "/staff/serve/read-card", Some(&cookie), "").await;
    assert!(
        filled.text.contains("src=\"/staff/serve/photo\""),
        "{}",
        filled.text
    );
    let photo = send(&app, "GET", "/staff/serve/photo", Some(&cookie), "").await;
    assert_eq!(photo.status, StatusCode::OK);
    assert!(
        photo.text.starts_with("<svg"),
        "a demo card's picture is the placeholder"
    );
    let no_session = send(&app, "GET", "/staff/serve/photo", None, "").await;
    assert_eq!(no_session.location.as_deref(), Some("/staff/login"));

    let from_card = "requester_number=72.11.05-143.35&requester_name=Julien+Dubois&from_card=true&relation=self&document=life-certificate&language=fr&delivery=print-here";
    assert_eq!(
        served_authentication(&app, &state, &cookie, from_card).await,
        (AuthStrength::CardRead, Some(7700)),
        "the card's postcode (Mouscron) goes with the request"
    );

    // Pulled: the photo is gone, and a form that still claims the card counts as typed in.
    let mut events = state.events.subscribe();
    readers.pull("Demo Desk Reader").unwrap();
    // The node announces the desk reader's change once it has forgotten the card.
    while !matches!(
        tokio::time::timeout(std::time::Duration::from_secs(5), events.recv())
            .await
            .expect("the node saw the card leave"),
        Ok(NodeEvent::Device)
    ) {}
    let photo = send(&app, "GET", "/staff/serve/photo", Some(&cookie), "").await;
    assert_eq!(photo.status, StatusCode::NOT_FOUND);
    assert_eq!(
        served_authentication(&app, &state, &cookie, from_card).await,
        (AuthStrength::Declared, None)
    );
    state.shutdown.cancel();
}

#[tokio::test]
async fn a_clerk_signs_in_with_their_own_eid_and_pin() {
    let dir = tempfile::tempdir().unwrap();
    let state = demo_state(dir.path());
    let app = app(state.clone());
    let readers = state.demo.as_ref().unwrap().readers.clone().unwrap();
    let sign_in = |pin: &'static str| send(&app, "POST", "/staff/login/eid", None, pin);

    let page = sign_in("pin=1234").await;
    assert!(
        page.text.contains("kon geen kaart gelezen worden"),
        "{}",
        page.text
    );

    // A citizen's card is not a staff account, whatever its PIN.
    readers.insert("Demo Desk Reader", "78031203701").unwrap();
    let page = sign_in("pin=1234").await;
    assert!(page.text.contains("niet gekoppeld"), "{}", page.text);
    assert!(page.cookie.is_none());

    readers.insert("Demo Desk Reader", "86041708674").unwrap();
    let page = sign_in("pin=12").await;
    assert!(page.text.contains("4 tot 12 cijfers"), "{}", page.text);
    let page = sign_in("pin=4321").await;
    assert!(page.text.contains("Nog 2 pogingen"), "{}", page.text);
    assert!(page.cookie.is_none() && !page.text.contains("4321"));

    let page = sign_in("pin=1234").await;
    assert_eq!(page.location.as_deref(), Some("/staff"));
    let cookie = page.cookie.expect("a session cookie");
    let console = send(&app, "GET", "/staff", Some(&cookie), "").await;
    assert_eq!(console.status, StatusCode::OK);
    assert!(console.text.contains("Demo Medewerker"), "{}", console.text);
}
