//! The indicators' rows and report: visits counted once a day per citizen and stop, the
//! kilometres avoided by the formula, local days, the bus's kilometres per day, rows that keep no
//! name, postcode lists and periods checked.

use busloket_sync::national_number::NationalNumber;
use busloket_sync::record::{Fix, NewRequest, RequestRecord};
use busloket_sync::trip::TripEvent;
use chrono::TimeZone;

use super::*;

const TOWN_HALL: Position = Position {
    latitude: 50.8277,
    longitude: 3.2647,
};
/// A stop in Marke, about 3.5 km south-west of the town hall.
const MARKE: Position = Position {
    latitude: 50.8060,
    longitude: 3.2330,
};

fn schedule() -> StopSchedule {
    StopSchedule::parse(
        r#"
[[stop]]
id = "marke"
name = "Marke, kerk"
latitude = 50.8060
longitude = 3.2330
radius_m = 60
visits = ["tue 09:00-12:00"]
"#,
    )
    .unwrap()
}

fn settings() -> Settings {
    Settings {
        town_hall: Place {
            name: "Stadhuis".into(),
            position: TOWN_HALL,
        },
        postcodes: Gazetteer::parse(
            r#"
[[postcode]]
code = "8510"
name = "Marke"
latitude = 50.8000
longitude = 3.2300

[[postcode]]
code = "8500"
name = "Kortrijk"
latitude = 50.8252
longitude = 3.2638
"#,
        )
        .unwrap(),
        road_factor: 1.3,
    }
}

/// 3 November 2026, a Tuesday, at `hour`:`minute` in Brussels (UTC+1).
fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    CITY_TIME_ZONE
        .with_ymd_and_hms(2026, 11, day, hour, minute, 0)
        .unwrap()
        .with_timezone(&Utc)
}

fn row(at: DateTime<Utc>, stop: Option<&str>, visitor: u8, home: Option<&str>) -> IndicatorRow {
    IndicatorRow {
        at_ms: at.timestamp_millis(),
        device: "bus-1".parse().unwrap(),
        stop: stop.map(|stop| stop.parse().unwrap()),
        place: None,
        document: "birth-extract".parse().unwrap(),
        channel: Channel::BusKiosk,
        status: Status::Submitted,
        home: home.map(|code| code.parse().unwrap()),
        visitor: [visitor; 16],
    }
}

fn november(from: u32, to: u32) -> Period {
    Period::new(
        NaiveDate::from_ymd_opt(2026, 11, from).unwrap(),
        NaiveDate::from_ymd_opt(2026, 11, to).unwrap(),
    )
    .unwrap()
}

#[test]
fn one_citizen_asking_for_three_documents_is_one_visit() {
    let mut rows = vec![
        row(at(3, 9, 10), Some("marke"), 1, Some("8510")),
        row(at(3, 9, 12), Some("marke"), 1, Some("8510")),
        row(at(3, 9, 15), Some("marke"), 1, Some("8510")),
        row(at(3, 10, 0), Some("marke"), 2, None),
    ];
    rows[0].status = Status::HandedOver;
    rows[1].status = Status::Emailed;
    rows[2].status = Status::Cancelled;
    let report = report(&rows, &[], &schedule(), Some(&settings()), november(1, 7));
    assert_eq!(report.stop_days.len(), 1);
    let day = &report.stop_days[0];
    assert_eq!(day.stop_name.as_deref(), Some("Marke, kerk"));
    assert_eq!(
        (
            day.counts.visits,
            day.counts.requests,
            day.counts.delivered,
            day.counts.visits_estimated
        ),
        (2, 4, 2, 1)
    );
    assert_eq!(report.totals.visits_without_home, 1);
    assert_eq!(report.totals.visits_without_place, 0);
    // Every day of the period is in `days`, the empty ones too.
    assert_eq!(report.days.len(), 7);
    assert_eq!(report.days[2].counts.visits, 2);
    assert_eq!(report.days[3].counts, Counts::default());
}

#[test]
fn the_kilometres_avoided_follow_the_formula() {
    let settings = settings();
    let home = settings.postcodes.get("8510".parse().unwrap()).unwrap();
    let to_hall = home.position.distance_m(&TOWN_HALL);
    let to_stop = home.position.distance_m(&MARKE);
    // The home in Marke is about 3.5 km from the town hall and under 1 km from the stop.
    assert!((3_000.0..4_500.0).contains(&to_hall), "{to_hall}");
    assert!(to_stop < 1_000.0, "{to_stop}");
    let expected = 2.0 * 1.3 * (to_hall - to_stop) / 1000.0;
    let rows = [row(at(3, 9, 10), Some("marke"), 1, Some("8510"))];
    let report = report(&rows, &[], &schedule(), Some(&settings), november(3, 3));
    assert!((report.totals.counts.km_avoided - expected).abs() < 1e-9);
    assert_eq!(report.stops[0].counts.km_avoided, expected);

    // A citizen of the centre, whose town hall is nearer than the stop, avoided nothing.
    let rows = [row(at(3, 9, 10), Some("marke"), 1, Some("8500"))];
    let report = super::report(&rows, &[], &schedule(), Some(&settings), november(3, 3));
    assert_eq!(report.totals.counts.km_avoided, 0.0);
    assert_eq!(report.totals.counts.visits_estimated, 1);
}

#[test]
fn a_stop_the_schedule_no_longer_has_is_placed_by_its_fix() {
    let mut with_fix = row(at(3, 9, 10), Some("old-stop"), 1, Some("8510"));
    with_fix.place = Some(MARKE);
    let without = row(at(3, 9, 20), Some("old-stop"), 2, Some("8510"));
    let report = report(
        &[with_fix, without],
        &[],
        &schedule(),
        Some(&settings()),
        november(3, 3),
    );
    assert_eq!(report.totals.counts.visits, 2);
    assert_eq!(report.totals.counts.visits_estimated, 1);
    assert_eq!(report.totals.visits_without_place, 1);
    assert!(report.totals.counts.km_avoided > 5.0);
    assert_eq!(report.stops[0].stop_name, None);
}

#[test]
fn days_are_local_days() {
    // 23:30 UTC on 2 November is 00:30 on 3 November in Brussels.
    let late = Utc.with_ymd_and_hms(2026, 11, 2, 23, 30, 0).unwrap();
    assert_eq!(
        local_day(late),
        NaiveDate::from_ymd_opt(2026, 11, 3).unwrap()
    );
    let rows = [row(late, None, 1, None)];
    let report = report(&rows, &[], &schedule(), None, november(3, 3));
    assert_eq!(report.totals.counts.requests, 1);
    assert_eq!(report.stop_days[0].stop, None);
    let report = super::report(&rows, &[], &schedule(), None, november(2, 2));
    assert_eq!(report.totals.counts.requests, 0);
    // The period's span starts at local midnight.
    let (start, end) = november(3, 3).span();
    assert_eq!(start, Utc.with_ymd_and_hms(2026, 11, 2, 23, 0, 0).unwrap());
    assert_eq!(end, Utc.with_ymd_and_hms(2026, 11, 3, 23, 0, 0).unwrap());
}

#[test]
fn without_settings_nothing_is_estimated() {
    let rows = [row(at(3, 9, 10), Some("marke"), 1, Some("8510"))];
    let report = report(&rows, &[], &schedule(), None, november(3, 3));
    assert_eq!(report.method, None);
    assert_eq!(report.totals.counts.visits, 1);
    assert_eq!(report.totals.counts.km_avoided, 0.0);
    assert_eq!(report.totals.visits_without_home, 0);
}

#[test]
fn the_bus_kilometres_come_from_the_trip_log_per_day() {
    let point = |at: DateTime<Utc>, latitude: f64| TripEntry {
        at,
        event: TripEvent::Point {
            position: Position {
                latitude,
                longitude: 3.2647,
            },
            speed_mps: Some(10.0),
        },
    };
    // 0.009° of latitude is about 1 km.
    let entries = vec![
        point(at(3, 8, 0), 50.8000),
        point(at(3, 8, 5), 50.8090),
        point(at(3, 8, 10), 50.8180),
        point(at(4, 8, 0), 50.8180),
        point(at(4, 8, 5), 50.8090),
    ];
    let trips = vec![("bus-1".parse().unwrap(), entries)];
    let report = report(&[], &trips, &schedule(), None, november(1, 30));
    assert_eq!(report.buses.len(), 2);
    assert!(
        (report.buses[0].km - 2.0).abs() < 0.01,
        "{:?}",
        report.buses
    );
    assert!((report.buses[1].km - 1.0).abs() < 0.01);
    assert!((report.totals.bus_km - 3.0).abs() < 0.02);
    assert_eq!(report.days[2].bus_km, report.buses[0].km);
    // A period leaves out the days outside it.
    let report = super::report(&[], &trips, &schedule(), None, november(4, 4));
    assert_eq!(report.buses.len(), 1);
}

#[test]
fn a_row_keeps_no_name_and_a_pseudonym_for_the_day() {
    let key = VisitorKey::from_bytes([7; 32]);
    let mut new: NewRequest = serde_json::from_value(serde_json::json!({
        "id": "019a4a6f-8000-7000-8000-000000000001",
        "document": "birth-extract",
        "subject": {"national_number": "85073100328", "name": "Demo Persoon"},
        "requester": {"national_number": "85073100328", "name": "Demo Persoon"},
        "relation": "self",
        "channel": "bus-kiosk",
        "language": "nl",
        "document_language": "nl",
        "delivery": {"method": "print-here", "email": null},
        "authentication": "card-read",
        "purpose": null,
        "origin": {"device": "bus-1", "station": "kiosk-1", "stop": "marke", "at": at(3, 9, 10)},
        "queue_number": 1,
        "evidence": null,
        "requester_postcode": "8510"
    }))
    .unwrap();
    new.origin.whereabouts.fix = Some(Fix {
        latitude: MARKE.latitude,
        longitude: MARKE.longitude,
        at: at(3, 9, 10),
        speed_mps: None,
    });
    let event = busloket_sync::record::EventId::new(1, [0; 10]);
    let actor = automerge::ActorId::from([1u8; 16]);
    let record = RequestRecord::create(&new, actor, event, "kiosk:kiosk-1").unwrap();
    let row = IndicatorRow::of(&record.view().unwrap(), &key);
    assert_eq!(row.home.map(Postcode::number), Some(8510));
    assert_eq!(row.stop.as_ref().map(StopId::as_str), Some("marke"));
    assert_eq!(row.place, Some(MARKE));
    let bytes = postcard::to_stdvec(&row).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        !text.contains("85073100328") && !text.contains("Demo"),
        "{text}"
    );

    let number = NationalNumber::parse("85.07.31-003.28").unwrap();
    let day = NaiveDate::from_ymd_opt(2026, 11, 3).unwrap();
    assert_eq!(row.visitor, key.pseudonym(number.digits(), day));
    assert_ne!(
        row.visitor,
        key.pseudonym(number.digits(), day.succ_opt().unwrap())
    );
    assert_ne!(
        row.visitor,
        VisitorKey::from_bytes([8; 32]).pseudonym(number.digits(), day)
    );
}

#[test]
fn a_postcode_list_is_checked_entry_by_entry() {
    assert_eq!(settings().postcodes.len(), 2);
    let entry = |code: &str, latitude: f64| {
        format!(
            "[[postcode]]\ncode = \"{code}\"\nname = \"X\"\nlatitude = {latitude}\nlongitude = 3.2\n"
        )
    };
    assert_eq!(
        Gazetteer::parse(&entry("850", 50.8)),
        Err(GazetteerError::Entry {
            index: 1,
            reason: "`850` is not a postcode (four digits)".into()
        })
    );
    let error = Gazetteer::parse(&entry("8500", 95.0)).unwrap_err();
    assert!(error.to_string().contains("not a position"), "{error}");
    let twice = format!("{}\n{}", entry("8500", 50.8), entry("8500", 50.9));
    assert_eq!(
        Gazetteer::parse(&twice),
        Err(GazetteerError::Duplicate("8500".parse().unwrap()))
    );
    let unknown = entry("8500", 50.8).replace("name", "naam");
    assert!(matches!(
        Gazetteer::parse(&unknown),
        Err(GazetteerError::Toml(_))
    ));
    let example = include_str!("../../../../deploy/postcodes.example.toml");
    let gazetteer = Gazetteer::parse(example).unwrap();
    assert!(gazetteer.get("8500".parse().unwrap()).is_some());
    assert!(gazetteer.get("7700".parse().unwrap()).is_some());
}

#[test]
fn a_period_is_checked() {
    let day = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
    assert!(Period::new(day(5), day(4)).is_err());
    assert!(Period::new(day(1), day(1)).is_ok());
    let long = Period::new(day(1) - chrono::Days::new(400), day(1)).unwrap_err();
    assert!(long.contains("at most 366"), "{long}");
    let last = Period::last(28, day(28));
    assert_eq!((last.from, last.to), (day(1), day(28)));
    assert_eq!(last.days().count(), 28);
}
