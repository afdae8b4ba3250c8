//! The real server over TLS with a city CA: every way to tamper refused with its code, logged and
//! quarantined where PROTOCOL.md says, nothing stored before affected; a certificate of another
//! CA stopped at the handshake; revocation after a CRL reload; health; the pages in Dutch, French,
//! German and English; the device page behind central IT's sign-in; a decision of the city
//! reaching the bus through the API.

use busloket_provisioning::revoke_device;
use busloket_sync::protocol::{OutgoingDoc, Upload, build_upload};
use busloket_sync::record::RequestRecord;
use busloket_sync::terms::RequestId;

use crate::support::{
    CENTRAL_IT_PASSWORD, City, RunningHub, bus_of, city, client, code_of, enrol, now,
    post_to_upload, post_upload,
};

fn unpack(body: &[u8]) -> Upload {
    postcard::from_bytes(&zstd::decode_all(body).unwrap()).unwrap()
}

fn pack(upload: &Upload) -> Vec<u8> {
    zstd::encode_all(&postcard::to_stdvec(upload).unwrap()[..], 3).unwrap()
}

fn stored(hub: &RunningHub, id: RequestId) -> Option<RequestRecord> {
    hub.state.hub.request(id).unwrap()
}

fn quarantine_codes(hub: &RunningHub, device: &str) -> Vec<String> {
    hub.state
        .hub
        .storage()
        .quarantine_entries(&device.parse().unwrap())
        .unwrap()
        .into_iter()
        .map(|entry| entry.code)
        .collect()
}

pub(crate) fn ca(city: &City) -> rustls_pki_types::CertificateDer<'static> {
    city.bundles["bus-1"].ca_certificate().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tampering_is_refused_with_its_code_and_nothing_stored_changes() {
    let city = city(&["bus-1", "bus-2"]);
    let hub = RunningHub::start(&city.config).await;
    let one = client(&ca(&city), Some(&city.bundles["bus-1"]));
    let mut bus = bus_of(&city.bundles["bus-1"], 1);
    let mut bus2 = bus_of(&city.bundles["bus-2"], 2);

    let kept = bus.create(1, 1);
    hub.round(&one, &mut bus).await;
    let before = stored(&hub, kept).unwrap().save();

    // A flipped byte in a change.
    bus.create(1, 2);
    let mut upload = unpack(&bus.upload());
    match &mut upload.payloads[0] {
        busloket_sync::protocol::Payload::Document(bytes) => {
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x40;
        }
        busloket_sync::protocol::Payload::Changes(chunks) => chunks[0][20] ^= 0x40,
    }
    let (status, body) = post_upload(&one, &hub.url, pack(&upload)).await.unwrap();
    assert_eq!(status, 400);
    let flipped = code_of(&body);
    assert!(
        ["bad-payload", "hash-mismatch"].contains(&flipped.as_str()),
        "{flipped}"
    );

    // The manifest signed by another enrolled device's key.
    bus.counter += 1;
    let ids = bus.outbox();
    let docs = ids
        .iter()
        .map(|id| OutgoingDoc::from_record(*id, bus.records.get_mut(id).unwrap(), &[]))
        .collect();
    let forged = build_upload(&bus2.key, &bus.header(), docs);
    let (status, body) = post_upload(&one, &hub.url, forged).await.unwrap();
    assert_eq!((status, code_of(&body).as_str()), (403, "bad-signature"));

    // A change made by another device's actor.
    let theirs = bus2.create(2, 7);
    let record = bus2.records.remove(&theirs).unwrap();
    bus.records.insert(theirs, record);
    let (status, body) = post_upload(&one, &hub.url, bus.upload_of(&[theirs]))
        .await
        .unwrap();
    assert_eq!((status, code_of(&body).as_str()), (403, "foreign-actor"));
    bus.records.remove(&theirs);

    // An old manifest replayed.
    let old = bus.upload();
    let (status, _) = post_upload(&one, &hub.url, bus.upload()).await.unwrap();
    assert_eq!(status, 200);
    let (status, body) = post_upload(&one, &hub.url, old).await.unwrap();
    assert_eq!((status, code_of(&body).as_str()), (409, "replayed"));

    // Quarantined where PROTOCOL.md says (steps 4, 6, 7), not the replay (5).
    assert_eq!(
        quarantine_codes(&hub, "bus-1"),
        vec![
            flipped,
            "bad-signature".to_owned(),
            "foreign-actor".to_owned()
        ]
    );
    assert!(stored(&hub, theirs).is_none());
    assert_eq!(
        stored(&hub, kept).unwrap().save(),
        before,
        "stored before: unchanged"
    );

    // No certificate: the device page is reachable, sync is not.
    let anonymous = client(&ca(&city), None);
    let (status, _) = post_upload(&anonymous, &hub.url, bus.upload())
        .await
        .unwrap();
    assert_eq!(status, 401);
    // Too large, and the wrong media type.
    let (status, body) = post_upload(&one, &hub.url, vec![0; (4 << 20) + 1])
        .await
        .unwrap();
    assert_eq!((status, code_of(&body).as_str()), (413, "too-large"));
    let (status, _) = post_to_upload(&one, &hub.url, "application/json", "{}")
        .await
        .unwrap();
    assert_eq!(status, 400);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_of_another_ca_fails_the_handshake() {
    let city = city(&["bus-1"]);
    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger_ca = stranger_dir.path().join("ca");
    busloket_provisioning::init_ca(
        &stranger_ca,
        "City of Elsewhere",
        &["127.0.0.1".to_owned()],
        now(),
    )
    .unwrap();
    let stranger = enrol(&stranger_ca, stranger_dir.path(), "bus-1");
    let hub = RunningHub::start(&city.config).await;
    // It trusts our hub, but presents a certificate our CA did not issue.
    let foreign = client(&ca(&city), Some(&stranger));
    let mut bus = bus_of(&stranger, 9);
    bus.create(9, 1);
    assert!(post_upload(&foreign, &hub.url, bus.upload()).await.is_err());
    assert!(quarantine_codes(&hub, "bus-1").is_empty());
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_is_refused_and_quarantined_and_the_crl_reaches_the_other_buses() {
    let city = city(&["bus-1", "bus-2"]);
    let hub = RunningHub::start(&city.config).await;
    let one = client(&ca(&city), Some(&city.bundles["bus-1"]));
    let two = client(&ca(&city), Some(&city.bundles["bus-2"]));
    let mut bus1 = bus_of(&city.bundles["bus-1"], 1);
    let mut bus2 = bus_of(&city.bundles["bus-2"], 2);
    bus1.create(1, 1);
    let answer = hub.round(&one, &mut bus1).await;
    let files: Vec<(String, u64)> = answer
        .files
        .iter()
        .map(|f| (f.name.clone(), f.version))
        .collect();
    assert_eq!(files, vec![("crl".to_owned(), 1), ("staff".to_owned(), 1)]);
    let earlier = bus2.create(2, 1);
    hub.round(&two, &mut bus2).await;
    let before = stored(&hub, earlier).unwrap().save();

    revoke_device(&city.ca_dir, &"bus-2".parse().unwrap(), now()).unwrap();
    let later = bus2.create(2, 2);
    let (status, body) = post_upload(&two, &hub.url, bus2.upload()).await.unwrap();
    assert_eq!((status, code_of(&body).as_str()), (403, "device-revoked"));
    assert_eq!(quarantine_codes(&hub, "bus-2"), vec!["device-revoked"]);
    assert!(stored(&hub, later).is_none(), "never merged");
    assert_eq!(stored(&hub, earlier).unwrap().save(), before);

    // bus-1's next answer carries the new list, and only that.
    let answer = hub.round(&one, &mut bus1).await;
    assert_eq!(answer.files.len(), 1);
    assert_eq!(
        (answer.files[0].name.as_str(), answer.files[0].version),
        ("crl", 2)
    );
    assert!(hub.round(&one, &mut bus1).await.files.is_empty());
    hub.stop().await;
}

/// Posts the sign-in form as the page sends it (with its hidden `lang`).
async fn sign_in(
    browser: &reqwest::Client,
    hub: &RunningHub,
    username: &str,
    password: &str,
) -> reqwest::Response {
    browser
        .post(format!("{}/signin", hub.url))
        .form(&[
            ("username", username),
            ("password", password),
            ("lang", "en"),
        ])
        .send()
        .await
        .unwrap()
}

/// The session cookie from a sign-in response.
fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with("busloket_hub="))
        .and_then(|value| value.split(';').next())
        .map(str::to_owned)
}

/// Central IT signed in through the form: the session cookie.
pub(crate) async fn central_it_cookie(browser: &reqwest::Client, hub: &RunningHub) -> String {
    let response = sign_in(browser, hub, "it", CENTRAL_IT_PASSWORD).await;
    assert_eq!(response.status().as_u16(), 303);
    session_cookie(&response).unwrap()
}

/// `GET path` at the hub with a session cookie.
pub(crate) async fn get_signed_in(
    browser: &reqwest::Client,
    hub: &RunningHub,
    path: &str,
    cookie: &str,
) -> reqwest::Response {
    browser
        .get(format!("{}{path}", hub.url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_page_needs_central_it_and_lists_every_device() {
    let city = city(&["bus-1", "bus-2"]);
    let hub = RunningHub::start(&city.config).await;
    let one = client(&ca(&city), Some(&city.bundles["bus-1"]));
    let mut bus1 = bus_of(&city.bundles["bus-1"], 1);
    for n in 0..3 {
        bus1.create(1, n);
    }
    hub.round(&one, &mut bus1).await;
    let browser = client(&ca(&city), None);

    let health: serde_json::Value = browser
        .get(format!("{}/health", hub.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["ok"], true);
    assert_eq!(health["store"], "ok");

    let response = browser
        .get(format!("{}/devices", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/signin")
    );

    let refused = sign_in(&browser, &hub, "clerk", "bus-clerk-2026").await;
    assert_eq!(
        refused.status().as_u16(),
        401,
        "a bus clerk is not central IT"
    );
    let wrong = sign_in(&browser, &hub, "it", "wrong password").await;
    assert_eq!(wrong.status().as_u16(), 401);
    let cookie = central_it_cookie(&browser, &hub).await;

    let page = get_signed_in(&browser, &hub, "/devices", &cookie).await;
    assert_eq!(page.status().as_u16(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("<html lang=\"nl\">"), "Dutch by default");
    assert!(html.contains("<th scope=\"col\">Apparaat</th>"));
    assert!(html.contains("<tr data-device=\"bus-1\">"));
    assert!(html.contains("<tr data-device=\"bus-2\">"));
    assert!(html.contains("<td>3</td>"), "bus-1 holds three requests");
    assert!(html.contains("nooit"), "bus-2 never synced");
    assert!(!html.contains("Marie"), "no citizen data");

    let english = get_signed_in(&browser, &hub, "/devices/bus-1/quarantine?lang=en", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(english.contains("<html lang=\"en\">"));
    assert!(english.contains("Nothing in quarantine."));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_speak_dutch_french_german_and_english() {
    let city = city(&["bus-1"]);
    let hub = RunningHub::start(&city.config).await;
    let browser = client(&ca(&city), None);
    let page = async |path: &str, accept_language: Option<&str>| {
        let mut request = browser.get(format!("{}{path}", hub.url));
        if let Some(accept_language) = accept_language {
            request = request.header("accept-language", accept_language);
        }
        request.send().await.unwrap().text().await.unwrap()
    };

    let french = page("/signin?lang=fr", None).await;
    assert!(french.contains("<html lang=\"fr\">"), "{french}");
    assert!(french.contains("<title>Se connecter — busloket hub</title>"));
    assert!(french.contains("<nav class=\"languages\" aria-label=\"Langue\">"));
    assert!(french.contains("<span lang=\"fr\" aria-current=\"true\">Français</span>"));
    assert!(french.contains("<a href=\"/signin?lang=de\" lang=\"de\" hreflang=\"de\">Deutsch</a>"));
    assert!(french.contains("<input type=\"hidden\" name=\"lang\" value=\"fr\">"));

    let german = page("/signin?lang=de", None).await;
    assert!(german.contains("<html lang=\"de\">"), "{german}");
    assert!(german.contains("<title>Anmelden — busloket hub</title>"));
    assert!(german.contains("<span lang=\"de\" aria-current=\"true\">Deutsch</span>"));
    for (code, name) in [("nl", "Nederlands"), ("fr", "Français"), ("en", "English")] {
        let link = format!(
            "<a href=\"/signin?lang={code}\" lang=\"{code}\" hreflang=\"{code}\">{name}</a>"
        );
        assert!(german.contains(&link), "{link}");
    }

    let from_the_browser = page("/signin", Some("de-BE,de;q=0.9")).await;
    assert!(from_the_browser.contains("<html lang=\"de\">"));
    assert!(from_the_browser.contains("<title>Anmelden — busloket hub</title>"));
    let chosen = page("/signin?lang=fr", Some("de-BE,de;q=0.9")).await;
    assert!(
        chosen.contains("<html lang=\"fr\">"),
        "the link wins over the browser"
    );
    let dutch = page("/signin", Some("es-ES,es;q=0.9")).await;
    assert!(dutch.contains("<html lang=\"nl\">"), "Dutch when none fits");
    assert!(dutch.contains("<title>Aanmelden — busloket hub</title>"));

    // The form carries the language through a refused and an accepted sign-in.
    let sign_in_in = async |lang: &str, password: &str| {
        browser
            .post(format!("{}/signin", hub.url))
            .form(&[("username", "it"), ("password", password), ("lang", lang)])
            .send()
            .await
            .unwrap()
    };
    let refused = sign_in_in("de", "wrong password").await;
    assert_eq!(refused.status().as_u16(), 401);
    let refused = refused.text().await.unwrap();
    assert!(refused.contains("<html lang=\"de\">"));
    assert!(refused.contains("Der Benutzername oder das Passwort ist falsch"));
    let accepted = sign_in_in("fr", CENTRAL_IT_PASSWORD).await;
    assert_eq!(accepted.status().as_u16(), 303);
    assert_eq!(accepted.headers()["location"], "/devices?lang=fr");
    let cookie = session_cookie(&accepted).unwrap();
    let devices = get_signed_in(&browser, &hub, "/devices?lang=fr", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        devices.contains("<th scope=\"col\">Appareil</th>"),
        "{devices}"
    );
    assert!(
        devices.contains("<a href=\"/devices?lang=de\" lang=\"de\" hreflang=\"de\">Deutsch</a>")
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_of_the_city_through_the_api_reaches_the_bus() {
    let city = city(&["bus-1"]);
    let hub = RunningHub::start(&city.config).await;
    let one = client(&ca(&city), Some(&city.bundles["bus-1"]));
    let mut bus = bus_of(&city.bundles["bus-1"], 1);
    let id = bus.create(1, 1);
    hub.round(&one, &mut bus).await;

    let browser = client(&ca(&city), None);
    let url = format!("{}/api/v1/requests/{id}/events", hub.url);
    // The event as JSON, with the session cookie when there is one; the status.
    let post_event = async |cookie: Option<&str>, event: serde_json::Value| {
        let mut request = browser.post(&url).json(&event);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send().await.unwrap().status().as_u16()
    };
    let approved = serde_json::json!({"kind": "approved"});
    assert_eq!(post_event(None, approved.clone()).await, 401);
    let cookie = central_it_cookie(&browser, &hub).await;
    let rejected = serde_json::json!({"kind": "rejected", "reason": "the register says otherwise"});
    assert_eq!(post_event(Some(&cookie), rejected).await, 201);
    assert_eq!(
        post_event(Some(&cookie), approved).await,
        409,
        "a rejected request cannot be approved"
    );

    let answer = hub.round(&one, &mut bus).await;
    assert_eq!(answer.docs.len(), 1);
    let record = bus.records.get_mut(&id).unwrap();
    assert_eq!(record.status().unwrap().code(), "rejected");
    let last = record.events().unwrap().pop().unwrap();
    assert_eq!(
        (last.by.as_str(), last.device.as_str()),
        ("staff:it", "hub")
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_is_refused_before_the_media_type_and_the_size() {
    let city = city(&["bus-1"]);
    let hub = RunningHub::start(&city.config).await;
    let one = client(&ca(&city), Some(&city.bundles["bus-1"]));
    revoke_device(&city.ca_dir, &"bus-1".parse().unwrap(), now()).unwrap();

    let (status, body) = post_to_upload(&one, &hub.url, "application/json", "{}")
        .await
        .unwrap();
    assert_eq!((status, code_of(&body).as_str()), (403, "device-revoked"));

    let limit = busloket_sync::protocol::MAX_BODY_BYTES;
    let (status, body) = post_upload(&one, &hub.url, vec![7; limit + (1 << 20)])
        .await
        .unwrap();
    assert_eq!((status, code_of(&body).as_str()), (403, "device-revoked"));

    let entries = hub
        .state
        .hub
        .storage()
        .quarantine_entries(&"bus-1".parse().unwrap())
        .unwrap();
    let kept: Vec<(&str, u64)> = entries
        .iter()
        .map(|entry| (entry.code.as_str(), entry.size))
        .collect();
    assert_eq!(
        kept,
        vec![("device-revoked", 2), ("device-revoked", limit as u64)],
        "both kept, the large one up to the limit only"
    );

    // Central IT sees both on the device's quarantine page, without their content.
    let browser = client(&ca(&city), None);
    let cookie = central_it_cookie(&browser, &hub).await;
    let page = get_signed_in(&browser, &hub, "/devices/bus-1/quarantine?lang=en", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("<th scope=\"col\">Code</th>"), "{page}");
    assert_eq!(
        page.matches("<td><code>device-revoked</code></td>").count(),
        2
    );
    hub.stop().await;
}

fn usernames(bytes: &[u8]) -> Vec<String> {
    busloket_sync::staff::parse_staff_file(std::str::from_utf8(bytes).unwrap())
        .unwrap()
        .into_iter()
        .map(|entry| entry.username)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_staff_file_sent_to_the_buses_holds_the_bus_clerks_only() {
    let city = city(&["bus-1"]);
    let hub = RunningHub::start(&city.config).await;
    let one = client(&ca(&city), Some(&city.bundles["bus-1"]));
    let mut bus = bus_of(&city.bundles["bus-1"], 1);
    let original = std::fs::read_to_string(&city.config.staff_file).unwrap();

    let answer = hub.round(&one, &mut bus).await;
    let staff = answer.files.iter().find(|f| f.name == "staff").unwrap();
    assert_eq!(usernames(&staff.bytes), vec!["clerk"]);
    let text = String::from_utf8(staff.bytes.clone()).unwrap();
    assert!(!text.contains("Ilse Tack") && !text.contains("central-it"));
    let first = staff.version;
    // Not central IT's password hash.
    let it_hash = original
        .lines()
        .find_map(|line| line.strip_prefix("password_hash = \""))
        .unwrap()
        .trim_end_matches('"');
    assert!(!text.contains(it_hash));

    // A change to central IT's entry alone sends nothing new.
    std::fs::write(
        &city.config.staff_file,
        original.replace("Ilse Tack", "Ilse Tack-Peeters"),
    )
    .unwrap();
    assert!(hub.round(&one, &mut bus).await.files.is_empty());

    // A change to a bus clerk's entry does, with a new version.
    std::fs::write(
        &city.config.staff_file,
        original
            .replace("Ilse Tack", "Ilse Tack-Peeters")
            .replace("Jan Clerk", "Jan Klerk-Janssens"),
    )
    .unwrap();
    let answer = hub.round(&one, &mut bus).await;
    assert_eq!(answer.files.len(), 1);
    assert!(answer.files[0].version > first);
    let text = String::from_utf8(answer.files[0].bytes.clone()).unwrap();
    assert!(text.contains("Jan Klerk-Janssens") && !text.contains("Ilse"));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buses_trip_log_is_there_for_central_it() {
    use busloket_sync::protocol::TripLine;
    use busloket_sync::stops::Position;
    use busloket_sync::trip::{TripEntry, TripEvent};
    let city = city(&["bus-1"]);
    let hub = RunningHub::start(&city.config).await;
    let one = client(&ca(&city), Some(&city.bundles["bus-1"]));
    let mut bus = bus_of(&city.bundles["bus-1"], 1);
    // Two points 1 km apart, the second one also an arrival.
    let point = |number: u64, north_m: f64| TripLine {
        number,
        entry: TripEntry {
            at: crate::support::time(number as i64 * 60),
            event: TripEvent::Point {
                position: Position {
                    latitude: 50.8279 + north_m / 111_195.0,
                    longitude: 3.2649,
                },
                speed_mps: Some(8.0),
            },
        },
    };
    bus.trip = vec![point(1, 0.0), point(2, 1000.0)];
    let answer = hub.round(&one, &mut bus).await;
    assert_eq!(answer.trip_acked, 2);

    let browser = client(&ca(&city), None);
    let url = format!("{}/api/v1/devices/bus-1/trip", hub.url);
    assert_eq!(
        browser.get(&url).send().await.unwrap().status().as_u16(),
        401
    );
    let cookie = central_it_cookie(&browser, &hub).await;
    let trip: serde_json::Value =
        get_signed_in(&browser, &hub, "/api/v1/devices/bus-1/trip", &cookie)
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(trip["lines"].as_array().unwrap().len(), 2, "{trip:#}");
    assert_eq!(trip["lines"][1]["number"], 2);
    assert!(
        (trip["route_km"].as_f64().unwrap() - 1.0).abs() < 0.01,
        "{trip:#}"
    );
    hub.stop().await;
}
