//! The access log: entries chain, read back and verify; each kind of tampering (an edited,
//! removed, reordered or re-sealed entry, a cut-off tail) is found and named by the first bad
//! sequence number. Tampering edits the sled trees directly, as someone with the disk could.

use busloket_sync::access_log::{AccessEntry, AccessLog, AccessLogError, Breach};
use busloket_sync::store::Store;
use sha2::{Digest, Sha256};

use crate::support::{device, key, national_number, request_id, time};

fn entry(n: u32) -> AccessEntry {
    AccessEntry {
        at: time(i64::from(n)),
        who: format!("staff:clerk-{n}"),
        subject: national_number(),
        data: vec!["identity".into(), "address".into()],
        purpose: "birth extract request".into(),
        request: Some(request_id(n)),
        device: device("bus-1"),
    }
}

/// A sled database with an access log of five entries.
fn log_of_five() -> (tempfile::TempDir, sled::Db, AccessLog) {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let log = AccessLog::open(&db, key(1)).unwrap();
    for n in 1..=5 {
        assert_eq!(log.append(&entry(n)).unwrap(), u64::from(n));
    }
    (dir, db, log)
}

fn entries_tree(db: &sled::Db) -> sled::Tree {
    db.open_tree("access_log").unwrap()
}

fn stored(db: &sled::Db, seq: u64) -> Vec<u8> {
    entries_tree(db)
        .get(seq.to_be_bytes())
        .unwrap()
        .unwrap()
        .to_vec()
}

fn put(db: &sled::Db, seq: u64, value: Vec<u8>) {
    entries_tree(db).insert(seq.to_be_bytes(), value).unwrap();
}

fn assert_broken(log: &AccessLog, seq: u64, breach: Breach) {
    match log.verify() {
        Err(AccessLogError::Broken {
            seq: found,
            breach: what,
        }) => {
            assert_eq!(
                (found, what),
                (seq, breach),
                "expected entry {seq}: {breach}"
            )
        }
        other => panic!("expected entry {seq} to be broken ({breach}), got {other:?}"),
    }
}

/// The bytes the log hashes and seals (its documented format): a domain tag, then JSON.
fn canonical(entry: &AccessEntry) -> Vec<u8> {
    [
        b"busloket access log v1\n".as_slice(),
        &serde_json::to_vec(entry).unwrap(),
    ]
    .concat()
}

fn place(seq: u64) -> Vec<u8> {
    [b"access_log/".as_slice(), &seq.to_be_bytes()].concat()
}

#[test]
fn entries_chain_read_back_and_verify() {
    let (_dir, _db, log) = log_of_five();
    assert_eq!(log.verify().unwrap(), 5);
    let read = log.entries(2, 2).unwrap();
    assert_eq!(
        read.iter().map(|logged| logged.seq).collect::<Vec<_>>(),
        [2, 3]
    );
    assert_eq!(read[0].entry, entry(2));
    let head = log.head().unwrap().unwrap();
    assert_eq!(head.seq, 5);
    assert_eq!(log.entries(5, 10).unwrap()[0].chain, head.hash);
    assert!(log.entries(6, 10).unwrap().is_empty());
}

#[test]
fn an_empty_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let log = AccessLog::open(&db, key(1)).unwrap();
    assert_eq!(log.verify().unwrap(), 0);
    assert!(log.head().unwrap().is_none());
}

#[test]
fn an_edited_entry_is_found() {
    let (_dir, db, log) = log_of_five();
    let mut value = stored(&db, 3);
    let last = value.len() - 1;
    value[last] ^= 1;
    put(&db, 3, value);
    assert_broken(&log, 3, Breach::Unreadable);
}

#[test]
fn an_edited_chain_hash_is_found() {
    let (_dir, db, log) = log_of_five();
    let mut value = stored(&db, 3);
    value[0] ^= 1;
    put(&db, 3, value);
    assert_broken(&log, 3, Breach::Altered);
}

#[test]
fn a_removed_entry_is_found() {
    let (_dir, db, log) = log_of_five();
    entries_tree(&db).remove(3u64.to_be_bytes()).unwrap();
    assert_broken(&log, 3, Breach::Missing);
}

#[test]
fn a_cut_off_tail_is_found() {
    let (_dir, db, log) = log_of_five();
    entries_tree(&db).remove(5u64.to_be_bytes()).unwrap();
    entries_tree(&db).remove(4u64.to_be_bytes()).unwrap();
    assert_broken(&log, 4, Breach::Missing);
}

#[test]
fn reordered_entries_are_found() {
    let (_dir, db, log) = log_of_five();
    let (two, three) = (stored(&db, 2), stored(&db, 3));
    put(&db, 2, three);
    put(&db, 3, two);
    assert_broken(&log, 2, Breach::Unreadable);
}

#[test]
fn an_entry_re_sealed_with_other_content_is_found() {
    let (_dir, db, log) = log_of_five();
    let mut forged = entry(3);
    forged.purpose = "nothing to see".into();
    let chain = stored(&db, 3)[..32].to_vec();
    put(
        &db,
        3,
        [chain, key(1).seal(&place(3), &canonical(&forged))].concat(),
    );
    assert_broken(&log, 3, Breach::Altered);
}

#[test]
fn a_forged_entry_with_a_recomputed_hash_is_found_at_the_next_entry() {
    let (_dir, db, log) = log_of_five();
    let previous: [u8; 32] = stored(&db, 2)[..32].try_into().unwrap();
    let mut forged = entry(3);
    forged.who = "staff:someone-else".into();
    let hash = Sha256::new()
        .chain_update(previous)
        .chain_update(canonical(&forged))
        .finalize();
    put(
        &db,
        3,
        [hash.to_vec(), key(1).seal(&place(3), &canonical(&forged))].concat(),
    );
    assert_broken(&log, 4, Breach::Altered);
}

#[test]
fn invalid_entries_are_refused() {
    let (_dir, _db, log) = log_of_five();
    let mut nameless = entry(6);
    nameless.who = " ".into();
    assert!(matches!(
        log.append(&nameless),
        Err(AccessLogError::Invalid(_))
    ));
    let mut unknown = entry(6);
    unknown.data.push("shoe-size".into());
    let error = log.append(&unknown).unwrap_err();
    assert_eq!(
        error.to_string(),
        "access-log entry refused: unknown data category `shoe-size`"
    );
    assert_eq!(log.verify().unwrap(), 5, "nothing was written");
}

#[test]
fn the_store_keeps_its_access_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), key(1)).unwrap();
    assert_eq!(store.access_log().append(&entry(1)).unwrap(), 1);
    assert_eq!(store.access_log().append(&entry(2)).unwrap(), 2);
    drop(store);
    let store = Store::open(dir.path(), key(1)).unwrap();
    assert_eq!(store.access_log().verify().unwrap(), 2);
    assert_eq!(store.access_log().append(&entry(3)).unwrap(), 3);
}
