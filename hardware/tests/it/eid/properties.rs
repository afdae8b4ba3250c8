//! Arbitrary bytes into the TLV parser, the file parsers, the certificate reader and the T=0
//! session: errors, never panics, and memory bounded by the input.

use proptest::prelude::*;

use busloket_hardware::eid::apdu::FilePath;
use busloket_hardware::eid::{
    CardSession, Transmit, TransmitError, X509Certificate, parse_address, parse_identity, parse_tlv,
};

use super::fixtures::{encode, identity_fields};

/// A card answering from a list of arbitrary replies, then "removed".
struct ArbitraryCard(std::vec::IntoIter<Vec<u8>>);

impl Transmit for ArbitraryCard {
    fn transmit(&mut self, _command: &[u8]) -> Result<Vec<u8>, TransmitError> {
        self.0.next().ok_or(TransmitError::CardRemoved)
    }
}

proptest! {
    #[test]
    fn tlv_never_panics_and_stays_within_the_input(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(fields) = parse_tlv(&bytes) {
            prop_assert!(fields.len() <= bytes.len() / 2 + 1);
            let total: usize = fields.iter().map(|field| field.value.len()).sum();
            prop_assert!(total <= bytes.len());
        }
    }

    #[test]
    fn file_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = parse_identity(&bytes);
        let _ = parse_address(&bytes);
        let _ = X509Certificate::from_card_file(&bytes);
    }

    #[test]
    fn birth_dates_never_panic_and_round_trip(text in "\\PC{0,16}", day in 1u32..=28, month in 0usize..12, year in 1900i32..2100) {
        let _ = busloket_hardware::eid::files::parse_birth_date(&text);
        let dutch = ["JAN", "FEB", "MAAR", "APR", "MEI", "JUN", "JUL", "AUG", "SEP", "OKT", "NOV", "DEC"];
        let german = ["JAN", "FEB", "MÄR", "APR", "MAI", "JUN", "JUL", "AUG", "SEP", "OKT", "NOV", "DEZ"];
        let expected = chrono::NaiveDate::from_ymd_opt(year, month as u32 + 1, day);
        let parse = busloket_hardware::eid::files::parse_birth_date;
        prop_assert_eq!(parse(&format!("{day:02} {} {year}", dutch[month])), expected);
        prop_assert_eq!(parse(&format!("{day:02}.{}.{year}", german[month])), expected);
    }

    #[test]
    fn mutated_identity_files_never_panic(
        position in 0usize..400,
        value in any::<u8>(),
        cut in 0usize..400,
    ) {
        let mut bytes = encode(&identity_fields(&[3; 32], Some(&[4; 48])));
        let len = bytes.len();
        bytes[position % len] = value;
        bytes.truncate(cut.max(1).min(len));
        let _ = parse_identity(&bytes);
    }

    #[test]
    fn the_session_never_panics_on_any_answers(
        answers in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..300),
                (any::<u8>(), any::<u8>()).prop_map(|(sw1, sw2)| vec![sw1, sw2]),
                (prop_oneof![Just(0x61u8), Just(0x6C), Just(0x90), Just(0x6B), Just(0x63)], any::<u8>())
                    .prop_map(|(sw1, sw2)| vec![sw1, sw2]),
            ],
            0..40,
        )
    ) {
        let mut session = CardSession::new(ArbitraryCard(answers.into_iter()));
        if let Ok(file) = session.read_file(FilePath::PHOTO) {
            prop_assert!(file.len() <= 0x7FFF + 252);
        }
        let _ = session.card_data();
        let _ = session.internal_authenticate(&[0; 48]);
    }
}
