//! Where the bus is, through the node's API and console: the stop a request records and how it
//! was known (configured, from the GPS with the hub's schedule, set by hand by staff).

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use busloket_hardware::{FixMode, GpsFix, GpsState};
use busloket_node::app;
use busloket_node::state::AppState;
use chrono::{TimeDelta, Utc};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::{call, demo_state, request_body, sign_in};

/// The demo route's first stop, where the demo's simulated receiver stands.
const SCHEDULE: &str = "[[stop]]\nid = \"demo-markt\"\nname = \"Grote Markt\"\nlatitude = 50.8279\nlongitude = 3.2649\nradius_m = 60\n\n[[stop]]\nid = \"demo-station\"\nname = \"Station\"\nlatitude = 50.8247\nlongitude = 3.2640\nradius_m = 50\n";

/// Makes a request and returns its origin as the API shows it.
async fn request_origin(app: &Router, token: &str) -> Value {
    let body = request_body("birth-extract", "78.03.12-037.01");
    let created = call(app, "POST", "/api/v1/requests", Some(token), Some(&body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.body["id"].as_str().expect("an id").to_owned();
    let shown = call(
        app,
        "GET",
        &format!("/api/v1/requests/{id}"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text);
    shown.body["origin"].clone()
}

/// A staff console form, posted with the API token.
async fn staff_form(app: &Router, token: &str, uri: &str, fields: &str) -> (StatusCode, String) {
    let request = Request::post(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(fields.to_owned()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn dashboard(app: &Router, token: &str) -> String {
    let request = Request::get("/staff")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Three fixes at the Markt, standing, the system clock `skew_s` ahead of GPS time.
fn stand_at_markt(state: &AppState, skew_s: i64) {
    let now = Utc::now();
    for second in 0..3 {
        let at = now + TimeDelta::seconds(second);
        state.position.observe(
            GpsState::Fix(GpsFix {
                latitude: 50.8279,
                longitude: 3.2649,
                speed_mps: Some(0.0),
                mode: FixMode::ThreeD,
                at,
                received_at: at + TimeDelta::seconds(skew_s),
            }),
            at,
        );
    }
}

#[tokio::test]
async fn without_a_schedule_requests_get_the_configured_stop() {
    let dir = tempfile::tempdir().unwrap();
    let state = demo_state(dir.path());
    let app = app(state.clone());
    let token = sign_in(&app).await;
    let origin = request_origin(&app, &token).await;
    assert_eq!(origin["stop"], "demo-markt");
    assert_eq!(origin["whereabouts"]["stop_source"], "configured");
    let page = dashboard(&app, &token).await;
    assert!(page.contains("vast ingesteld in de configuratie"), "{page}");
    assert!(
        page.contains("De hub heeft nog geen haltelijst gestuurd."),
        "{page}"
    );
}

#[tokio::test]
async fn with_the_hubs_schedule_the_gps_names_the_stop_and_staff_can_overrule_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = demo_state(dir.path());
    state.position.take_schedule_file(SCHEDULE.as_bytes());
    stand_at_markt(&state, 0);
    let app = app(state.clone());
    let token = sign_in(&app).await;

    let origin = request_origin(&app, &token).await;
    assert_eq!(origin["stop"], "demo-markt");
    assert_eq!(origin["whereabouts"]["stop_source"], "gps");
    assert!((origin["whereabouts"]["fix"]["latitude"].as_f64().unwrap() - 50.8279).abs() < 1e-9);
    assert!(
        origin["whereabouts"]["clock_skew_ms"]
            .as_i64()
            .unwrap()
            .abs()
            < 1000
    );
    let page = dashboard(&app, &token).await;
    assert!(page.contains("Grote Markt"), "{page}");
    assert!(page.contains("volgens de GPS"), "{page}");
    // The ticket names the stop as the citizen knows it.
    let printer = state
        .demo
        .as_ref()
        .unwrap()
        .receipt_printer
        .as_ref()
        .unwrap();
    let ticket = printer.last_text().expect("a ticket");
    assert!(ticket.contains("Grote Markt"), "{ticket}");

    // The GPS is wrong: staff say the bus stands at the station.
    let (status, _) = staff_form(&app, &token, "/staff/stop", "stop=demo-station").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let origin = request_origin(&app, &token).await;
    assert_eq!(origin["stop"], "demo-station");
    assert_eq!(origin["whereabouts"]["stop_source"], "staff");
    let page = dashboard(&app, &token).await;
    assert!(page.contains("met de hand ingesteld door demo"), "{page}");
    assert!(page.contains("Terug naar de GPS"), "{page}");

    // At no stop, by hand.
    staff_form(&app, &token, "/staff/stop", "stop=none").await;
    let origin = request_origin(&app, &token).await;
    assert_eq!(origin["stop"], Value::Null);
    assert_eq!(origin["whereabouts"]["stop_source"], Value::Null);

    // A stop the schedule does not have is refused; clearing goes back to the GPS.
    let (status, text) = staff_form(&app, &token, "/staff/stop", "stop=elsewhere").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(text.contains("no stop `elsewhere`"), "{text}");
    staff_form(&app, &token, "/staff/stop/clear", "").await;
    let position = call(&app, "GET", "/api/v1/position", Some(&token), None).await;
    assert_eq!(position.body["stop"], "demo-markt", "{}", position.text);
    assert_eq!(position.body["stop_source"], "gps");
    assert_eq!(position.body["manual"], Value::Null);
}

#[tokio::test]
async fn a_clock_far_from_gps_time_is_shown_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let state = demo_state(dir.path());
    state.position.take_schedule_file(SCHEDULE.as_bytes());
    stand_at_markt(&state, 300);
    let app = app(state.clone());
    let token = sign_in(&app).await;
    let origin = request_origin(&app, &token).await;
    assert_eq!(origin["whereabouts"]["clock_skew_ms"], 300_000);
    let page = dashboard(&app, &token).await;
    assert!(
        page.contains("De klok van de bus wijkt 300 seconden af"),
        "{page}"
    );
}
