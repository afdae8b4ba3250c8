//! Tests of the eligibility rules, table-driven against the embedded catalogue, and of the reason
//! codes' messages in the node's Fluent catalogues.

use std::collections::HashSet;
use std::path::PathBuf;

use super::*;
use crate::catalogue::{Catalogue, Family};
use crate::terms::Language;

use AuthStrength::{CardPin, CardRead, Declared};
use Decision::{Automatic, NeedsClerk, NotAllowed};
use Reason::*;
use Relation::{
    Anyone, DirectRelative, Heir, LegalRepresentative, Myself, ParentOfMinor, Partner, ProxyHolder,
};

const MINOR: bool = true;
const ADULT: bool = false;

/// (document code, relation, authentication, subject is a minor, expected decision)
#[rustfmt::skip]
const TABLE: &[(&str, Relation, AuthStrength, bool, Decision)] = &[
    // Civil-status acts.
    ("birth-extract", Myself, CardRead, ADULT, Automatic),
    ("birth-extract", Myself, CardPin, MINOR, Automatic),
    ("birth-extract", Myself, Declared, ADULT, NeedsClerk(AuthenticationTooWeak)),
    ("birth-extract", ParentOfMinor, CardRead, MINOR, Automatic),
    ("birth-extract", ParentOfMinor, CardPin, ADULT, NotAllowed(ChildNotMinor)),
    ("birth-extract", Partner, CardPin, ADULT, NeedsClerk(RelationNeedsProof)),
    ("birth-extract", DirectRelative, CardPin, ADULT, NeedsClerk(RelationNeedsProof)),
    ("birth-extract", Heir, CardPin, ADULT, NeedsClerk(HeirshipNeedsProof)),
    ("birth-extract", LegalRepresentative, CardPin, ADULT, NeedsClerk(RepresentationNeedsProof)),
    ("birth-extract", ProxyHolder, CardPin, ADULT, NeedsClerk(ProxyNeedsCheck)),
    ("birth-extract", Anyone, Declared, ADULT, NeedsClerk(PublicActNeedsCheck)),
    ("birth-copy", Myself, CardRead, ADULT, NeedsClerk(AuthenticationTooWeak)),
    ("birth-copy", Myself, CardPin, ADULT, Automatic),
    ("birth-copy", ParentOfMinor, CardPin, MINOR, Automatic),
    ("marriage-extract", Partner, CardRead, ADULT, Automatic),
    ("marriage-extract", ParentOfMinor, CardPin, MINOR, NotAllowed(RelationNotAllowed)),
    ("marriage-copy", Partner, CardRead, ADULT, NeedsClerk(AuthenticationTooWeak)),
    ("death-extract", Myself, CardPin, ADULT, NotAllowed(RelationNotAllowed)),
    ("death-extract", Partner, CardPin, ADULT, NeedsClerk(RelationNeedsProof)),
    ("death-copy", Anyone, CardPin, ADULT, NeedsClerk(PublicActNeedsCheck)),
    ("divorce-extract", Myself, CardRead, ADULT, Automatic),
    ("recognition-extract", ParentOfMinor, CardRead, MINOR, Automatic),
    ("belgian-nationality-extract", ParentOfMinor, CardRead, ADULT, NotAllowed(ChildNotMinor)),
    ("adoption-extract", Myself, CardPin, ADULT, NeedsClerk(TypeNeverAutomatic)),
    ("adoption-extract", ParentOfMinor, CardPin, MINOR, NeedsClerk(TypeNeverAutomatic)),
    ("name-change-extract", Heir, CardPin, ADULT, NeedsClerk(HeirshipNeedsProof)),
    ("registered-sex-change-extract", Myself, CardPin, ADULT, NeedsClerk(TypeNeverAutomatic)),
    ("registered-sex-change-extract", ParentOfMinor, CardPin, MINOR, NeedsClerk(ParenthoodNeedsCheck)),
    ("registered-sex-change-extract", Partner, CardPin, ADULT, NotAllowed(RelationNotAllowed)),
    ("registered-sex-change-extract", Anyone, CardPin, ADULT, NotAllowed(RelationNotAllowed)),
    ("birth-multilingual", Myself, CardRead, ADULT, Automatic),
    ("death-multilingual", DirectRelative, CardPin, ADULT, NeedsClerk(RelationNeedsProof)),
    // Population-register attests.
    ("household-composition", Myself, CardPin, ADULT, Automatic),
    ("household-composition", Myself, CardRead, ADULT, NeedsClerk(AuthenticationTooWeak)),
    ("household-composition", ParentOfMinor, CardPin, MINOR, NeedsClerk(ParenthoodNeedsCheck)),
    ("household-composition", Partner, CardPin, ADULT, NotAllowed(RelationNotAllowed)),
    ("main-residence", Myself, CardRead, ADULT, Automatic),
    ("main-residence", Myself, Declared, ADULT, NeedsClerk(AuthenticationTooWeak)),
    ("main-residence", ParentOfMinor, CardRead, MINOR, Automatic),
    ("main-residence", ParentOfMinor, CardRead, ADULT, NotAllowed(ChildNotMinor)),
    ("main-residence", ProxyHolder, CardPin, ADULT, NeedsClerk(ProxyNeedsCheck)),
    ("main-residence", DirectRelative, CardPin, ADULT, NotAllowed(RelationNotAllowed)),
    ("address-history", Myself, CardRead, ADULT, NeedsClerk(AuthenticationTooWeak)),
    ("life-certificate", LegalRepresentative, CardRead, ADULT, NeedsClerk(RepresentationNeedsProof)),
    ("legal-cohabitation", Partner, CardPin, ADULT, Automatic),
    ("burial-wishes", Heir, CardPin, ADULT, NeedsClerk(HeirshipNeedsProof)),
    ("register-extract", ParentOfMinor, CardPin, MINOR, Automatic),
    // Criminal-record extracts.
    ("criminal-record-595", Myself, CardPin, ADULT, Automatic),
    ("criminal-record-595", Myself, CardRead, ADULT, NeedsClerk(AuthenticationTooWeak)),
    ("criminal-record-595", Myself, Declared, ADULT, NeedsClerk(AuthenticationTooWeak)),
    ("criminal-record-595", Partner, CardPin, ADULT, NotAllowed(RelationNotAllowed)),
    ("criminal-record-596.1", ProxyHolder, CardPin, ADULT, NeedsClerk(ProxyNeedsCheck)),
    ("criminal-record-596.2", Myself, CardPin, MINOR, Automatic),
    ("criminal-record-596.2", ParentOfMinor, CardPin, MINOR, NotAllowed(RelationNotAllowed)),
    ("criminal-record-593", Myself, CardPin, ADULT, NeedsClerk(TypeNeverAutomatic)),
    ("criminal-record-593", LegalRepresentative, CardPin, ADULT, NotAllowed(RelationNotAllowed)),
    // Counter products.
    ("certified-copy", Myself, CardPin, ADULT, NeedsClerk(PhysicalPresenceNeeded)),
    ("certified-copy", ProxyHolder, Declared, ADULT, NeedsClerk(PhysicalPresenceNeeded)),
    ("signature-legalisation", Myself, Declared, ADULT, NeedsClerk(PhysicalPresenceNeeded)),
    ("signature-legalisation", ProxyHolder, CardPin, ADULT, NotAllowed(RelationNotAllowed)),
    ("parental-travel-consent", ParentOfMinor, CardRead, MINOR, NeedsClerk(PhysicalPresenceNeeded)),
    ("parental-travel-consent", ParentOfMinor, CardPin, ADULT, NotAllowed(ChildNotMinor)),
    ("parental-travel-consent", Myself, CardPin, MINOR, NotAllowed(RelationNotAllowed)),
];

fn query(
    document: &DocumentType,
    relation: Relation,
    authentication: AuthStrength,
    minor: bool,
) -> Decision {
    decide(&EligibilityQuery {
        document,
        relation,
        authentication,
        subject_is_minor: minor,
    })
}

#[test]
fn the_table_holds_for_the_embedded_catalogue() {
    let catalogue = Catalogue::embedded();
    let mut failures = Vec::new();
    for &(code, relation, authentication, minor, expected) in TABLE {
        let document = catalogue
            .get(&code.parse().unwrap())
            .unwrap_or_else(|| panic!("`{code}` is not in the catalogue"));
        let decided = query(document, relation, authentication, minor);
        if decided != expected {
            let row = format!("{code} {relation} {authentication} minor={minor}");
            failures.push(format!("{row}: {decided:?}, expected {expected:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn the_table_covers_every_family_outcome_and_reason() {
    let catalogue = Catalogue::embedded();
    let families: HashSet<Family> = TABLE
        .iter()
        .map(|row| catalogue.get(&row.0.parse().unwrap()).unwrap().family)
        .collect();
    assert_eq!(families.len(), Family::ALL.len());
    let reasons: HashSet<Reason> = TABLE.iter().filter_map(|row| row.4.reason()).collect();
    for reason in Reason::ALL {
        assert!(reasons.contains(reason), "no row decides {reason:?}");
    }
    assert!(TABLE.iter().any(|row| row.4 == Automatic));
}

/// Every combination over the embedded catalogue keeps the promises the kiosk relies on.
#[test]
fn every_request_to_the_embedded_catalogue_keeps_the_invariants() {
    let catalogue = Catalogue::embedded();
    for document in catalogue.types() {
        for &relation in Relation::ALL {
            for minor in [false, true] {
                let decisions: Vec<Decision> = AuthStrength::ALL
                    .iter()
                    .map(|&authentication| query(document, relation, authentication, minor))
                    .collect();
                for (&authentication, decision) in AuthStrength::ALL.iter().zip(&decisions) {
                    let context = format!(
                        "{} {relation} {authentication} minor={minor}",
                        document.code
                    );
                    if *decision == Automatic {
                        let rule = document.rule_for(relation).expect(&context);
                        assert!(document.automatic && !document.physical, "{context}");
                        assert_eq!(rule.delivery, Delivery::Automatic, "{context}");
                        assert!(authentication >= document.automatic_requires, "{context}");
                        assert!(authentication > Declared, "{context}");
                    }
                    if document.rule_for(relation).is_none() {
                        assert_eq!(*decision, NotAllowed(RelationNotAllowed), "{context}");
                    }
                }
                // A stronger authentication never makes things worse.
                for pair in decisions.windows(2) {
                    assert!(
                        pair[0] != Automatic || pair[1] == Automatic,
                        "{} {relation}",
                        document.code
                    );
                }
                // Who may ask never depends on the authentication.
                let allowed: HashSet<bool> = decisions
                    .iter()
                    .map(|decision| !matches!(decision, NotAllowed(_)))
                    .collect();
                assert_eq!(allowed.len(), 1, "{} {relation}", document.code);
            }
        }
    }
}

#[test]
fn a_hand_built_clerk_rule_for_self_goes_to_review() {
    let catalogue = Catalogue::embedded();
    let mut document = catalogue
        .get(&"birth-extract".parse().unwrap())
        .unwrap()
        .clone();
    document.who[0].delivery = Delivery::Clerk;
    assert_eq!(document.who[0].relation, Myself);
    assert_eq!(
        query(&document, Myself, CardPin, ADULT),
        NeedsClerk(TypeNeverAutomatic)
    );
}

#[test]
fn decisions_serialize_as_outcome_and_reason() {
    let json = |decision: Decision| serde_json::to_string(&decision).unwrap();
    assert_eq!(json(Automatic), r#"{"outcome":"automatic"}"#);
    assert_eq!(
        json(NeedsClerk(ProxyNeedsCheck)),
        r#"{"outcome":"needs-clerk","reason":"proxy-needs-check"}"#
    );
    assert_eq!(
        json(NotAllowed(ChildNotMinor)),
        r#"{"outcome":"not-allowed","reason":"child-not-minor"}"#
    );
    for decision in [
        Automatic,
        NeedsClerk(TypeNeverAutomatic),
        NotAllowed(RelationNotAllowed),
    ] {
        let value = serde_json::to_value(decision).unwrap();
        assert_eq!(value["outcome"], decision.outcome());
    }
    assert_eq!(NeedsClerk(ProxyNeedsCheck).reason(), Some(ProxyNeedsCheck));
    assert_eq!(Automatic.reason(), None);
}

#[test]
fn reason_codes_are_stable_unique_kebab_case() {
    let codes: Vec<&str> = Reason::ALL.iter().map(Reason::code).collect();
    expect_test::expect![[r#"
        relation-not-allowed
        child-not-minor
        physical-presence-needed
        parenthood-needs-check
        relation-needs-proof
        heirship-needs-proof
        representation-needs-proof
        proxy-needs-check
        public-act-needs-check
        type-never-automatic
        authentication-too-weak
    "#]]
    .assert_eq(&(codes.join("\n") + "\n"));
    assert_eq!(codes.iter().collect::<HashSet<_>>().len(), codes.len());
    for reason in Reason::ALL {
        let code = reason.code();
        assert!(
            code.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
            "{code}"
        );
        assert_eq!(serde_json::to_value(reason).unwrap(), code);
        assert_eq!(reason.message_key(), format!("reason-{code}"));
    }
}

/// The kiosk shows `reason-<code>` and `family-<family>`: each must exist in every language.
#[test]
fn every_reason_and_family_has_a_message_in_every_language() {
    let locales = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../node/locales");
    let mut missing = Vec::new();
    for language in Language::ALL {
        let path = locales.join(language.as_str()).join("eligibility.ftl");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        let keys: HashSet<&str> = text
            .lines()
            .filter_map(|line| line.split_once(" = "))
            .map(|(key, _)| key.trim_end())
            .collect();
        let expected = Reason::ALL
            .iter()
            .map(Reason::message_key)
            .chain(Family::ALL.iter().map(|family| format!("family-{family}")));
        for key in expected {
            if !keys.contains(key.as_str()) {
                missing.push(format!("{language}: {key}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "missing messages:\n{}",
        missing.join("\n")
    );
}
