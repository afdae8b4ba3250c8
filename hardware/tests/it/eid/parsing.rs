//! The identity and address files, from field lists to typed values and a `CardIdentity`.

use std::error::Error;

use chrono::NaiveDate;

use busloket_hardware::eid::{FileError, PhotoHash, TlvError, parse_address, parse_identity};
use busloket_hardware::{DocumentType, Sex};

use super::fixtures::{NATIONAL_NUMBER, address_file, encode, identity_fields, tlv};

/// Fields to replace (`Some`) or remove (`None`) in the standard identity.
type Changes<'a> = &'a [(u8, Option<&'a [u8]>)];

fn identity_with(changes: Changes<'_>) -> Vec<u8> {
    let mut fields = identity_fields(&[7; 32], None);
    for (tag, value) in changes {
        fields.retain(|(t, _)| t != tag);
        if let Some(value) = value {
            fields.push((*tag, value.to_vec()));
        }
    }
    fields.sort_by_key(|(tag, _)| *tag);
    encode(&fields)
}

fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap()
}

#[test]
fn a_dutch_card_parses_into_a_card_identity() {
    let identity = parse_identity(&identity_with(&[])).unwrap();
    assert_eq!(identity.photo_hash, PhotoHash::Sha256([7; 32]));
    assert_eq!(identity.basic_key_hash, None);
    assert_eq!(identity.delivery_municipality, "Gent");
    assert_eq!(identity.special_status, 0);
    assert!(identity.other_fields.is_empty());

    let debug = format!("{identity:?}");
    assert!(!debug.contains(NATIONAL_NUMBER), "{debug}");
    assert!(debug.contains("**.**.**-***.28"), "{debug}");

    let address = parse_address(&address_file("Korenmarkt 1 bus 2")).unwrap();
    let card = identity.into_card_identity(address, b"jpeg".to_vec());
    assert_eq!(card.card_number, "592123456789");
    assert_eq!(card.chip_number, "000102030405060708090A0B0C0D0E0F");
    assert_eq!(card.national_number, NATIONAL_NUMBER);
    assert_eq!(card.surname, "Van den Brœck");
    assert_eq!(card.first_names, "Anaïs Éloïse");
    assert_eq!(card.first_letter_third_name, "M");
    assert_eq!(card.nationality, "Belg");
    assert_eq!(card.birth_place, "Brugge");
    assert_eq!(card.birth_date, Some(date(1985, 7, 30)));
    assert_eq!(card.birth_date_text, "30 JUL 1985");
    assert_eq!(card.sex, Sex::F);
    assert_eq!(card.document_type, DocumentType::Eid);
    assert_eq!(card.valid_from, date(2024, 2, 1));
    assert_eq!(card.valid_until, date(2034, 2, 1));
    assert_eq!(card.address.street_and_number, "Korenmarkt 1 bus 2");
    assert_eq!(card.address.zip, "9000");
    assert_eq!(card.address.municipality, "Gent");
    assert_eq!(card.photo_jpeg, b"jpeg");
    assert!(!card.demo);
}

#[test]
fn long_names_unknown_tags_and_foreigner_cards() {
    let long_surname = "Ø".repeat(300); // 600 bytes: length FF FF 5A
    let identity = parse_identity(&identity_with(&[
        (0x07, Some(long_surname.as_bytes())),
        (0x0F, Some(b"11")),
        (0x10, Some(b"4")),
        (0x14, Some(b"")),
        (0x1A, Some(&[9; 48])),
        (0x1B, Some(b"B")),
        (0x1F, Some(b"01.01.2021")),
        (0x25, Some(b"from the future")),
    ]))
    .unwrap();
    assert_eq!(identity.surname, long_surname);
    assert_eq!(
        identity.document_type,
        DocumentType::ForeignerCard { code: 11 }
    );
    assert_eq!(identity.special_status, 4);
    assert_eq!(identity.basic_key_hash, Some([9; 48]));
    let tags: Vec<u8> = identity.other_fields.iter().map(|(tag, _)| *tag).collect();
    assert_eq!(tags, [0x14, 0x1B, 0x1F, 0x25]);
    assert_eq!(identity.other_fields[3].1, b"from the future");
}

#[test]
fn birth_dates_of_every_language_and_unknown_ones() {
    for (text, expected) in [
        ("12.MÄR.1948", Some(date(1948, 3, 12))),
        ("01 AOUT 2001", Some(date(2001, 8, 1))),
        ("05 MAAR 1978", Some(date(1978, 3, 5))),
        ("   JAN 1950", None),
        ("      1950", None),
    ] {
        let identity = parse_identity(&identity_with(&[(0x0C, Some(text.as_bytes()))])).unwrap();
        assert_eq!(identity.birth_date, expected, "{text:?}");
        assert_eq!(identity.birth_date_text, text);
    }
}

#[test]
fn sexes_and_photo_hash_lengths() {
    for (code, sex) in [
        (&b"M"[..], Sex::M),
        (b"F", Sex::F),
        (b"W", Sex::F),
        (b"X", Sex::X),
    ] {
        let identity = parse_identity(&identity_with(&[(0x0D, Some(code))])).unwrap();
        assert_eq!(identity.sex, sex);
    }
    let sha1 = parse_identity(&identity_with(&[(0x11, Some(&[1; 20]))])).unwrap();
    assert_eq!(sha1.photo_hash, PhotoHash::Sha1([1; 20]));
    let sha384 = parse_identity(&identity_with(&[(0x11, Some(&[1; 48]))])).unwrap();
    assert_eq!(sha384.photo_hash, PhotoHash::Sha384([1; 48]));
}

#[test]
fn broken_fields_are_named_in_the_error() {
    let cases: &[(Changes<'_>, &str)] = &[
        (
            &[(0x06, None)],
            "the identity file has no national number (tag 0x06)",
        ),
        (
            &[(0x06, Some(b"8507300332"))],
            "the identity file has an invalid national number (tag 0x06): not 11 digits",
        ),
        (
            &[(0x11, Some(&[0; 21]))],
            "the identity file has an invalid photo hash (tag 0x11): not 20, 32 or 48 bytes long",
        ),
        (
            &[(0x04, Some(b"31.02.2034"))],
            "the identity file has an invalid validity end (tag 0x04): not a DD.MM.YYYY date",
        ),
        (
            &[(0x0D, Some(b"Q"))],
            "the identity file has an invalid sex (tag 0x0D): not M, F, V, W or X",
        ),
        (
            &[(0x0F, Some(b"eid"))],
            "the identity file has an invalid document type (tag 0x0F): not a decimal number",
        ),
        (
            &[(0x1A, Some(&[0; 32]))],
            "the identity file has an invalid chip key hash (tag 0x1A): not 48 bytes long",
        ),
    ];
    for (changes, message) in cases {
        let error = parse_identity(&identity_with(changes)).unwrap_err();
        assert_eq!(error.to_string(), *message);
    }
    let error = parse_identity(&identity_with(&[(0x07, Some(&[0xC3, 0x28]))])).unwrap_err();
    assert!(
        matches!(error, FileError::InvalidField { tag: 0x07, .. }),
        "{error:?}"
    );
}

#[test]
fn a_truncated_file_reports_the_offset() {
    let mut bytes = identity_with(&[]);
    bytes.truncate(bytes.len() - 5);
    let error = parse_identity(&bytes).unwrap_err();
    assert_eq!(error.to_string(), "the identity file is damaged");
    let source = error.source().unwrap().downcast_ref::<TlvError>().unwrap();
    assert!(
        matches!(
            source,
            TlvError::TruncatedValue {
                tag: 0x11,
                declared: 32,
                available: 27,
                ..
            }
        ),
        "{source:?}"
    );
}

#[test]
fn the_address_file_ignores_its_padding() {
    let bytes = address_file("Rue de la Loi 16");
    assert_eq!(bytes.len(), 117);
    let address = parse_address(&bytes).unwrap();
    assert_eq!(address.street_and_number, "Rue de la Loi 16");
    assert!(!format!("{address:?}").contains("Loi"));

    let no_zip = tlv(&[(0x00, &[1]), (0x01, b"Markt 1"), (0x03, b"Brugge")]);
    assert_eq!(
        parse_address(&no_zip).unwrap_err().to_string(),
        "the address file has no postal code (tag 0x02)"
    );
}
