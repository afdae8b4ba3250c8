//! The demo citizens: valid national numbers that agree with the cards, family links that point
//! somewhere, minors who are minors, and the variety the demo needs.

use std::collections::{HashMap, HashSet};

use busloket_hardware::{DemoCitizen, DemoRole, DocumentType, Sex, demo_avatar_svg, demo_citizens};
use chrono::{Datelike, NaiveDate};

/// The date the demo set is checked against.
fn reference_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
}

/// The check digits of a national number (domain brief §3): `97 - (first 9 digits mod 97)`, or
/// with a "2" in front of the 9 digits for people born from 2000 on. Returns the century the
/// check digits point to.
fn national_number_century(number: &str) -> Option<u32> {
    if number.len() != 11 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let base: u64 = number[..9].parse().ok()?;
    let check: u64 = number[9..].parse().ok()?;
    if 97 - base % 97 == check {
        Some(1900)
    } else if 97 - (2_000_000_000 + base) % 97 == check {
        Some(2000)
    } else {
        None
    }
}

fn age_on(birth: NaiveDate, day: NaiveDate) -> u32 {
    day.years_since(birth).unwrap()
}

fn by_number(citizens: &[DemoCitizen]) -> HashMap<&str, &DemoCitizen> {
    citizens
        .iter()
        .map(|c| (c.card.national_number.as_str(), c))
        .collect()
}

#[test]
fn the_check_itself_accepts_known_numbers_and_rejects_a_wrong_digit() {
    assert_eq!(national_number_century("85073100328"), Some(1900));
    assert_eq!(national_number_century("01020304526"), Some(2000));
    assert_eq!(national_number_century("85073100329"), None);
    assert_eq!(national_number_century("8507310032"), None);
}

#[test]
fn every_national_number_is_valid_unique_and_agrees_with_the_card() {
    let citizens = demo_citizens();
    let mut seen = HashSet::new();
    for citizen in &citizens {
        let card = &citizen.card;
        let number = &card.national_number;
        assert!(seen.insert(number.clone()), "duplicate {number}");
        let century = national_number_century(number)
            .unwrap_or_else(|| panic!("{} {}: bad check digits", card.first_names, card.surname));
        let birth = card.birth_date.unwrap();
        assert_eq!(
            century,
            birth.year() as u32 / 100 * 100,
            "{number}: century"
        );
        assert_eq!(
            &number[..6],
            birth.format("%y%m%d").to_string(),
            "{number}: birth date"
        );
        let counter: u32 = number[6..9].parse().unwrap();
        let expected = if counter % 2 == 1 { Sex::M } else { Sex::F };
        assert_eq!(card.sex, expected, "{number}: sex and day counter");
    }
}

#[test]
fn every_card_is_a_demo_card_valid_on_the_reference_date() {
    for citizen in demo_citizens() {
        let card = &citizen.card;
        assert!(card.demo);
        assert!(card.photo_jpeg.is_empty());
        assert!(card.valid_from <= reference_date() && reference_date() <= card.valid_until);
        assert_eq!(card.chip_number.len(), 32);
        assert!(
            card.chip_number
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_lowercase())
        );
        assert_eq!(card.card_number.chars().count(), 12);
    }
}

#[test]
fn family_links_point_to_citizens_of_the_same_household() {
    let citizens = demo_citizens();
    let index = by_number(&citizens);
    for citizen in &citizens {
        let name = &citizen.card.first_names;
        if let Some(partner) = &citizen.partner {
            let partner = index
                .get(partner.as_str())
                .unwrap_or_else(|| panic!("{name}'s partner"));
            assert_eq!(
                partner.partner.as_deref(),
                Some(citizen.card.national_number.as_str())
            );
            assert_eq!(partner.household, citizen.household);
            assert_eq!(
                partner.children, citizen.children,
                "{name}: partners share their children"
            );
        }
        for child in &citizen.children {
            let child = index
                .get(child.as_str())
                .unwrap_or_else(|| panic!("{name}'s child"));
            assert_eq!(child.household, citizen.household);
            assert_ne!(child.role, DemoRole::Adult);
            assert!(child.card.birth_date > citizen.card.birth_date);
        }
    }
    // Every child is somebody's child.
    let children: HashSet<&str> = citizens
        .iter()
        .flat_map(|c| c.children.iter().map(String::as_str))
        .collect();
    for citizen in citizens.iter().filter(|c| c.role != DemoRole::Adult) {
        assert!(children.contains(citizen.card.national_number.as_str()));
    }
}

#[test]
fn minors_are_minors_and_adult_children_adults_on_the_reference_date() {
    for citizen in demo_citizens() {
        let birth = citizen.card.birth_date.unwrap();
        let age = age_on(birth, reference_date());
        match citizen.role {
            DemoRole::MinorChild => {
                assert!(age < 18, "{}: {age}", citizen.card.first_names);
                assert!(birth.year() > 2010, "{}", citizen.card.first_names);
            }
            DemoRole::AdultChild | DemoRole::Adult => {
                assert!(age >= 18, "{}: {age}", citizen.card.first_names);
            }
        }
    }
}

#[test]
fn there_are_two_families_with_a_partner_minor_children_and_an_adult_child() {
    let citizens = demo_citizens();
    let index = by_number(&citizens);
    let complete_families: HashSet<&str> = citizens
        .iter()
        .filter(|c| c.partner.is_some())
        .filter(|c| {
            let roles: Vec<DemoRole> = c.children.iter().map(|n| index[n.as_str()].role).collect();
            roles.contains(&DemoRole::MinorChild) && roles.contains(&DemoRole::AdultChild)
        })
        .map(|c| c.household.as_str())
        .collect();
    assert!(complete_families.len() >= 2, "{complete_families:?}");
}

#[test]
fn the_set_has_the_variety_the_demo_needs() {
    let citizens = demo_citizens();
    let cards: Vec<_> = citizens.iter().map(|c| &c.card).collect();
    let year = |card: &&busloket_hardware::CardIdentity| card.birth_date.unwrap().year();
    assert!(
        cards
            .iter()
            .any(|c| year(c) < 2000 && age_on(c.birth_date.unwrap(), reference_date()) >= 18)
    );
    assert!(
        cards
            .iter()
            .any(|c| year(c) >= 2000 && age_on(c.birth_date.unwrap(), reference_date()) >= 18)
    );
    assert!(
        cards
            .iter()
            .any(|c| age_on(c.birth_date.unwrap(), reference_date()) >= 75
                && !c.display_name().is_ascii())
    );
    assert!(
        cards
            .iter()
            .any(|c| matches!(c.document_type, DocumentType::ForeignerCard { .. }))
    );
    assert!(
        cards
            .iter()
            .any(|c| c.document_type == DocumentType::KidsId)
    );
    assert!(cards.iter().any(|c| c.display_name().chars().count() > 60));
}

#[test]
fn birth_dates_are_printed_as_the_card_language_prints_them() {
    let citizens = demo_citizens();
    let text = |number: &str| {
        citizens
            .iter()
            .find(|c| c.card.national_number == number)
            .unwrap()
            .card
            .birth_date_text
            .clone()
    };
    assert_eq!(text("78031203701"), "12 MAAR 1978");
    assert_eq!(text("72110514335"), "05 NOV 1972");
    assert_eq!(text("48031210579"), "12.MÄR.1948");
    assert_eq!(text("44022904820"), "29 FEB 1944");
}

#[test]
fn the_avatar_is_an_svg_with_initials_and_a_demo_label() {
    let mut card = demo_citizens().remove(0).card;
    let svg = demo_avatar_svg(&card);
    assert!(
        svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
        "{svg}"
    );
    assert!(svg.ends_with("</svg>"));
    assert!(svg.contains(">TJ</text>"), "{svg}");
    assert!(svg.contains(">DEMO</text>"));
    assert!(svg.contains("aria-label=\"Demo photo: Tom Pieter Janssens\""));

    card.first_names = "<Élodie & \"Zoë\">".into();
    card.surname = "d'Hondt".into();
    let svg = demo_avatar_svg(&card);
    assert!(svg.contains(">ÉD</text>"), "{svg}");
    assert!(
        svg.contains("&lt;Élodie &amp; &quot;Zoë&quot;&gt; d&apos;Hondt"),
        "{svg}"
    );
    assert!(!svg.contains("<Élodie"));
}
