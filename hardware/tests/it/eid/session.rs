//! The card session over a scripted card: T=0 (`61xx`, `6Cxx`), chunked reads, `6B00`, PIN
//! status words, holder authentication and the chip challenge, with APDU transcripts.

use std::collections::VecDeque;

use expect_test::{Expect, expect};

use busloket_hardware::eid::apdu::{self, AuthenticationAlgorithm, FilePath, Pin, PinError};
use busloket_hardware::eid::{CardSession, SessionError, Transmit, TransmitError};

/// A card that answers from a script, in order, and writes down what it was sent. The data of a
/// VERIFY is written as `**`, as a real log must.
#[derive(Default)]
pub struct ScriptedCard {
    answers: VecDeque<Result<Vec<u8>, TransmitError>>,
    pub transcript: String,
}

impl ScriptedCard {
    pub fn new() -> ScriptedCard {
        ScriptedCard::default()
    }

    /// Answers the next command with `data` followed by the status word.
    pub fn answer(mut self, data: &[u8], status: u16) -> ScriptedCard {
        let mut reply = data.to_vec();
        reply.extend_from_slice(&status.to_be_bytes());
        self.answers.push_back(Ok(reply));
        self
    }

    pub fn answer_raw(mut self, reply: &[u8]) -> ScriptedCard {
        self.answers.push_back(Ok(reply.to_vec()));
        self
    }

    pub fn fail(mut self, error: TransmitError) -> ScriptedCard {
        self.answers.push_back(Err(error));
        self
    }

    fn check(&self, expected: Expect) {
        assert!(
            self.answers.is_empty(),
            "unused answers: {}",
            self.answers.len()
        );
        expected.assert_eq(&self.transcript);
    }
}

impl Transmit for ScriptedCard {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransmitError> {
        let shown: Vec<String> = if command.get(1) == Some(&0x20) {
            command
                .iter()
                .take(5)
                .map(|b| format!("{b:02X}"))
                .chain(["**".into()])
                .collect()
        } else {
            command.iter().map(|b| format!("{b:02X}")).collect()
        };
        self.transcript
            .push_str(&format!("> {}\n", shown.join(" ")));
        let answer = self
            .answers
            .pop_front()
            .expect("the script has no more answers");
        match &answer {
            Ok(reply) if reply.len() >= 2 => {
                let (data, status) = reply.split_at(reply.len() - 2);
                self.transcript.push_str(&format!(
                    "< [{} bytes] {:02X}{:02X}\n",
                    data.len(),
                    status[0],
                    status[1]
                ));
            }
            Ok(reply) => self.transcript.push_str(&format!("< {reply:02X?}\n")),
            Err(error) => self.transcript.push_str(&format!("< error: {error}\n")),
        }
        answer
    }
}

fn bytes(length: usize) -> Vec<u8> {
    (0..length).map(|i| i as u8).collect()
}

#[test]
fn a_file_is_read_in_chunks_and_6cxx_gives_the_last_one() {
    let mut card = ScriptedCard::new()
        .answer(&[], 0x9000)
        .answer(&bytes(252), 0x9000)
        .answer(&[], 0x6C30)
        .answer(&bytes(48), 0x9000);
    let file = CardSession::new(&mut card)
        .read_file(FilePath::IDENTITY)
        .unwrap();
    assert_eq!(file.len(), 300);
    assert_eq!(&file[252..], &bytes(48)[..]);
    card.check(expect![[r#"
        > 00 A4 08 0C 04 DF 01 40 31
        < [0 bytes] 9000
        > 00 B0 00 00 FC
        < [252 bytes] 9000
        > 00 B0 00 FC FC
        < [0 bytes] 6C30
        > 00 B0 00 FC 30
        < [48 bytes] 9000
    "#]]);
}

#[test]
fn status_6b00_ends_a_file_whose_size_is_a_multiple_of_the_chunk() {
    let mut card = ScriptedCard::new()
        .answer(&[], 0x9000)
        .answer(&bytes(252), 0x9000)
        .answer(&[], 0x6B00);
    let file = CardSession::new(&mut card)
        .read_file(FilePath::PHOTO)
        .unwrap();
    assert_eq!(file.len(), 252);

    let mut card = ScriptedCard::new().answer(&[], 0x9000).answer(&[], 0x6B00);
    let error = CardSession::new(&mut card)
        .read_file(FilePath::PHOTO)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the card refused READ BINARY: status 6B00 (offset beyond the end of the file)"
    );
}

#[test]
fn select_falls_back_to_the_file_identifier_chain() {
    let mut card = ScriptedCard::new()
        .answer(&[], 0x6A86)
        .answer(&[], 0x9000)
        .answer(&[], 0x9000)
        .answer(&[], 0x9000)
        .answer(&bytes(10), 0x9000);
    let file = CardSession::new(&mut card)
        .read_file(FilePath::RRN_CERTIFICATE)
        .unwrap();
    assert_eq!(file, bytes(10));
    card.check(expect![[r#"
        > 00 A4 08 0C 04 DF 00 50 3C
        < [0 bytes] 6A86
        > 00 A4 02 0C 02 3F 00
        < [0 bytes] 9000
        > 00 A4 02 0C 02 DF 00
        < [0 bytes] 9000
        > 00 A4 02 0C 02 50 3C
        < [0 bytes] 9000
        > 00 B0 00 00 FC
        < [10 bytes] 9000
    "#]]);

    let mut card = ScriptedCard::new()
        .answer(&[], 0x6A82)
        .answer(&[], 0x9000)
        .answer(&[], 0x9000)
        .answer(&[], 0x6A82);
    let error = CardSession::new(&mut card)
        .read_file(FilePath::BASIC_KEY)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the card refused SELECT: status 6A82 (file not found)"
    );
}

#[test]
fn a_card_pulled_mid_read_is_the_transport_error_not_a_short_file() {
    let mut card = ScriptedCard::new()
        .answer(&[], 0x9000)
        .answer(&bytes(252), 0x9000)
        .fail(TransmitError::CardRemoved);
    let error = CardSession::new(&mut card)
        .read_file(FilePath::PHOTO)
        .unwrap_err();
    assert!(
        matches!(error, SessionError::Transmit(TransmitError::CardRemoved)),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "the card was removed from the reader");
}

#[test]
fn odd_answers_are_errors() {
    let mut card = ScriptedCard::new().answer_raw(&[0x90]);
    let error = CardSession::new(&mut card).select_applet().unwrap_err();
    assert_eq!(
        error.to_string(),
        "the card answered SELECT with 1 bytes, too few for a status word"
    );

    let mut card = ScriptedCard::new()
        .answer(&[], 0x9000)
        .answer(&bytes(253), 0x9000);
    let error = CardSession::new(&mut card)
        .read_file(FilePath::PHOTO)
        .unwrap_err();
    assert!(
        matches!(
            error,
            SessionError::ChunkTooLong {
                asked: 252,
                got: 253
            }
        ),
        "{error:?}"
    );

    let mut card = ScriptedCard::new().answer(&[], 0x61FF);
    for _ in 0..32 {
        card = card.answer(&bytes(255), 0x61FF);
    }
    let error = CardSession::new(&mut card)
        .internal_authenticate(&[0; 48])
        .unwrap_err();
    assert!(
        matches!(error, SessionError::ResponseTooLong { .. }),
        "{error:?}"
    );
}

#[test]
fn card_data_tells_the_applet_version() {
    let mut data = bytes(28);
    data[21] = 0x18;
    let mut card = ScriptedCard::new()
        .answer(&[], 0x6C1C)
        .answer(&data, 0x9000);
    let card_data = CardSession::new(&mut card).card_data().unwrap();
    assert_eq!(card_data.applet_version, 0x18);
    assert_eq!(card_data.serial_number, bytes(16)[..]);
    assert_eq!(card_data.global_os_version, 0x1617);
    assert_eq!(card_data.life_cycle, 27);
    assert!(card_data.has_basic_key());
    assert_eq!(
        card_data.authentication_algorithm(),
        AuthenticationAlgorithm::EcdsaSha384
    );
    card.check(expect![[r#"
        > 80 E4 00 00 1C
        < [0 bytes] 6C1C
        > 80 E4 00 00 1C
        < [28 bytes] 9000
    "#]]);

    let mut card = ScriptedCard::new().answer(&bytes(20), 0x9000);
    let error = CardSession::new(&mut card).card_data().unwrap_err();
    assert_eq!(
        error.to_string(),
        "the card data is 20 bytes long, fewer than 28"
    );

    let mut data = bytes(31);
    data[28] = 2;
    let mut card = ScriptedCard::new()
        .answer(&data, 0x9000)
        .answer(&[], 0x6D00);
    let mut session = CardSession::new(&mut card);
    assert_eq!(session.pin_tries_left().unwrap(), 2);
    let error = session.pin_tries_left().unwrap_err();
    assert!(matches!(error, SessionError::Refused { status, .. } if status.0 == 0x6D00));
    card.check(expect![[r#"
        > 80 E4 00 01 1F
        < [31 bytes] 9000
        > 80 E4 00 01 1F
        < [0 bytes] 6D00
    "#]]);
}

#[test]
fn pin_results_and_the_pin_never_shows() {
    let pin = Pin::new("1234").unwrap();
    assert_eq!(format!("{pin:?} {pin}"), "Pin(****) ****");
    let command = apdu::verify_pin(&pin);
    assert_eq!(
        command.to_bytes(),
        [
            0x00, 0x20, 0x00, 0x01, 0x08, 0x24, 0x12, 0x34, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF
        ]
    );
    assert_eq!(format!("{command:?}"), "00 20 00 01 08 **");
    assert_eq!(
        apdu::verify_pin(&Pin::new("123456789012").unwrap()).to_bytes()[5..],
        [0x2C, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0xFF]
    );
    assert_eq!(Pin::new("123"), Err(PinError::WrongLength));
    assert_eq!(Pin::new("1234567890123"), Err(PinError::WrongLength));
    assert_eq!(Pin::new("12a4"), Err(PinError::NotDigits));

    let mut card = ScriptedCard::new()
        .answer(&[], 0x63C2)
        .answer(&[], 0x63C0)
        .answer(&[], 0x6983)
        .answer(&[], 0x9000);
    let mut session = CardSession::new(&mut card);
    let wrong = session.verify_pin(&pin).unwrap_err();
    assert!(matches!(wrong, SessionError::WrongPin { tries_left: 2 }));
    assert_eq!(wrong.to_string(), "wrong PIN: 2 tries left");
    assert!(matches!(
        session.verify_pin(&pin),
        Err(SessionError::PinBlocked)
    ));
    assert!(matches!(
        session.verify_pin(&pin),
        Err(SessionError::PinBlocked)
    ));
    session.verify_pin(&pin).unwrap();
    assert!(!card.transcript.contains("12 34"), "{}", card.transcript);
}

#[test]
fn holder_authentication_uses_key_82_and_get_response() {
    let digest = [0xAB; 48];
    let mut card = ScriptedCard::new()
        .answer(&[], 0x9000)
        .answer(&[], 0x9000)
        .answer(&[], 0x6160)
        .answer(&bytes(96), 0x9000);
    let signature = CardSession::new(&mut card)
        .authenticate(AuthenticationAlgorithm::EcdsaSha384, &digest)
        .unwrap();
    assert_eq!(signature, bytes(96));
    card.check(expect![[r#"
        > 00 A4 08 0C 02 DF 00
        < [0 bytes] 9000
        > 00 22 41 B6 05 04 80 02 84 82
        < [0 bytes] 9000
        > 00 2A 9E 9A 30 AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB
        < [0 bytes] 6160
        > 00 C0 00 00 60
        < [96 bytes] 9000
    "#]]);

    // RSA: 256 bytes come as 61 00, then GET RESPONSE for 256 (Le 00).
    let mut card = ScriptedCard::new()
        .answer(&[], 0x9000)
        .answer(&[], 0x9000)
        .answer(&[], 0x6100)
        .answer(&bytes(256), 0x9000);
    let signature = CardSession::new(&mut card)
        .authenticate(AuthenticationAlgorithm::RsaPkcs1Sha256, &[1; 32])
        .unwrap();
    assert_eq!(signature.len(), 256);
    assert!(
        card.transcript
            .contains("> 00 22 41 B6 05 04 80 08 84 82\n")
    );
    assert!(card.transcript.contains("> 00 C0 00 00 00\n"));

    let mut card = ScriptedCard::new();
    let error = CardSession::new(&mut card)
        .authenticate(AuthenticationAlgorithm::RsaPkcs1Sha256, &digest)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "a digest for RsaPkcs1Sha256 has 32 bytes, not 48"
    );

    let mut card = ScriptedCard::new()
        .answer(&[], 0x9000)
        .answer(&[], 0x9000)
        .answer(&[], 0x6982);
    let error = CardSession::new(&mut card)
        .authenticate(AuthenticationAlgorithm::EcdsaSha384, &digest)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the card refused PSO: COMPUTE DIGITAL SIGNATURE: status 6982 (security status not satisfied)"
    );
}

#[test]
fn the_chip_challenge_follows_repeated_61xx_and_6cxx() {
    let mut card = ScriptedCard::new()
        .answer(&[], 0x6160)
        .answer(&bytes(32), 0x6140)
        .answer(&[], 0x6C20)
        .answer(&bytes(32), 0x6120)
        .answer(&bytes(32), 0x9000)
        .answer(&[], 0x9000);
    let mut session = CardSession::new(&mut card);
    let response = session.internal_authenticate(&[0x5A; 48]).unwrap();
    assert_eq!(response.len(), 96);
    session.log_off().unwrap();
    card.check(expect![[r#"
        > 00 88 02 81 32 94 30 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A 5A
        < [0 bytes] 6160
        > 00 C0 00 00 60
        < [32 bytes] 6140
        > 00 C0 00 00 40
        < [0 bytes] 6C20
        > 00 C0 00 00 20
        < [32 bytes] 6120
        > 00 C0 00 00 20
        < [32 bytes] 9000
        > 80 E6 00 00
        < [0 bytes] 9000
    "#]]);
}

#[test]
fn command_builders() {
    let show = |command: apdu::Command| format!("{command:?}");
    assert_eq!(
        show(apdu::select_applet()),
        "00 A4 04 0C 0F A0 00 00 00 30 29 05 70 00 AD 13 10 01 01 FF"
    );
    assert_eq!(show(apdu::select_file(0x3F00)), "00 A4 02 0C 02 3F 00");
    assert_eq!(
        show(apdu::select_path(FilePath::ADDRESS)),
        "00 A4 08 0C 04 DF 01 40 33"
    );
    assert_eq!(show(apdu::read_binary(0x1234, 0xFC)), "00 B0 12 34 FC");
    assert_eq!(show(apdu::get_response(0)), "00 C0 00 00 00");
    assert_eq!(show(apdu::get_card_data()), "80 E4 00 00 1C");
    assert_eq!(show(apdu::log_off()), "80 E6 00 00");
    assert_eq!(
        FilePath::AUTHENTICATION_CERTIFICATE.to_string(),
        "3F00/DF00/5038"
    );
}
