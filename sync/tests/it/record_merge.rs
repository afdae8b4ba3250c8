//! Merge properties of the request record: from a common base, two or three replicas (distinct
//! actors) append random events, now and then syncing with each other; then merging them in
//! every order gives the same view everywhere (events, status, conflicts), loses no event,
//! survives save → load, and merging again changes nothing.

use busloket_sync::record::{
    EligibilityOutcome, EventKind, RecordError, RequestRecord, RequestView, Status, conflicts,
    fold_status,
};
use proptest::collection::vec;
use proptest::prelude::*;

use crate::support::{actor, event_id, new_event, new_request};

#[derive(Debug, Clone)]
enum Op {
    /// Replica `replica` tries to append the event `choice` picks, `pause` seconds after its last.
    Append {
        replica: usize,
        choice: u8,
        detail: u8,
        pause: u16,
    },
    /// Replica `to` takes in everything `from` has.
    Sync { from: usize, to: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, any::<u8>(), any::<u8>(), 0..120u16)
            .prop_map(|(replica, choice, detail, pause)| Op::Append { replica, choice, detail, pause }),
        1 => (0..3usize, 0..3usize).prop_map(|(from, to)| Op::Sync { from, to }),
    ]
}

/// The event a replica tries: a resolution (keeping the conflict sides `detail`'s bits pick)
/// half of the time it is in conflict, else a kind weighted towards the steps that move a
/// request on, so that histories get long. Many tries do not fit the status and are refused;
/// that is part of what is tested.
fn kind(record: &RequestRecord, choice: u8, detail: u8) -> EventKind {
    let events = record.events().unwrap();
    let open = conflicts(&events);
    if fold_status(&events) == Status::InConflict && choice.is_multiple_of(2) {
        let sides = open
            .iter()
            .flat_map(|conflict| [conflict.left, conflict.right]);
        let mut kept: Vec<_> = sides
            .enumerate()
            .filter(|(bit, _)| detail & (1 << (bit % 8)) != 0)
            .map(|(_, id)| id)
            .collect();
        kept.sort();
        kept.dedup();
        return EventKind::Resolved {
            note: format!("resolution {detail}"),
            kept,
        };
    }
    let eligibility = |outcome| EventKind::EligibilityDecided {
        outcome,
        reason: None,
    };
    match choice % 32 {
        0..=4 => eligibility(EligibilityOutcome::Automatic),
        5 => eligibility(EligibilityOutcome::NeedsClerk),
        6 => eligibility(EligibilityOutcome::NotAllowed),
        7..=9 => EventKind::Approved,
        10 => EventKind::Rejected {
            reason: "not entitled".into(),
        },
        11..=15 | 29..=31 => EventKind::Issued {
            document_id: format!("D-{}", detail % 2),
        },
        16 => EventKind::ReceiptPrinted {
            printer: "thermal".into(),
        },
        17..=20 => EventKind::Printed {
            printer: "laser".into(),
        },
        21..=24 => EventKind::HandedOver,
        25..=27 => EventKind::Emailed {
            to: "marie@example.org".into(),
        },
        _ => EventKind::Cancelled {
            reason: "changed her mind".into(),
        },
    }
}

/// Two distinct replicas, mutably.
fn pair(
    replicas: &mut [RequestRecord],
    from: usize,
    to: usize,
) -> (&mut RequestRecord, &mut RequestRecord) {
    if from < to {
        let (left, right) = replicas.split_at_mut(to);
        (&mut left[from], &mut right[0])
    } else {
        let (left, right) = replicas.split_at_mut(from);
        (&mut right[0], &mut left[to])
    }
}

fn copy(record: &mut RequestRecord) -> RequestRecord {
    RequestRecord::load(&record.save()).unwrap()
}

fn permutations(count: usize) -> Vec<Vec<usize>> {
    if count == 2 {
        return vec![vec![0, 1], vec![1, 0]];
    }
    vec![
        vec![0, 1, 2],
        vec![0, 2, 1],
        vec![1, 0, 2],
        vec![1, 2, 0],
        vec![2, 0, 1],
        vec![2, 1, 0],
    ]
}

fn merged_in_order(replicas: &mut [RequestRecord], order: &[usize]) -> RequestRecord {
    let mut merged = copy(&mut replicas[order[0]]);
    for index in &order[1..] {
        merged.merge(&mut replicas[*index]).unwrap();
    }
    merged
}

fn event_ids(view: &RequestView) -> Vec<String> {
    let mut ids: Vec<String> = view
        .events
        .iter()
        .map(|event| event.id.to_string())
        .collect();
    ids.sort();
    ids
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge_whatever_the_merge_order(count in 2..=3usize, ops in vec(op(), 1..40)) {
        let mut base = RequestRecord::create(&new_request(1), actor(100), event_id(0), "kiosk:kiosk-1").unwrap();
        let mut replicas: Vec<RequestRecord> = (0..count).map(|_| copy(&mut base)).collect();
        let mut clocks = vec![120i64; count];
        let mut appended = vec![event_id(0).to_string()];
        for (n, op) in ops.into_iter().enumerate() {
            match op {
                Op::Append { replica, choice, detail, pause } => {
                    let replica = replica % count;
                    clocks[replica] += i64::from(pause);
                    let kind = kind(&replicas[replica], choice, detail);
                    let device = ["bus-1", "hub", "bus-2"][replica];
                    let event = new_event(n as u32 + 1, clocks[replica], "staff:test", device, kind);
                    match replicas[replica].append(&actor(replica as u8 + 1), event) {
                        Ok(()) => appended.push(event_id(n as u32 + 1).to_string()),
                        Err(RecordError::NotAllowedNow { .. } | RecordError::NotInConflict(_)) => {}
                        Err(other) => panic!("unexpected refusal: {other}"),
                    }
                }
                Op::Sync { from, to } => {
                    let (from, to) = (from % count, to % count);
                    if from != to {
                        let (source, target) = pair(&mut replicas, from, to);
                        target.merge(source).unwrap();
                    }
                }
            }
        }

        let mut reference = merged_in_order(&mut replicas, &permutations(count)[0]);
        let expected = reference.view().unwrap();
        appended.sort();
        prop_assert_eq!(event_ids(&expected), appended, "no event is lost");
        for order in permutations(count) {
            let mut merged = merged_in_order(&mut replicas, &order);
            prop_assert_eq!(&merged.view().unwrap(), &expected, "merge order {:?}", order);
            prop_assert_eq!(merged.heads(), reference.heads());
        }
        // Save → load, and merging again, change nothing.
        let mut loaded = RequestRecord::load(&reference.save()).unwrap();
        prop_assert_eq!(&loaded.view().unwrap(), &expected);
        let heads = loaded.heads();
        for replica in replicas.iter_mut() {
            loaded.merge(replica).unwrap();
        }
        loaded.merge(&mut reference).unwrap();
        prop_assert_eq!(loaded.heads(), heads);
        prop_assert_eq!(&loaded.view().unwrap(), &expected);
    }
}
