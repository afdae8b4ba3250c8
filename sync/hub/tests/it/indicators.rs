//! The indicators through the real server: requests and a trip log uploaded by a bus, then the
//! page, its CSV and JSON exports; and the rows written again for a store that had none.

use busloket_hub::config::IndicatorsConfig;
use busloket_hub::indicators::{CITY_TIME_ZONE, Gazetteer, Place};
use busloket_sync::at_rest::AtRestKey;
use busloket_sync::protocol::TripLine;
use busloket_sync::record::{NewRequest, Origin, RequestRecord};
use busloket_sync::stops::Position;
use busloket_sync::terms::{Postcode, RequestId};
use busloket_sync::trip::{TripEntry, TripEvent};
use chrono::{DateTime, TimeZone, Utc};

use crate::server::{ca, central_it_cookie, get_signed_in};
use crate::support::{Bus, RunningHub, bus_of, city, client, event_id, fixtures};

const STOPS: &str = r#"
[[stop]]
id = "marke"
name = "Marke, kerk"
latitude = 50.8060
longitude = 3.2330
radius_m = 60
visits = ["tue 09:00-12:00"]

[[stop]]
id = "markt"
name = "Grote Markt"
latitude = 50.8279
longitude = 3.2649
radius_m = 60
visits = ["wed 09:00-12:00"]
"#;

const MARKE: Position = Position {
    latitude: 50.8060,
    longitude: 3.2330,
};
const MARKT: Position = Position {
    latitude: 50.8279,
    longitude: 3.2649,
};
const TOWN_HALL: Position = Position {
    latitude: 50.8277,
    longitude: 3.2647,
};

/// `day` November 2026 at `hour`:`minute`, Brussels time.
fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    CITY_TIME_ZONE
        .with_ymd_and_hms(2026, 11, day, hour, minute, 0)
        .unwrap()
        .with_timezone(&Utc)
}

/// A request of `bus` made at `when` at `stop` by the citizen `number`, who lives in `postcode`.
fn request(
    bus: &mut Bus,
    n: u32,
    when: DateTime<Utc>,
    stop: &str,
    number: &str,
    postcode: Option<&str>,
) -> RequestId {
    let id = RequestId::new(when.timestamp_millis() as u64, [n as u8; 10]);
    let fixture = fixtures::new_request(n);
    let person = busloket_sync::record::Person {
        national_number: number.parse().unwrap(),
        name: "Demo Persoon".into(),
    };
    let new = NewRequest {
        id,
        subject: person.clone(),
        requester: person,
        origin: Origin {
            device: bus.id.clone(),
            stop: Some(stop.parse().unwrap()),
            at: when,
            ..fixture.origin.clone()
        },
        requester_postcode: postcode.map(|code| code.parse::<Postcode>().unwrap()),
        ..fixture
    };
    let record =
        RequestRecord::create(&new, bus.actor.clone(), event_id(n), "kiosk:kiosk-1").unwrap();
    bus.records.insert(id, record);
    id
}

fn point(number: u64, when: DateTime<Utc>, north_m: f64) -> TripLine {
    TripLine {
        number,
        entry: TripEntry {
            at: when,
            event: TripEvent::Point {
                position: Position {
                    latitude: 50.8060 + north_m / 111_195.0,
                    longitude: 3.2330,
                },
                speed_mps: Some(8.0),
            },
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_indicators_count_visits_documents_and_kilometres() {
    let mut city = city(&["bus-1"]);
    let dir = city.config.data_dir.parent().unwrap().to_owned();
    std::fs::write(dir.join("stops.toml"), STOPS).unwrap();
    std::fs::write(
        dir.join("postcodes.toml"),
        include_str!("../../../../deploy/postcodes.example.toml"),
    )
    .unwrap();
    city.config.stops_file = Some(dir.join("stops.toml"));
    city.config.indicators = Some(IndicatorsConfig {
        town_hall: Place {
            name: "Stadhuis Kortrijk".into(),
            position: TOWN_HALL,
        },
        postcodes_file: dir.join("postcodes.toml"),
        road_factor: 1.3,
    });
    let hub = RunningHub::start(&city.config).await;
    let one = client(&ca(&city), Some(&city.bundles["bus-1"]));
    let mut bus = bus_of(&city.bundles["bus-1"], 1);

    // Tuesday 3 November at Marke: a citizen of Marke (8510) asks for three documents, one who
    // typed in their identity for one. Wednesday at the Markt: a citizen of Kortrijk (8500).
    request(
        &mut bus,
        1,
        at(3, 9, 10),
        "marke",
        "85073100328",
        Some("8510"),
    );
    request(
        &mut bus,
        2,
        at(3, 9, 12),
        "marke",
        "85073100328",
        Some("8510"),
    );
    request(
        &mut bus,
        3,
        at(3, 9, 14),
        "marke",
        "85073100328",
        Some("8510"),
    );
    request(&mut bus, 4, at(3, 9, 40), "marke", "78031203701", None);
    let markt = request(
        &mut bus,
        5,
        at(4, 10, 0),
        "markt",
        "72110514335",
        Some("8500"),
    );
    // The bus drove 2 km on Tuesday.
    bus.trip = vec![
        point(1, at(3, 8, 30), 0.0),
        point(2, at(3, 8, 35), 1000.0),
        point(3, at(3, 8, 40), 2000.0),
    ];
    hub.round(&one, &mut bus).await;

    let browser = client(&ca(&city), None);
    let json_path = "/api/v1/indicators?from=2026-11-03&to=2026-11-04";
    let anonymous = browser
        .get(format!("{}{json_path}", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let cookie = central_it_cookie(&browser, &hub).await;
    let report: serde_json::Value = get_signed_in(&browser, &hub, json_path, &cookie)
        .await
        .json()
        .await
        .unwrap();
    let totals = &report["totals"];
    assert_eq!(totals["visits"], 3, "{report:#}");
    assert_eq!(totals["requests"], 5);
    assert_eq!(totals["visits_estimated"], 2);
    assert_eq!(totals["visits_without_home"], 1);
    assert!(
        (totals["bus_km"].as_f64().unwrap() - 2.0).abs() < 0.01,
        "{totals}"
    );
    // Each visit: 2 × 1.3 × (home–town hall − home–stop), home the postcode's point.
    let postcodes =
        Gazetteer::parse(include_str!("../../../../deploy/postcodes.example.toml")).unwrap();
    let avoided = |code: &str, stop: Position| {
        let home = postcodes.get(code.parse().unwrap()).unwrap().position;
        2.0 * 1.3 * (home.distance_m(&TOWN_HALL) - home.distance_m(&stop)).max(0.0) / 1000.0
    };
    let expected = avoided("8510", MARKE) + avoided("8500", MARKT);
    let km = totals["km_avoided"].as_f64().unwrap();
    assert!((km - expected).abs() < 1e-6, "{km} vs {expected}");
    assert!(
        km > 1.0,
        "a citizen of Marke avoided the way to the centre: {km}"
    );
    assert_eq!(report["stops"][0]["stop"], "marke");
    assert_eq!(report["stops"][0]["stop_name"], "Marke, kerk");
    assert_eq!(report["stops"][0]["visits"], 2);
    assert_eq!(report["method"]["town_hall"]["name"], "Stadhuis Kortrijk");
    assert_eq!(report["days"].as_array().unwrap().len(), 2);

    // The CSV exports: a line per day and stop, a line per day and bus.
    let csv = get_signed_in(
        &browser,
        &hub,
        "/indicators/visits.csv?from=2026-11-03&to=2026-11-04",
        &cookie,
    )
    .await;
    assert_eq!(
        csv.headers()["content-type"].to_str().unwrap(),
        "text/csv; charset=utf-8"
    );
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("busloket-visits-2026-11-03-2026-11-04.csv")
    );
    let csv = csv.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert_eq!(
        lines[0],
        "day,stop,stop_name,visits,requests,delivered,visits_estimated,km_avoided"
    );
    assert!(
        lines[1].starts_with("2026-11-03,marke,\"Marke, kerk\",2,4,0,1,"),
        "{csv}"
    );
    assert!(
        lines[2].starts_with("2026-11-04,markt,Grote Markt,1,1,0,1,"),
        "{csv}"
    );
    let bus_csv = get_signed_in(
        &browser,
        &hub,
        "/indicators/bus.csv?from=2026-11-03&to=2026-11-04",
        &cookie,
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(
        bus_csv.starts_with("day,bus,km\r\n2026-11-03,bus-1,2.0"),
        "{bus_csv}"
    );

    // The page, in French: the figures, the method next to them, the plots, no script.
    let page = get_signed_in(
        &browser,
        &hub,
        "/indicators?from=2026-11-03&to=2026-11-04&lang=fr",
        &cookie,
    )
    .await;
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<html lang="fr">"#));
    assert!(html.contains("Indicateurs du bus de services"));
    assert!(html.contains("Kilomètres épargnés aux citoyens (estimation)"));
    assert!(html.contains("Estimé sur 2 des 3 visites"), "{html}");
    assert!(html.contains("Stadhuis Kortrijk"));
    assert_eq!(html.matches(r#"role="img""#).count(), 2);
    assert!(html.contains("Marke, kerk"));
    assert!(!html.contains("<script"));
    assert!(!html.contains("85073100328") && !html.contains("Demo Persoon"));
    // The language links keep the period.
    assert!(html.contains("/indicators?from=2026-11-03&amp;to=2026-11-04&amp;lang=de"));

    // A bad period: said on the page (400) and in the API.
    let bad = get_signed_in(&browser, &hub, "/indicators?from=3-11-2026", &cookie).await;
    assert_eq!(bad.status().as_u16(), 400);
    assert!(bad.text().await.unwrap().contains("role=\"alert\""));
    let bad = get_signed_in(
        &browser,
        &hub,
        "/api/v1/indicators?from=2026-11-05&to=2026-11-04",
        &cookie,
    )
    .await;
    assert_eq!(bad.status().as_u16(), 400);

    // A decision of the city changes the request's row: cancelled at the hub, still a visit.
    let cancelled = browser
        .post(format!("{}/api/v1/requests/{markt}/events", hub.url))
        .header("cookie", &cookie)
        .json(&serde_json::json!({"kind": "cancelled", "reason": "dubbel"}))
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status().as_u16(), 201);
    let (start, end) = (at(4, 0, 0), at(5, 0, 0));
    let rows = hub.state.hub.storage().indicator_rows(start, end).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status.code(), "cancelled");

    // A store without rows (made before the indicators): they are written again at start. A
    // stored request that does not read (sealed right, but not a record) is left out and
    // logged; the hub still starts.
    hub.stop().await;
    {
        let db = sled::open(&city.config.data_dir).unwrap();
        db.drop_tree("indicators").unwrap();
        let key = AtRestKey::load_file(&city.config.at_rest_key).unwrap();
        let broken = RequestId::new(at(4, 11, 0).timestamp_millis() as u64, [9; 10]);
        let aad = [b"requests\0".as_slice(), broken.as_bytes()].concat();
        let value = [&1u64.to_be_bytes()[..], &key.seal(&aad, b"not a record")].concat();
        db.open_tree("requests")
            .unwrap()
            .insert(broken.as_bytes(), value)
            .unwrap();
        db.open_tree("meta")
            .unwrap()
            .remove("indicators-version")
            .unwrap();
        db.flush().unwrap();
    }
    let hub = RunningHub::start(&city.config).await;
    // Sessions live in memory: sign in again.
    let cookie = central_it_cookie(&browser, &hub).await;
    let again: serde_json::Value = get_signed_in(&browser, &hub, json_path, &cookie)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["totals"], report["totals"]);
    hub.stop().await;
}

#[test]
fn a_bad_postcode_list_stops_the_start_naming_the_file() {
    let mut city = city(&["bus-1"]);
    let dir = city.config.data_dir.parent().unwrap().to_owned();
    let file = dir.join("postcodes.toml");
    std::fs::write(
        &file,
        "[[postcode]]\ncode = \"85000\"\nname = \"Kortrijk\"\nlatitude = 50.8\nlongitude = 3.2\n",
    )
    .unwrap();
    city.config.indicators = Some(IndicatorsConfig {
        town_hall: Place {
            name: "Stadhuis".into(),
            position: TOWN_HALL,
        },
        postcodes_file: file.clone(),
        road_factor: 1.3,
    });
    let error = busloket_hub::server::AppState::open(&city.config)
        .expect_err("the hub refuses to start")
        .to_string();
    assert!(error.contains(&file.display().to_string()), "{error}");
    assert!(
        error.contains("postcode entry 1: `85000` is not a postcode"),
        "{error}"
    );
    std::fs::remove_file(&file).unwrap();
    let error = busloket_hub::server::AppState::open(&city.config)
        .expect_err("the hub refuses to start")
        .to_string();
    assert!(error.contains("cannot read the postcode list"), "{error}");
}
