//! Durability: a child process (this test binary, re-executed in the child role) inserts and
//! updates records in a loop and prints each id once the store call has returned; the parent
//! kills it with SIGKILL in mid-stream, reopens the store, and finds everything that was
//! reported saved.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use busloket_sync::at_rest::AtRestKey;
use busloket_sync::record::{EligibilityOutcome, EventKind, RequestRecord};
use busloket_sync::store::Store;
use busloket_sync::terms::RequestId;

use crate::support::{actor, event_id, new_event, new_request, request_id};

const CHILD_ROLE: &str = "BUSLOKET_CRASH_CHILD";
const THIS_TEST: &str = "crash::what_was_reported_saved_survives_sigkill";
/// How many saves the parent waits for before it kills the child.
const SAVES_BEFORE_KILL: usize = 60;
/// The child stops by itself after this many records, should nobody kill it.
const CHILD_LIMIT: u32 = 5_000;

#[test]
fn what_was_reported_saved_survives_sigkill() {
    if let Some(dir) = std::env::var_os(CHILD_ROLE) {
        return child(Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("at-rest.key");
    AtRestKey::generate_file(&key_path).unwrap();
    let store_dir = dir.path().join("store");

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", THIS_TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_ROLE, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut inserted: Vec<RequestId> = Vec::new();
    let mut updated: Vec<RequestId> = Vec::new();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines {
        let line = line.unwrap();
        let mut words = line.split_whitespace();
        match (words.next(), words.next().map(str::parse::<RequestId>)) {
            (Some("inserted"), Some(Ok(id))) => inserted.push(id),
            (Some("updated"), Some(Ok(id))) => updated.push(id),
            _ => continue,
        }
        if inserted.len() + updated.len() >= SAVES_BEFORE_KILL {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(
        inserted.len() + updated.len() >= SAVES_BEFORE_KILL,
        "the child ended early: {status}"
    );

    let store = Store::open_with_key_file(&store_dir, &key_path).unwrap();
    for id in &inserted {
        let record = store
            .load(*id)
            .unwrap()
            .unwrap_or_else(|| panic!("request {id} was reported saved"));
        record.view().unwrap();
        assert!(store.summary(*id).unwrap().is_some());
    }
    for id in &updated {
        let events = store.load(*id).unwrap().unwrap().events().unwrap();
        assert_eq!(events.len(), 2, "the update of {id} was reported saved");
    }
    assert!(store.count() >= inserted.len());
    // The store still takes writes after the crash.
    let mut next = RequestRecord::create(
        &new_request(CHILD_LIMIT + 1),
        actor(1),
        event_id(1),
        "staff:jan",
    )
    .unwrap();
    store.insert_new(&mut next).unwrap();
}

/// Inserts request n, then appends an event to it, printing each after the store returns.
fn child(dir: &Path) {
    let store = Store::open_with_key_file(&dir.join("store"), &dir.join("at-rest.key")).unwrap();
    for n in 1..=CHILD_LIMIT {
        let mut record =
            RequestRecord::create(&new_request(n), actor(1), event_id(n), "kiosk:kiosk-1").unwrap();
        store.insert_new(&mut record).unwrap();
        println!("inserted {}", request_id(n));
        let decided = EventKind::EligibilityDecided {
            outcome: EligibilityOutcome::Automatic,
            reason: None,
        };
        let event = new_event(CHILD_LIMIT + n, 900, "hub:rules", "hub", decided);
        store
            .update(request_id(n), |record| record.append(&actor(1), event))
            .unwrap();
        println!("updated {}", request_id(n));
    }
}
