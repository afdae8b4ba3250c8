//! The pure heart of a request record: the status folded from the lifecycle events and the
//! semantic conflicts between concurrent events.
//!
//! No Automerge, no IO, no clock. The same set of events gives the same answer on every replica,
//! whatever order the events arrived in or sit in the Automerge list: everything here works on a
//! linear extension of causality that each replica computes alike, the key
//! `(seen.len(), at, id)`. An event that saw another saw everything that one saw plus the event
//! itself, so its `seen` is strictly larger and it sorts later.
//!
//! Two events are *concurrent* when neither saw the other. Some concurrent pairs are
//! incompatible (see [`ConflictKind`]); such a pair is an open [`Conflict`] until a `Resolved`
//! event that saw both sides clears it. The sides the resolution did not keep are *overruled*:
//! the fold skips them, and they take part in no further conflict. The *first* resolution (in
//! the causal order) that saw both sides decides a pair: every later resolution saw the pair
//! too, but was made for other conflicts and must not re-decide this one. Two concurrent
//! resolutions of one pair are settled the same way, by the order (resolutions come from central
//! IT; a conflict about a resolution could only be resolved by another one).

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{EligibilityOutcome, Event, EventId, EventKind};

/// Where a request stands, folded from its events. Never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Submitted, eligibility not yet decided.
    Submitted,
    /// The rules say a clerk must decide.
    AwaitingClerk,
    /// The rules allow automatic delivery; waiting for the document to be issued.
    Ready,
    /// The rules say the requester may not have this document; a clerk may still decide.
    NotAllowed,
    /// A clerk approved; waiting for the document to be issued.
    Approved,
    /// A clerk rejected the request.
    Rejected,
    /// The city issued the document; waiting for print or e-mail.
    Issued,
    /// Printed in the bus; waiting to be handed over.
    Printed,
    /// Handed over to the citizen.
    HandedOver,
    /// Sent by e-mail (delivered).
    Emailed,
    /// Cancelled.
    Cancelled,
    /// Concurrent events disagree; a person must resolve it before the request moves on.
    InConflict,
}

impl Status {
    pub const ALL: &'static [Status] = &[
        Status::Submitted,
        Status::AwaitingClerk,
        Status::Ready,
        Status::NotAllowed,
        Status::Approved,
        Status::Rejected,
        Status::Issued,
        Status::Printed,
        Status::HandedOver,
        Status::Emailed,
        Status::Cancelled,
        Status::InConflict,
    ];

    /// The stable kebab-case code, also the translation key `status-<code>`.
    pub fn code(&self) -> &'static str {
        match self {
            Status::Submitted => "submitted",
            Status::AwaitingClerk => "awaiting-clerk",
            Status::Ready => "ready",
            Status::NotAllowed => "not-allowed",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::Issued => "issued",
            Status::Printed => "printed",
            Status::HandedOver => "handed-over",
            Status::Emailed => "emailed",
            Status::Cancelled => "cancelled",
            Status::InConflict => "in-conflict",
        }
    }

    pub fn from_code(code: &str) -> Option<Status> {
        Status::ALL
            .iter()
            .copied()
            .find(|status| status.code() == code)
    }

    /// Nothing more will happen to the request (what retention and purging look at).
    pub fn is_finished(&self) -> bool {
        matches!(
            self,
            Status::HandedOver | Status::Emailed | Status::Rejected | Status::Cancelled
        )
    }
}

/// Which incompatible pair of concurrent events a conflict is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictKind {
    /// A cancellation and an issuance, print, hand-over or e-mail.
    CancelVsDelivery,
    /// A clerk's rejection and an issuance, print, hand-over or e-mail.
    RejectVsDelivery,
    /// One clerk approved, another rejected.
    ApproveVsReject,
    /// Two issuances with different document ids.
    TwoIssuances,
    /// The request was created twice (two `Submitted` events); its set-once fields may then hold
    /// two values, shown in the view's `field_conflicts`.
    TwoSubmissions,
}

impl ConflictKind {
    /// The stable kebab-case code, also the translation key `conflict-<code>`.
    pub fn code(&self) -> &'static str {
        match self {
            ConflictKind::CancelVsDelivery => "cancel-vs-delivery",
            ConflictKind::RejectVsDelivery => "reject-vs-delivery",
            ConflictKind::ApproveVsReject => "approve-vs-reject",
            ConflictKind::TwoIssuances => "two-issuances",
            ConflictKind::TwoSubmissions => "two-submissions",
        }
    }
}

/// An open semantic conflict: two concurrent events that cannot both stand. `left` comes first
/// in the causal order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub kind: ConflictKind,
    pub left: EventId,
    pub right: EventId,
}

/// What an event does to the status it meets in the fold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Moves(Status),
    /// Recorded, status unchanged (a receipt, a resolution, the submission itself).
    Stays,
    /// Does not fit the status; the fold ignores it and `append` refuses it.
    Refused,
}

/// The lifecycle rules, one place: which event may follow which status.
pub(crate) fn next_status(current: Status, kind: &EventKind) -> Step {
    use Status::*;
    let undecided = matches!(current, Submitted | AwaitingClerk | Ready | NotAllowed);
    let moves_if = |allowed: bool, to: Status| {
        if allowed {
            Step::Moves(to)
        } else {
            Step::Refused
        }
    };
    match kind {
        EventKind::Submitted | EventKind::Resolved { .. } | EventKind::ReceiptPrinted { .. } => {
            Step::Stays
        }
        EventKind::EligibilityDecided { outcome, .. } => {
            let to = match outcome {
                EligibilityOutcome::Automatic => Ready,
                EligibilityOutcome::NeedsClerk => AwaitingClerk,
                EligibilityOutcome::NotAllowed => NotAllowed,
            };
            moves_if(undecided, to)
        }
        EventKind::Approved => moves_if(undecided, Approved),
        EventKind::Rejected { .. } => moves_if(undecided || current == Approved, Rejected),
        EventKind::Issued { .. } => moves_if(matches!(current, Ready | Approved), Issued),
        EventKind::Printed { .. } => moves_if(matches!(current, Issued | Printed), Printed),
        EventKind::HandedOver => moves_if(current == Printed, HandedOver),
        EventKind::Emailed { .. } => moves_if(matches!(current, Issued | Printed), Emailed),
        EventKind::Cancelled { .. } => moves_if(
            undecided || matches!(current, Approved | Issued | Printed),
            Cancelled,
        ),
    }
}

/// Which conflict, if any, two concurrent events make (symmetric).
fn incompatible(a: &EventKind, b: &EventKind) -> Option<ConflictKind> {
    use EventKind::*;
    let delivery = |kind: &EventKind| {
        matches!(
            kind,
            Issued { .. } | Printed { .. } | HandedOver | Emailed { .. }
        )
    };
    let rule = |a: &EventKind, b: &EventKind| match (a, b) {
        (Cancelled { .. }, other) if delivery(other) => Some(ConflictKind::CancelVsDelivery),
        (Rejected { .. }, other) if delivery(other) => Some(ConflictKind::RejectVsDelivery),
        (Approved, Rejected { .. }) => Some(ConflictKind::ApproveVsReject),
        (Issued { document_id: one }, Issued { document_id: two }) if one != two => {
            Some(ConflictKind::TwoIssuances)
        }
        (Submitted, Submitted) => Some(ConflictKind::TwoSubmissions),
        _ => None,
    };
    rule(a, b).or_else(|| rule(b, a))
}

/// The sort key of the causal order shared by all replicas.
fn causal_key(event: &Event) -> (usize, DateTime<Utc>, EventId) {
    (event.seen.len(), event.at, event.id)
}

/// Sorts events into the causal order every replica computes alike.
pub fn sort_causally(events: &mut [Event]) {
    events.sort_by_key(causal_key);
}

/// Everything the fold finds in a set of events (ids are unique; the record guarantees it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Analysis {
    /// The status the events reach, open conflicts aside.
    pub folded: Status,
    /// Open conflicts, in causal order of their sides.
    pub conflicts: Vec<Conflict>,
    /// Events a resolution did not keep; the fold skips them.
    pub overruled: BTreeSet<EventId>,
}

impl Analysis {
    pub fn status(&self) -> Status {
        if self.conflicts.is_empty() {
            self.folded
        } else {
            Status::InConflict
        }
    }
}

pub(crate) fn analyse(events: &[Event]) -> Analysis {
    let mut order: Vec<&Event> = events.iter().collect();
    order.sort_by_key(|event| causal_key(event));
    let seen: HashMap<EventId, HashSet<EventId>> = events
        .iter()
        .map(|event| (event.id, event.seen.iter().copied().collect()))
        .collect();
    let saw = |who: EventId, what: EventId| seen.get(&who).is_some_and(|set| set.contains(&what));
    let resolutions: Vec<&Event> = order
        .iter()
        .copied()
        .filter(|event| matches!(event.kind, EventKind::Resolved { .. }))
        .collect();

    let mut open = Vec::new();
    let mut overruled = BTreeSet::new();
    for (index, left) in order.iter().enumerate() {
        for right in &order[index + 1..] {
            let Some(kind) = incompatible(&left.kind, &right.kind) else {
                continue;
            };
            if saw(left.id, right.id) || saw(right.id, left.id) {
                continue;
            }
            let resolution = resolutions
                .iter()
                .find(|resolution| saw(resolution.id, left.id) && saw(resolution.id, right.id));
            match resolution.map(|resolution| &resolution.kind) {
                Some(EventKind::Resolved { kept, .. }) => {
                    for side in [left.id, right.id] {
                        if !kept.contains(&side) {
                            overruled.insert(side);
                        }
                    }
                }
                _ => open.push(Conflict {
                    kind,
                    left: left.id,
                    right: right.id,
                }),
            }
        }
    }
    open.retain(|conflict| {
        !overruled.contains(&conflict.left) && !overruled.contains(&conflict.right)
    });

    let mut folded = Status::Submitted;
    for event in order.iter().filter(|event| !overruled.contains(&event.id)) {
        if let Step::Moves(next) = next_status(folded, &event.kind) {
            folded = next;
        }
    }
    Analysis {
        folded,
        conflicts: open,
        overruled,
    }
}

/// The status of a request, folded from its events (pure).
pub fn fold_status(events: &[Event]) -> Status {
    analyse(events).status()
}

/// The open semantic conflicts between concurrent events (pure).
pub fn conflicts(events: &[Event]) -> Vec<Conflict> {
    analyse(events).conflicts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terms::DeviceId;

    /// A small event history builder: each event sees exactly the events listed.
    struct History(Vec<Event>);

    impl History {
        fn new() -> History {
            History(vec![event(0, EventKind::Submitted, &[])])
        }
        /// Appends an event that saw everything so far (a sequential step).
        fn then(&mut self, kind: EventKind) -> EventId {
            let seen: Vec<u8> = (0..self.0.len() as u8).collect();
            self.with_seen(kind, &seen)
        }
        /// Appends an event that saw only the given events (by index).
        fn with_seen(&mut self, kind: EventKind, seen: &[u8]) -> EventId {
            let event = event(self.0.len() as u8, kind, seen);
            let id = event.id;
            self.0.push(event);
            id
        }
        fn status(&self) -> Status {
            fold_status(&self.0)
        }
    }

    fn id(n: u8) -> EventId {
        EventId::new(1_700_000_000_000 + u64::from(n), [n; 10])
    }

    fn event(n: u8, kind: EventKind, seen: &[u8]) -> Event {
        Event {
            id: id(n),
            at: DateTime::from_timestamp_millis(1_700_000_000_000 + i64::from(n) * 1000).unwrap(),
            by: "staff:test".into(),
            device: "bus-1".parse::<DeviceId>().unwrap(),
            kind,
            seen: seen.iter().map(|n| self::id(*n)).collect(),
        }
    }

    fn eligibility(outcome: EligibilityOutcome) -> EventKind {
        EventKind::EligibilityDecided {
            outcome,
            reason: None,
        }
    }
    fn issued(document: &str) -> EventKind {
        EventKind::Issued {
            document_id: document.into(),
        }
    }
    fn printed() -> EventKind {
        EventKind::Printed {
            printer: "laser".into(),
        }
    }
    fn cancelled() -> EventKind {
        EventKind::Cancelled {
            reason: "left".into(),
        }
    }
    fn resolved(kept: &[EventId]) -> EventKind {
        EventKind::Resolved {
            note: "checked".into(),
            kept: kept.to_vec(),
        }
    }

    #[test]
    fn automatic_path_to_handed_over() {
        let mut history = History::new();
        assert_eq!(history.status(), Status::Submitted);
        history.then(eligibility(EligibilityOutcome::Automatic));
        assert_eq!(history.status(), Status::Ready);
        history.then(issued("doc-1"));
        history.then(EventKind::ReceiptPrinted {
            printer: "thermal".into(),
        });
        assert_eq!(history.status(), Status::Issued);
        history.then(printed());
        history.then(EventKind::HandedOver);
        assert_eq!(history.status(), Status::HandedOver);
        assert!(history.status().is_finished());
    }

    #[test]
    fn clerk_path_and_refused_steps() {
        let mut history = History::new();
        history.then(eligibility(EligibilityOutcome::NeedsClerk));
        assert_eq!(history.status(), Status::AwaitingClerk);
        // An issuance before approval does not fit: the fold ignores it.
        history.then(issued("doc-1"));
        assert_eq!(history.status(), Status::AwaitingClerk);
        history.then(EventKind::Approved);
        history.then(issued("doc-1"));
        history.then(EventKind::Emailed {
            to: "a@example.org".into(),
        });
        assert_eq!(history.status(), Status::Emailed);
        assert_eq!(next_status(Status::Emailed, &cancelled()), Step::Refused);
        assert_eq!(
            next_status(Status::Rejected, &EventKind::Approved),
            Step::Refused
        );
        assert_eq!(
            next_status(Status::Printed, &printed()),
            Step::Moves(Status::Printed)
        );
    }

    #[test]
    fn sequential_events_never_conflict() {
        let mut history = History::new();
        history.then(eligibility(EligibilityOutcome::Automatic));
        history.then(issued("doc-1"));
        history.then(cancelled());
        assert!(conflicts(&history.0).is_empty());
        assert_eq!(history.status(), Status::Cancelled);
    }

    #[test]
    fn each_conflict_rule() {
        let cases = [
            (cancelled(), printed(), Some(ConflictKind::CancelVsDelivery)),
            (
                cancelled(),
                EventKind::HandedOver,
                Some(ConflictKind::CancelVsDelivery),
            ),
            (
                EventKind::Emailed {
                    to: "x@y.be".into(),
                },
                cancelled(),
                Some(ConflictKind::CancelVsDelivery),
            ),
            (
                EventKind::Rejected {
                    reason: "no".into(),
                },
                printed(),
                Some(ConflictKind::RejectVsDelivery),
            ),
            (
                EventKind::Approved,
                EventKind::Rejected {
                    reason: "no".into(),
                },
                Some(ConflictKind::ApproveVsReject),
            ),
            (
                issued("doc-1"),
                issued("doc-2"),
                Some(ConflictKind::TwoIssuances),
            ),
            (issued("doc-1"), issued("doc-1"), None),
            (
                printed(),
                EventKind::Emailed {
                    to: "x@y.be".into(),
                },
                None,
            ),
            (EventKind::Approved, EventKind::Approved, None),
        ];
        for (one, two, expected) in cases {
            let mut history = History::new();
            history.then(eligibility(EligibilityOutcome::Automatic));
            let left = history.with_seen(one.clone(), &[0, 1]);
            let right = history.with_seen(two.clone(), &[0, 1]);
            let found = conflicts(&history.0);
            match expected {
                Some(kind) => {
                    assert_eq!(found.len(), 1, "{one:?} vs {two:?}");
                    assert_eq!(found[0].kind, kind);
                    let sides = [found[0].left, found[0].right];
                    assert!(sides.contains(&left) && sides.contains(&right));
                    assert_eq!(history.status(), Status::InConflict);
                }
                None => assert!(found.is_empty(), "{one:?} vs {two:?}: {found:?}"),
            }
        }
    }

    #[test]
    fn a_resolution_that_saw_both_sides_clears_and_overrules() {
        let mut history = History::new();
        history.then(eligibility(EligibilityOutcome::Automatic));
        history.then(issued("doc-1")); // 2
        let cancel = history.with_seen(cancelled(), &[0, 1, 2]); // 3, on the hub
        let print = history.with_seen(printed(), &[0, 1, 2]); // 4, on the bus
        assert_eq!(history.status(), Status::InConflict);
        // A resolution that saw only one side clears nothing.
        history.with_seen(resolved(&[print]), &[0, 1, 2, 4]);
        assert_eq!(history.status(), Status::InConflict);
        let mut keep_print = History(history.0.clone());
        keep_print.then(resolved(&[print]));
        assert!(conflicts(&keep_print.0).is_empty());
        assert_eq!(keep_print.status(), Status::Printed);
        assert_eq!(analyse(&keep_print.0).overruled, BTreeSet::from([cancel]));
        let mut keep_cancel = History(history.0.clone());
        keep_cancel.then(resolved(&[cancel]));
        assert_eq!(keep_cancel.status(), Status::Cancelled);
    }

    #[test]
    fn an_overruled_event_takes_part_in_no_new_conflict() {
        let mut history = History::new();
        history.then(eligibility(EligibilityOutcome::Automatic)); // 1
        history.then(issued("doc-1")); // 2
        history.with_seen(cancelled(), &[0, 1, 2]); // 3
        let print = history.with_seen(printed(), &[0, 1, 2]); // 4
        history.with_seen(resolved(&[print]), &[0, 1, 2, 3, 4]); // 5
        // The bus hands over without having heard of the cancellation or the resolution.
        history.with_seen(EventKind::HandedOver, &[0, 1, 2, 4]); // 6
        assert!(conflicts(&history.0).is_empty());
        assert_eq!(history.status(), Status::HandedOver);
    }

    #[test]
    fn a_later_resolution_does_not_redecide_an_earlier_conflict() {
        let mut history = History::new();
        history.then(eligibility(EligibilityOutcome::Automatic)); // 1
        history.then(issued("doc-1")); // 2
        history.with_seen(cancelled(), &[0, 1, 2]); // 3
        let print = history.with_seen(printed(), &[0, 1, 2]); // 4
        history.then(resolved(&[print])); // 5
        // Later, two hand-overs are recorded while a second cancellation comes in.
        let hand_over = history.with_seen(EventKind::HandedOver, &[0, 1, 2, 3, 4, 5]); // 6
        history.with_seen(cancelled(), &[0, 1, 2, 3, 4, 5]); // 7
        assert_eq!(history.status(), Status::InConflict);
        history.then(resolved(&[hand_over]));
        assert_eq!(history.status(), Status::HandedOver);
        assert_eq!(
            analyse(&history.0).overruled,
            BTreeSet::from([id(3), id(7)])
        );
    }

    #[test]
    fn the_fold_ignores_the_order_of_the_list() {
        let mut history = History::new();
        history.then(eligibility(EligibilityOutcome::Automatic));
        history.then(issued("doc-1"));
        history.with_seen(cancelled(), &[0, 1, 2]);
        history.with_seen(issued("doc-2"), &[0, 1]);
        history.with_seen(printed(), &[0, 1, 2]);
        let expected = (fold_status(&history.0), conflicts(&history.0));
        assert_eq!(expected.1.len(), 3, "{:?}", expected.1);
        let mut events = history.0.clone();
        for _ in 0..events.len() {
            events.rotate_left(1);
            events.swap(0, 2);
            assert_eq!((fold_status(&events), conflicts(&events)), expected);
        }
    }

    #[test]
    fn codes_are_stable_and_round_trip() {
        let codes: Vec<&str> = Status::ALL.iter().map(Status::code).collect();
        assert_eq!(
            codes.join(" "),
            "submitted awaiting-clerk ready not-allowed approved rejected issued printed \
             handed-over emailed cancelled in-conflict"
        );
        for status in Status::ALL {
            assert_eq!(Status::from_code(status.code()), Some(*status));
            assert_eq!(serde_json::to_value(status).unwrap(), status.code());
        }
        assert_eq!(
            serde_json::to_value(ConflictKind::CancelVsDelivery).unwrap(),
            ConflictKind::CancelVsDelivery.code()
        );
    }
}
