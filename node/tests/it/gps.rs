//! The staff console's GPS line: the simulated receiver's position, and the reason when gpsd
//! cannot be reached.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use busloket_hardware::{GpsLink, GpsdSource};
use busloket_node::app;
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::demo_state;

/// The staff dashboard's HTML, signed in as the demo clerk.
async fn dashboard(app: &Router) -> String {
    let sign_in = Request::post("/staff/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("username=demo&password=bus-demo-2026"))
        .unwrap();
    let signed_in = app.clone().oneshot(sign_in).await.unwrap();
    let cookie = signed_in.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = Request::get("/staff")
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(page).await.unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn the_devices_panel_shows_the_simulated_position_and_no_link_detail() {
    let dir = tempfile::tempdir().unwrap();
    let page = dashboard(&app(demo_state(dir.path()))).await;
    assert!(page.contains("50.82790, 3.26490"), "{page}");
    assert!(
        !page.contains("simulated receiver"),
        "a healthy link says nothing"
    );
}

#[tokio::test]
async fn the_devices_panel_says_why_gpsd_gives_no_fix() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = demo_state(dir.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let source = GpsdSource::start(format!("127.0.0.1:{port}")).unwrap();
    let mut health = source.subscribe_health();
    let unreachable = tokio::time::timeout(
        Duration::from_secs(10),
        health.wait_for(|health| matches!(health.link, GpsLink::Unreachable { .. })),
    )
    .await
    .is_ok();
    assert!(unreachable, "nothing listens on port {port}");
    state.gps = Arc::new(source);

    let page = dashboard(&app(state)).await;
    assert!(page.contains("geen positie"), "{page}");
    assert!(
        page.contains(&format!(
            "gpsd at 127.0.0.1:{port} not reachable: connection refused"
        )),
        "{page}"
    );
}
