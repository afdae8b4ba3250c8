//! Syncing on the node's side without a hub: the enrolment and its refusals at start, the actor
//! bound to the device key, the status panel and "sync now", batching against the real store
//! with the hub's half played by `busloket_sync::protocol`, the backoff and the retention
//! cut-off, and HTTPS on the bus Wi-Fi with a client that trusts only the city's CA.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use busloket_node::app;
use busloket_node::config::{Config, Retention};
use busloket_node::events::NodeEvent;
use busloket_node::state::AppState;
use busloket_node::sync::client::read_limited;
use busloket_node::sync::schedule::{BACKOFF_FIRST, BACKOFF_MAX, purge_cutoff_in};
use busloket_node::sync::{
    Backlog, Backoff, LinkState, PreparedUpload, next_batch, prepare_upload, round, settle,
};
use busloket_provisioning::enroll::{DEFAULT_DAYS, RequestFiles};
use busloket_provisioning::{enroll_device, init_ca, request_device};
use busloket_sync::protocol::{
    self, ANSWER_DOMAIN, Answer, AnswerDoc, decode_answer, encode_answer, open_upload,
};
use busloket_sync::terms::{DeviceId, RequestId};
use chrono::{FixedOffset, TimeZone, Utc};
use serde_json::json;

use crate::{call, demo_state, request_body, sign_in};

const EXAMPLE: &str = include_str!("../../../deploy/node.example.toml");
const DEVICE: &str = "bus-demo-1";

/// A city CA, this bus's keys and its bundle under `dir` (`ca/`, `device-keys/`, `bundle/`).
pub struct City {
    pub ca: PathBuf,
    pub keys: PathBuf,
    pub bundle: PathBuf,
}

pub fn enrol(dir: &Path, device: &str, hub_url: &str, days: u32, now: SystemTime) -> City {
    let city = City {
        ca: dir.join("ca"),
        keys: dir.join("device-keys"),
        bundle: dir.join("bundle"),
    };
    let hosts = |hosts: &[&str]| hosts.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>();
    init_ca(
        &city.ca,
        "City of Testville",
        &hosts(&["127.0.0.1", "localhost"]),
        now,
    )
    .unwrap();
    request_device(&city.keys, device, &hosts(&["localhost", "127.0.0.1"])).unwrap();
    enroll_device(
        &city.ca,
        &RequestFiles::from_paths(std::slice::from_ref(&city.keys)).unwrap(),
        hub_url,
        &city.bundle,
        days,
        now,
    )
    .unwrap();
    city
}

/// The example configuration with a `[sync]` section (`extra` lines added to it), written to
/// `dir/node.toml` with the at-rest key made.
pub fn synced_config(dir: &Path, city: &City, extra: &str) -> Config {
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    let key = dir.join("keys/at-rest.key");
    if !key.exists() {
        busloket_sync::at_rest::AtRestKey::generate_file(&key).unwrap();
    }
    let text = format!(
        "{EXAMPLE}\n[sync]\nbundle_dir = \"{}\"\nkey_dir = \"{}\"\n{extra}\n",
        city.bundle.display(),
        city.keys.display()
    );
    Config::parse(&dir.join("node.toml"), &text).unwrap()
}

/// An enrolled node's state whose hub is at `hub_url`.
pub fn enrolled_state(dir: &Path, hub_url: &str) -> (AppState, City) {
    let city = enrol(dir, DEVICE, hub_url, DEFAULT_DAYS, SystemTime::now());
    let state = AppState::from_config(synced_config(dir, &city, "")).unwrap();
    (state, city)
}

fn start_error(config: Config) -> String {
    format!("{:#}", AppState::from_config(config).unwrap_err())
}

#[test]
fn the_sync_section_is_checked() {
    let path = Path::new("/etc/busloket/node.toml");
    let with = |lines: &str| Config::parse(path, &format!("{EXAMPLE}\n[sync]\n{lines}\n"));
    let config = with("bundle_dir = \"bundle\"\nkey_dir = \"/keys\"").unwrap();
    let sync = config.sync.unwrap();
    assert_eq!(sync.bundle_dir, Path::new("/etc/busloket/bundle"));
    assert_eq!(sync.key_dir, Path::new("/keys"));
    assert_eq!(sync.interval, Duration::from_secs(60));
    assert_eq!(sync.retention, Retention::EndOfDay);
    assert!(sync.wifi_tls);
    let config = with("bundle_dir = \"b\"\nkey_dir = \"k\"\nretention = \"48h\"\ninterval_seconds = 30\nwifi_tls = false").unwrap();
    let sync = config.sync.unwrap();
    assert_eq!(sync.retention, Retention::Hours(48));
    assert_eq!(sync.interval, Duration::from_secs(30));
    assert!(!sync.wifi_tls);
    for (lines, expected) in [
        (
            "bundle_dir = \"b\"\nkey_dir = \"k\"\nretention = \"tomorrow\"",
            "sync.retention",
        ),
        (
            "bundle_dir = \"b\"\nkey_dir = \"k\"\nretention = \"0h\"",
            "sync.retention",
        ),
        (
            "bundle_dir = \"b\"\nkey_dir = \"k\"\ninterval_seconds = 1",
            "sync.interval_seconds",
        ),
        ("bundle_dir = \"b\"", "key_dir"),
        ("bundle_dir = \"b\"\nkey_dir = \"k\"\ncrl = \"x\"", "crl"),
    ] {
        let error = with(lines).unwrap_err().to_string();
        assert!(error.starts_with("/etc/busloket/node.toml: "), "{error}");
        assert!(error.contains(expected), "{lines}: {error}");
    }
    assert!(Config::parse(path, EXAMPLE).unwrap().sync.is_none());
}

#[test]
fn a_bad_expired_or_foreign_bundle_stops_the_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now();

    // Another device's bundle.
    let other = enrol(
        &dir.path().join("other"),
        "bus-7",
        "https://127.0.0.1:1",
        30,
        now,
    );
    let error = start_error(synced_config(dir.path(), &other, ""));
    assert!(error.contains("bus-7") && error.contains(DEVICE), "{error}");
    assert!(error.contains("bundle.toml"), "{error}");

    // A bundle that expired yesterday: issued for a day, two days ago.
    let old = enrol(
        &dir.path().join("old"),
        DEVICE,
        "https://127.0.0.1:1",
        1,
        now - Duration::from_secs(2 * 24 * 3600),
    );
    let error = start_error(synced_config(dir.path(), &old, ""));
    assert!(error.contains("expired"), "{error}");
    assert!(error.contains("device.pem"), "{error}");

    // A certificate altered by a byte.
    let city = enrol(
        &dir.path().join("city"),
        DEVICE,
        "https://127.0.0.1:1",
        30,
        now,
    );
    let wifi = city.bundle.join("wifi.pem");
    let text = std::fs::read_to_string(&wifi).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let middle = lines.len() / 2;
    let flipped: String = lines[middle]
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 10 {
                if c == 'A' { 'B' } else { 'A' }
            } else {
                c
            }
        })
        .collect();
    lines[middle] = flipped;
    std::fs::write(&wifi, lines.join("\n") + "\n").unwrap();
    let error = start_error(synced_config(dir.path(), &city, ""));
    assert!(error.contains("wifi.pem"), "{error}");

    // No bundle at all.
    let missing = City {
        ca: dir.path().join("none"),
        keys: dir.path().join("none"),
        bundle: dir.path().join("none"),
    };
    let error = start_error(synced_config(dir.path(), &missing, ""));
    assert!(error.contains("none/bundle.toml"), "{error}");
}

#[test]
fn the_actor_is_bound_to_the_device_key_and_replaces_a_random_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Before enrolment: a random actor, kept across starts.
    let random = busloket_node::workflow::load_or_create_actor(&data, None).unwrap();
    assert_eq!(
        busloket_node::workflow::load_or_create_actor(&data, None).unwrap(),
        random
    );
    let key = [7u8; 32];
    let bound = busloket_node::workflow::load_or_create_actor(&data, Some(&key)).unwrap();
    assert_ne!(bound, random);
    assert!(protocol::actor_is_bound(&bound, &key));
    // The replica's half is kept: the same actor at the next start.
    assert_eq!(
        busloket_node::workflow::load_or_create_actor(&data, Some(&key)).unwrap(),
        bound
    );
    // A new key (re-enrolled): a new bound actor.
    let rebound = busloket_node::workflow::load_or_create_actor(&data, Some(&[8u8; 32])).unwrap();
    assert!(protocol::actor_is_bound(&rebound, &[8u8; 32]));

    // The node's state takes the bound actor from its enrolment.
    let (state, _) = enrolled_state(&dir.path().join("node"), "https://127.0.0.1:1");
    let enrolled = state.enrolled.as_ref().unwrap();
    assert!(protocol::actor_is_bound(
        &state.actor,
        &enrolled.enrolment.device_public_key()
    ));
}

#[tokio::test]
async fn the_console_shows_the_sync_panel_and_sync_now_wakes_the_loop() {
    let dir = tempfile::tempdir().unwrap();
    let (state, _) = enrolled_state(dir.path(), "https://127.0.0.1:1");
    let app = app(state.clone());
    let cookie = staff_cookie(&app).await;

    let page = get_page(&app, "/staff", &cookie).await;
    assert!(page.contains("id=\"sync\""), "{page}");
    assert!(page.contains("Synchronisatie met de stad"), "{page}");
    assert!(page.contains("Nog niet gesynchroniseerd"), "{page}");
    assert!(page.contains("action=\"/staff/sync\""), "{page}");
    assert!(
        page.contains("aria-hidden=\"true\""),
        "the icon is decoration, the words say it"
    );

    let posted = form_with_cookie(&app, "/staff/sync", &cookie).await;
    assert_eq!(posted, StatusCode::SEE_OTHER);
    tokio::time::timeout(Duration::from_secs(1), state.sync.sync_requested())
        .await
        .expect("the loop is woken");

    let token = sign_in(&app).await;
    let status = call(&app, "GET", "/api/v1/sync", Some(&token), None).await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.text);
    assert_eq!(status.body["state"], "never");
    assert_eq!(status.body["waiting"], 0);
    assert_eq!(status.body["hub_url"], "https://127.0.0.1:1");
    let unauthenticated = call(&app, "GET", "/api/v1/sync", None, None).await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
    let forced = call(&app, "POST", "/api/v1/sync", Some(&token), None).await;
    assert_eq!(forced.status, StatusCode::ACCEPTED);

    // A request written here waits to go.
    create_request(&app, &token).await;
    let status = call(&app, "GET", "/api/v1/sync", Some(&token), None).await;
    assert_eq!(status.body["waiting"], 1);
    let page = get_page(&app, "/staff", &cookie).await;
    assert!(page.contains("id=\"sync-waiting\">1<"), "{page}");
}

#[tokio::test]
async fn an_unsynced_node_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let state = demo_state(dir.path());
    assert!(state.enrolled.is_none());
    let app = app(state);
    let cookie = staff_cookie(&app).await;
    let page = get_page(&app, "/staff", &cookie).await;
    assert!(page.contains("Dit toestel synchroniseert niet"), "{page}");
    assert!(!page.contains("action=\"/staff/sync\""));
    let token = sign_in(&app).await;
    let status = call(&app, "GET", "/api/v1/sync", Some(&token), None).await;
    assert_eq!(status.body["state"], "not-configured");
    let forced = call(&app, "POST", "/api/v1/sync", Some(&token), None).await;
    assert_eq!(forced.status, StatusCode::CONFLICT);
    assert_eq!(forced.body["error"]["code"], "not-synced");
}

#[tokio::test]
async fn many_requests_go_in_several_batches_within_the_limit_and_leave_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let (state, key, device) = outbox_of(dir.path(), 24).await;
    let store = state.store.clone();
    assert_eq!(store.outbox_len(), 24);

    // A batch limit of a few requests' weight (the service uses protocol::BATCH_BYTES).
    let first = next_batch(&store, usize::MAX).unwrap();
    let one = first.docs[0].size();
    let limit = one * 5 + one / 2;

    let mut uploads = 0;
    let mut answer_seq = 0;
    let mut counters = Vec::new();
    while store.outbox_len() > 0 {
        uploads += 1;
        assert!(uploads <= 10, "the outbox does not empty");
        let batch = next_batch(&store, limit).unwrap().docs;
        let weight: usize = batch.iter().map(|doc| doc.size()).sum();
        assert!(weight <= limit, "{weight} bytes of payload over {limit}");
        let prepared = prepare_upload(&store, &key, &device, Utc::now(), limit).unwrap();
        assert_eq!(
            prepared.sent,
            batch.iter().map(|doc| doc.id).collect::<Vec<_>>()
        );
        counters.push(prepared.counter);
        // The hub's half: open and check the upload, acknowledge every request's heads.
        let opened =
            open_upload(&prepared.body, &device, &key.verifying_key()).expect("a valid upload");
        assert!(
            opened.docs.len() <= 5,
            "{} requests in one upload",
            opened.docs.len()
        );
        answer_seq += 1;
        let acknowledged = opened
            .docs
            .iter()
            .map(|doc| AnswerDoc {
                id: *doc.id.as_bytes(),
                heads: protocol::to_wire(&doc.heads),
                payload: None,
            })
            .collect();
        let answer = answer_for(&prepared, &device, answer_seq, acknowledged);
        let settled = settle(&store, &prepared, answer).unwrap();
        assert_eq!(settled.acknowledged, prepared.sent.len());
    }
    assert_eq!(uploads, 5, "24 requests by 5");
    assert!(counters.windows(2).all(|pair| pair[1] > pair[0]));
    let sync_state = store.sync_state().unwrap();
    assert_eq!(sync_state.answer_applied, answer_seq);
    // With the service's limit, the whole day goes at once.
    let rest = next_batch(&store, protocol::BATCH_BYTES).unwrap();
    assert!(rest.docs.is_empty() && rest.left_for_later == 0);
}

#[test]
fn the_backoff_grows_with_jitter_to_five_minutes_and_starts_over_after_a_success() {
    let mut backoff = Backoff::default();
    let mut ceilings = Vec::new();
    for draw in [1.0, 0.5, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0] {
        let ceiling = backoff.ceiling();
        ceilings.push(ceiling.as_secs());
        let pause = backoff.failed(draw);
        assert!(
            pause <= ceiling.max(Duration::from_millis(250)),
            "{pause:?} over {ceiling:?}"
        );
        if draw == 1.0 {
            assert_eq!(pause, ceiling);
        }
    }
    assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
    // Full jitter: the same ceiling, different draws, different pauses.
    let mut a = backoff.clone();
    let mut b = backoff.clone();
    assert_ne!(a.failed(0.2), b.failed(0.9));
    // Never a tight loop, even with a draw of 0.
    assert!(Backoff::default().failed(0.0) >= Duration::from_millis(250));
    backoff.succeeded();
    assert_eq!(backoff.failures(), 0);
    assert_eq!(backoff.ceiling(), BACKOFF_FIRST);
    assert_eq!(BACKOFF_MAX, Duration::from_secs(300));
}

#[test]
fn retention_purges_before_the_start_of_the_local_day_or_n_hours_back() {
    let brussels_summer = FixedOffset::east_opt(2 * 3600).unwrap();
    // 00:30 in Brussels on 2 June is 22:30 UTC on 1 June: the local day started at 22:00 UTC.
    let now = Utc.with_ymd_and_hms(2026, 6, 1, 22, 30, 0).unwrap();
    assert_eq!(
        purge_cutoff_in(Retention::EndOfDay, now, &brussels_summer),
        Utc.with_ymd_and_hms(2026, 6, 1, 22, 0, 0).unwrap()
    );
    assert_eq!(
        purge_cutoff_in(Retention::Hours(48), now, &brussels_summer),
        Utc.with_ymd_and_hms(2026, 5, 30, 22, 30, 0).unwrap()
    );
}

#[tokio::test]
async fn the_wifi_listener_serves_https_to_a_client_that_trusts_the_city_ca() {
    let dir = tempfile::tempdir().unwrap();
    // The hub is nowhere: the sync loop goes offline, the pages do not care.
    let (state, city) = enrolled_state(dir.path(), "https://127.0.0.1:1");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(busloket_node::run(listener, state.clone(), async move {
        let _ = stopped.await;
    }));

    let ca = std::fs::read(city.ca.join("ca.pem")).unwrap();
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let health = client
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(
        health.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    assert_eq!(health.text().await.unwrap(), "ok");

    // A client that does not trust the city's CA gets no page.
    let stranger = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    assert!(
        stranger
            .get(format!("https://localhost:{port}/healthz"))
            .send()
            .await
            .is_err()
    );
    // Plain HTTP on the TLS port is not served.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());

    // The staff console's event stream streams over TLS.
    let signed_in = client
        .post(format!("https://localhost:{port}/api/v1/session"))
        .json(&json!({"username": "demo", "password": "bus-demo-2026"}))
        .send()
        .await
        .unwrap();
    let token = signed_in.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut events = client
        .get(format!("https://localhost:{port}/staff/events"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    let sender = state.events.clone();
    let poke = tokio::spawn(async move {
        for _ in 0..50 {
            sender.send(NodeEvent::Help);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let chunk = tokio::time::timeout(Duration::from_secs(5), events.chunk())
        .await
        .expect("an event within 5 s")
        .unwrap()
        .expect("a chunk");
    assert!(String::from_utf8_lossy(&chunk).contains("changed"));
    poke.abort();

    // The loop tried the hub and says it is offline.
    let status = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let status = state.sync.status();
            if status.state == LinkState::Offline {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the loop reports the hub unreachable");
    assert_eq!(status.last_error.unwrap().code, "unreachable");

    drop(events);
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
}

/// Writes a request through the API (a clerk at the desk, a card read).
async fn create_request(app: &axum::Router, token: &str) {
    let created = call(
        app,
        "POST",
        "/api/v1/requests",
        Some(token),
        Some(&request_body("birth-extract", "78.03.12-037.01")),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
}

async fn staff_cookie(app: &axum::Router) -> String {
    use axum::body::Body;
    use axum::http::{Request, header};
    use tower::ServiceExt;
    let response = app
        .clone()
        .oneshot(
            Request::post("/staff/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from("username=demo&password=bus-demo-2026"))
                .unwrap(),
        )
        .await
        .unwrap();
    response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

async fn get_page(app: &axum::Router, uri: &str, cookie: &str) -> String {
    use axum::body::Body;
    use axum::http::{Request, header};
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let response = app
        .clone()
        .oneshot(
            Request::get(uri)
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

async fn form_with_cookie(app: &axum::Router, uri: &str, cookie: &str) -> StatusCode {
    use axum::body::Body;
    use axum::http::{Request, header};
    use tower::ServiceExt;
    app.clone()
        .oneshot(
            Request::post(uri)
                .header(header::COOKIE, cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn the_hubs_bus_clerks_sign_in_and_the_configuration_wins_a_clash() {
    let dir = tempfile::tempdir().unwrap();
    let (state, _) = enrolled_state(dir.path(), "https://127.0.0.1:1");
    let hash = busloket_provisioning::hash_staff_password("from the hub 2026").unwrap();
    let file = format!(
        "[[staff]]\nusername = \"piet\"\ndisplay_name = \"Piet\"\npassword_hash = \"{hash}\"\nroles = [\"bus-clerk\"]\n\n\
         [[staff]]\nusername = \"els\"\ndisplay_name = \"Els\"\npassword_hash = \"{hash}\"\nroles = [\"city-clerk\"]\n\n\
         [[staff]]\nusername = \"demo\"\ndisplay_name = \"Not the demo\"\npassword_hash = \"{hash}\"\nroles = [\"bus-clerk\"]\n"
    );
    state.sync.take_staff_file(file.as_bytes());
    assert_eq!(state.sync.status().synced_staff, Some(2));
    let app = app(state.clone());
    let session =
        |user: &str, password: &str| json!({"username": user, "password": password}).to_string();
    for (user, password, status) in [
        ("piet", "from the hub 2026", StatusCode::OK),
        // Not a bus clerk: the hub's city clerks do not sign in on a bus.
        ("els", "from the hub 2026", StatusCode::UNAUTHORIZED),
        // The configuration's demo account wins over the hub's of the same name.
        ("demo", "from the hub 2026", StatusCode::UNAUTHORIZED),
        ("demo", "bus-demo-2026", StatusCode::OK),
    ] {
        let answer = call(
            &app,
            "POST",
            "/api/v1/session",
            None,
            Some(&session(user, password)),
        )
        .await;
        assert_eq!(answer.status, status, "{user}: {}", answer.text);
    }
    // A file that does not parse changes nothing.
    state.sync.take_staff_file(b"[[staff]]\nusername = 3\n");
    assert_eq!(state.sync.status().synced_staff, Some(2));
}

/// A store with `count` requests written here, its device and key.
async fn outbox_of(dir: &Path, count: usize) -> (AppState, ed25519_dalek::SigningKey, DeviceId) {
    let (state, _) = enrolled_state(dir, "https://127.0.0.1:1");
    let app = app(state.clone());
    let token = sign_in(&app).await;
    for _ in 0..count {
        create_request(&app, &token).await;
    }
    let enrolled = state.enrolled.clone().unwrap();
    let key = enrolled.enrolment.bundle.device_signing_key().clone();
    let device = state.config.device_id.clone();
    (state, key, device)
}

/// The hub's answer `answer_seq` to `prepared` with `docs`, through the wire format.
fn answer_for(
    prepared: &PreparedUpload,
    device: &DeviceId,
    answer_seq: u64,
    docs: Vec<AnswerDoc>,
) -> Answer {
    let answer = Answer {
        domain: ANSWER_DOMAIN.into(),
        device: device.to_string(),
        counter: prepared.counter,
        answer_seq,
        docs,
        refused: Vec::new(),
        files: Vec::new(),
        more: false,
        trip_acked: 0,
    };
    decode_answer(&encode_answer(&answer), device, prepared.counter).unwrap()
}

#[tokio::test]
async fn the_upload_counter_starts_from_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let (state, key, device) = outbox_of(dir.path(), 1).await;
    let now = Utc::now();
    let prepared = prepare_upload(&state.store, &key, &device, now, usize::MAX).unwrap();
    assert_eq!(prepared.counter, now.timestamp_millis() as u64);
    let again = prepare_upload(&state.store, &key, &device, now, usize::MAX).unwrap();
    assert_eq!(again.counter, prepared.counter + 1);
}

/// A payload the store refuses is asked for whole (not confirmed), its error is shown and
/// logged by kind only, and the round uploads again while that changes what is left.
#[tokio::test]
async fn a_payload_the_store_refuses_is_asked_for_whole_and_shown_by_kind() {
    let dir = tempfile::tempdir().unwrap();
    let (state, key, device) = outbox_of(dir.path(), 1).await;
    let store = state.store.clone();
    let before = Backlog::read(&store).unwrap();
    let prepared = prepare_upload(&store, &key, &device, Utc::now(), usize::MAX).unwrap();
    let own = store.outgoing(prepared.sent[0]).unwrap().unwrap();
    // Another request's document under a new id: it makes no valid record of that id.
    let stranger = RequestId::new(1_750_000_000_000, [7; 10]);
    let answer = answer_for(
        &prepared,
        &device,
        7,
        vec![
            AnswerDoc {
                id: *own.id.as_bytes(),
                heads: protocol::to_wire(&own.heads),
                payload: None,
            },
            AnswerDoc {
                id: *stranger.as_bytes(),
                heads: protocol::to_wire(&own.heads),
                payload: Some(own.payload.clone()),
            },
        ],
    );
    let settled = settle(&store, &prepared, answer).unwrap();
    assert_eq!(settled.acknowledged, 1);
    assert_eq!(settled.need_whole, 1);
    let refusal = &settled.refused[0];
    assert_eq!(
        (refusal.request, refusal.code.as_str()),
        (stranger, "not-applied")
    );
    assert!(
        refusal.message.contains("different-request"),
        "{}",
        refusal.message
    );
    assert!(
        !refusal.message.contains("cannot be merged"),
        "{}",
        refusal.message
    );
    let sync_state = store.sync_state().unwrap();
    assert_eq!(sync_state.need_whole, [stranger]);
    assert!(store.outbox().unwrap().is_empty());

    // The answer left a request to ask for whole: upload again at once.
    let after = Backlog::read(&store).unwrap();
    assert!(round::upload_again(&before, &after));
    // The hub sends it whole, and it still does not apply: nothing changed, the round stops.
    let prepared = prepare_upload(&store, &key, &device, Utc::now(), usize::MAX).unwrap();
    assert_eq!(prepared.need_whole, [stranger]);
    let answer = answer_for(
        &prepared,
        &device,
        7,
        vec![AnswerDoc {
            id: *stranger.as_bytes(),
            heads: protocol::to_wire(&own.heads),
            payload: Some(own.payload.clone()),
        }],
    );
    settle(&store, &prepared, answer).unwrap();
    let again = Backlog::read(&store).unwrap();
    assert_eq!(again, after);
    assert!(!round::upload_again(&after, &again));
    assert!(!round::upload_again(
        &Backlog::default(),
        &Backlog::default()
    ));
}

#[tokio::test]
async fn a_missing_base_reset_is_sent_again_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (state, key, device) = outbox_of(dir.path(), 1).await;
    let store = state.store.clone();
    let id = store.outbox().unwrap()[0];
    // The hub acknowledged some heads once; the request changes here again.
    let heads = store.current_heads(id).unwrap();
    store
        .acknowledge(&busloket_sync::store::Acknowledgement {
            acked: vec![(id, heads.clone())],
            ..Default::default()
        })
        .unwrap();
    let before = Backlog {
        outbox: vec![(id, heads)],
        need_whole: Vec::new(),
    };
    let prepared = prepare_upload(&store, &key, &device, Utc::now(), usize::MAX).unwrap();
    let mut answer = answer_for(&prepared, &device, 7, Vec::new());
    answer.refused.push(protocol::DocRefusal {
        id: *id.as_bytes(),
        code: "missing-base".into(),
        message: "the hub lacks the base".into(),
    });
    settle(&store, &prepared, answer).unwrap();
    let after = Backlog::read(&store).unwrap();
    assert_eq!(after.outbox, [(id, Vec::new())]);
    assert!(round::upload_again(&before, &after));
}

/// The hub refuses a whole upload for one request: that one is set aside (staff see it), and the
/// next upload sends the rest.
#[tokio::test]
async fn a_request_that_makes_the_hub_refuse_the_upload_is_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let (state, key, device) = outbox_of(dir.path(), 3).await;
    let store = state.store.clone();
    let prepared = prepare_upload(&store, &key, &device, Utc::now(), usize::MAX).unwrap();
    assert_eq!(prepared.sent.len(), 3);
    let culprit = prepared.sent[1];
    // As the hub words it (ProtocolError's Display).
    let message = protocol::ProtocolError::ForeignActor {
        id: culprit.to_string(),
        hash: "ab".into(),
        actor: "cd".into(),
    }
    .to_string();
    // Other codes, or a request the upload did not carry, set nothing aside.
    assert_eq!(
        round::refused_request(&prepared, "replayed", &message),
        None
    );
    let other = RequestId::new(1_750_000_000_000, [7; 10]);
    let elsewhere = message.replace(&culprit.to_string(), &other.to_string());
    assert_eq!(
        round::refused_request(&prepared, "foreign-actor", &elsewhere),
        None
    );
    assert_eq!(
        round::set_aside_refused(&store, &prepared, "foreign-actor", &message).unwrap(),
        Some(culprit)
    );
    assert!(!store.outbox().unwrap().contains(&culprit));
    assert_eq!(store.sync_state().unwrap().set_aside, [culprit]);
    assert_eq!(
        busloket_node::sync::current_status(&state).await.set_aside,
        1
    );
    let next = prepare_upload(&store, &key, &device, Utc::now(), usize::MAX).unwrap();
    assert_eq!(next.sent, [prepared.sent[0], prepared.sent[2]]);
}

#[tokio::test]
async fn an_answer_body_over_the_limit_is_refused_while_it_streams() {
    let small = reqwest::Response::from(axum::http::Response::new(vec![1u8; 10]));
    assert_eq!(read_limited(small, 10).await.unwrap(), vec![1u8; 10]);
    let large = reqwest::Response::from(axum::http::Response::new(vec![1u8; 11]));
    let error = read_limited(large, 10).await.unwrap_err();
    assert_eq!(error.code(), "too-large");
}

/// The trip log goes with the upload from what the hub has on, signed, and what the hub says it
/// has is not sent again.
#[tokio::test]
async fn the_trip_log_goes_from_what_the_hub_has_and_is_acknowledged() {
    use busloket_sync::trip::{TripEntry, TripEvent};
    let dir = tempfile::tempdir().unwrap();
    let (state, key, device) = outbox_of(dir.path(), 1).await;
    let store = state.store.clone();
    let lost = |second: i64| TripEntry {
        at: Utc::now() + chrono::TimeDelta::seconds(second),
        event: TripEvent::FixLost,
    };
    store.append_trip(&[lost(0), lost(1), lost(2)]).unwrap();
    let prepared = prepare_upload(&store, &key, &device, Utc::now(), usize::MAX).unwrap();
    let opened =
        busloket_sync::protocol::open_upload(&prepared.body, &device, &key.verifying_key())
            .unwrap();
    let numbers: Vec<u64> = opened
        .manifest
        .trip
        .iter()
        .map(|line| line.number)
        .collect();
    assert_eq!(numbers, [1, 2, 3]);
    assert!(!prepared.trip_left);

    let mut answer = answer_for(&prepared, &device, 1, Vec::new());
    answer.trip_acked = 2;
    settle(&store, &prepared, answer).unwrap();
    assert_eq!(store.trip_acknowledged().unwrap(), 2);
    let next = prepare_upload(&store, &key, &device, Utc::now(), usize::MAX).unwrap();
    let opened =
        busloket_sync::protocol::open_upload(&next.body, &device, &key.verifying_key()).unwrap();
    assert_eq!(
        opened
            .manifest
            .trip
            .iter()
            .map(|line| line.number)
            .collect::<Vec<_>>(),
        [3]
    );
}
