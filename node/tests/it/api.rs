//! The JSON API: good requests are stored and logged; bad input is refused with a stable code and
//! stores nothing.

use axum::http::StatusCode;
use busloket_node::app;
use busloket_sync::store::Store;

use crate::{call, demo_state, request_body, sign_in};

fn stored(store: &Store) -> usize {
    store.count()
}

#[tokio::test]
async fn catalogue_and_health_need_no_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(demo_state(dir.path()));
    assert_eq!(
        call(&app, "GET", "/healthz", None, None).await.status,
        StatusCode::OK
    );
    let catalogue = call(&app, "GET", "/api/v1/catalogue", None, None).await;
    assert_eq!(catalogue.status, StatusCode::OK);
    let documents = catalogue.body["documents"].as_array().unwrap();
    assert!(documents.len() >= 28);
    assert!(
        documents
            .iter()
            .any(|d| d["code"] == "criminal-record-596.2")
    );
}

#[tokio::test]
async fn a_request_is_stored_read_back_and_its_read_logged() {
    let dir = tempfile::tempdir().unwrap();
    let state = demo_state(dir.path());
    let app = app(state.clone());
    let token = sign_in(&app).await;
    let created = call(
        &app,
        "POST",
        "/api/v1/requests",
        Some(&token),
        Some(&request_body("birth-extract", "78.03.12-037.01")),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["decision"]["outcome"], "automatic");
    assert_eq!(created.body["queue_number"], 1);
    assert_eq!(created.body["ticket_printed"], true);
    let id = created.body["id"].as_str().unwrap();

    let log_before = state.store.access_log().verify().unwrap();
    let view = call(
        &app,
        "GET",
        &format!("/api/v1/requests/{id}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(view.status, StatusCode::OK);
    assert_eq!(view.body["document"], "birth-extract");
    assert_eq!(view.body["status"], "ready");
    let kinds: Vec<&str> = view.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["submitted", "eligibility-decided", "receipt-printed"]
    );
    assert_eq!(
        state.store.access_log().verify().unwrap(),
        log_before + 1,
        "the read was not logged"
    );

    let today = call(&app, "GET", "/api/v1/requests", Some(&token), None).await;
    assert_eq!(today.body.as_array().unwrap().len(), 1);
    assert!(
        !today.text.contains("Janssens") && !today.text.contains("78.03"),
        "the list carries no citizen data: {}",
        today.text
    );
    let other_day = call(
        &app,
        "GET",
        "/api/v1/requests?day=2020-01-01",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(other_day.body.as_array().unwrap().len(), 0);

    let cancelled = call(
        &app,
        "POST",
        &format!("/api/v1/requests/{id}/cancel"),
        Some(&token),
        Some(r#"{"reason":"wrong document"}"#),
    )
    .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    assert_eq!(cancelled.body["status"], "cancelled");
    let again = call(
        &app,
        "POST",
        &format!("/api/v1/requests/{id}/cancel"),
        Some(&token),
        Some(r#"{"reason":"again"}"#),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.body["error"]["code"], "already-finished");
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let state = demo_state(dir.path());
    let app = app(state.clone());
    let token = sign_in(&app).await;
    let cases: Vec<(Option<&str>, String, StatusCode, &str)> = vec![
        (
            None,
            request_body("birth-extract", "78031203701"),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            Some(&token),
            "{not json".into(),
            StatusCode::BAD_REQUEST,
            "bad-json",
        ),
        (
            Some(&token),
            r#"{"document":"birth-extract"}"#.into(),
            StatusCode::BAD_REQUEST,
            "bad-json",
        ),
        (
            Some(&token),
            request_body("birth-extract", "78031203702"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad-national-number",
        ),
        (
            Some(&token),
            request_body("birth-extract", "7803120370"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad-national-number",
        ),
        (
            Some(&token),
            request_body("no-such-document", "78031203701"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown-document",
        ),
        (
            Some(&token),
            request_body("Birth Extract", "78031203701"),
            StatusCode::BAD_REQUEST,
            "bad-json",
        ),
        (
            Some(&token),
            request_body("criminal-record-595", "78031203701"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "purpose-required",
        ),
        (
            Some(&token),
            request_body("death-extract", "78031203701"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not-allowed",
        ),
        (
            Some(&token),
            request_body("birth-extract", "78031203701").replace(
                r#""method":"print-here""#,
                r#""method":"email","email":"not an address""#,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad-email",
        ),
        (
            Some(&token),
            request_body("birth-extract", "78031203701").replace(
                r#""authentication":"card-read""#,
                r#""authentication":"card-pin""#,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad-authentication",
        ),
        (
            Some(&token),
            request_body("birth-extract", "78031203701")
                .replace(r#""station":"desk""#, r#""station":"tablet-9""#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown-station",
        ),
    ];
    for (token, body, status, code) in cases {
        let answer = call(&app, "POST", "/api/v1/requests", token, Some(&body)).await;
        assert_eq!(answer.status, status, "{body} → {}", answer.text);
        assert_eq!(
            answer.body["error"]["code"], code,
            "{body} → {}",
            answer.text
        );
        assert!(
            answer.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert!(answer.body["error"]["request_id"].as_str().is_some());
    }
    assert_eq!(stored(&state.store), 0);
    let bad_id = call(
        &app,
        "GET",
        "/api/v1/requests/not-an-id",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(bad_id.body["error"]["code"], "bad-request-id");
    let bad_day = call(
        &app,
        "GET",
        "/api/v1/requests?day=23-11-2026",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(bad_day.body["error"]["code"], "bad-day");
    let wrong_password = call(
        &app,
        "POST",
        "/api/v1/session",
        None,
        Some(r#"{"username":"demo","password":"nope"}"#),
    )
    .await;
    assert_eq!(wrong_password.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_printer_out_of_paper_keeps_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let state = demo_state(dir.path());
    let app = app(state.clone());
    let token = sign_in(&app).await;
    let printer = state
        .demo
        .as_ref()
        .unwrap()
        .receipt_printer
        .clone()
        .unwrap();
    printer.set_paper(false);
    let created = call(
        &app,
        "POST",
        "/api/v1/requests",
        Some(&token),
        Some(&request_body("birth-extract", "78031203701")),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["ticket_printed"], false);
    assert!(
        created.body["ticket_error"]
            .as_str()
            .unwrap()
            .contains("paper")
    );
    let id = created.body["id"].as_str().unwrap();
    let devices = call(&app, "GET", "/api/v1/devices", Some(&token), None).await;
    assert_eq!(
        devices.body["receipt_printer"]["status"]["state"],
        "out-of-paper"
    );

    printer.set_paper(true);
    let reprinted = call(
        &app,
        "POST",
        &format!("/api/v1/requests/{id}/reprint"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(reprinted.body["printed"], true, "{}", reprinted.text);
    let view = call(
        &app,
        "GET",
        &format!("/api/v1/requests/{id}"),
        Some(&token),
        None,
    )
    .await;
    assert!(view.text.contains("receipt-printed"));
    assert!(printer.last_text().unwrap().contains("DIENSTENBUS"));
}
