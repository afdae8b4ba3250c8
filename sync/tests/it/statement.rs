//! The holder statement a citizen's card signs: its exact layout (a second implementation must
//! produce the same bytes), that every field the citizen chose changes it, that a line break in
//! a free-text field cannot forge a line, and that it survives the record's round trip.

use busloket_sync::record::{RequestRecord, holder_statement};
use expect_test::expect;

use crate::support::{actor, event_id, new_request};

#[test]
fn the_statement_has_a_fixed_layout() {
    let statement = String::from_utf8(holder_statement(&new_request(1))).unwrap();
    expect![[r#"
        busloket holder statement v1
        request: "0197729a-3c01-7707-8707-070700000001"
        document: "birth-extract"
        requester: "85073100328"
        subject: "85073100328"
        relation: "self"
        channel: "bus-kiosk"
        delivery: "print-here"
        email: null
        purpose: null
        device: "bus-1"
        station: "kiosk-1"
        stop: "markt"
        at: 1749974460000
    "#]]
    .assert_eq(&statement);
}

#[test]
fn every_chosen_field_changes_the_statement_and_decisions_do_not() {
    let base = new_request(1);
    let statement = holder_statement(&base);
    let mut changes = Vec::new();
    let mut other = base.clone();
    other.document = "residence-certificate".parse().unwrap();
    changes.push(other);
    let mut other = base.clone();
    other.purpose = Some("a job".into());
    changes.push(other);
    let mut other = base.clone();
    other.delivery.email = Some("marie@example.org".into());
    changes.push(other);
    let mut other = base.clone();
    other.origin.at += chrono::Duration::milliseconds(1);
    changes.push(other);
    let mut other = base.clone();
    other.id = new_request(2).id;
    changes.push(other);
    for changed in &changes {
        assert_ne!(holder_statement(changed), statement, "{changed:?}");
    }

    let mut decided = base.clone();
    decided.queue_number += 10;
    decided.evidence = None;
    assert_eq!(holder_statement(&decided), statement);
}

#[test]
fn a_line_break_in_the_purpose_cannot_forge_a_field() {
    let mut request = new_request(1);
    request.purpose = Some("work\nstation: \"kiosk-9\"".into());
    let statement = String::from_utf8(holder_statement(&request)).unwrap();
    assert_eq!(statement.lines().count(), 14, "{statement}");
    assert!(statement.contains(r#"purpose: "work\nstation: \"kiosk-9\"""#));
}

#[test]
fn the_statement_is_the_same_after_the_record_round_trip() {
    let new = new_request(1);
    let mut record = RequestRecord::create(&new, actor(1), event_id(1), "kiosk:kiosk-1").unwrap();
    let loaded = RequestRecord::load(&record.save()).unwrap();
    let fields = loaded.view().unwrap().fields;
    assert_eq!(holder_statement(&fields), holder_statement(&new));
}
