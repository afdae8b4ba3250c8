//! The PIN: the try counter, blocking, the status query that spends no try, and the
//! transcript that never shows a PIN.

use busloket_virtual_eid::{CardSpec, Profile, render_transcript};

use crate::support::{TOM, card, card_from, citizen, send, verify_apdu};

const STATUS_QUERY: [u8; 4] = [0x00, 0x20, 0x00, 0x01];

#[test]
fn three_wrong_pins_block_the_card_for_good() {
    let mut card = card(Profile::Applet18, TOM);
    assert_eq!(send(&mut card, &STATUS_QUERY).1, [0x63, 0xC3]);
    assert_eq!(send(&mut card, &verify_apdu("0000")).1, [0x63, 0xC2]);
    assert_eq!(send(&mut card, &verify_apdu("9999")).1, [0x63, 0xC1]);
    assert_eq!(
        send(&mut card, &verify_apdu("123456")).1,
        [0x63, 0xC0],
        "the try that blocks"
    );
    assert_eq!(
        send(&mut card, &verify_apdu("1234")).1,
        [0x69, 0x83],
        "blocked: even the right PIN"
    );
    assert_eq!(send(&mut card, &STATUS_QUERY).1, [0x69, 0x83]);
    assert_eq!(
        send(&mut card, &[0x00, 0x20, 0x00, 0x01, 0x00]).1,
        [0x69, 0x83]
    );
    let (data, _) = send(&mut card, &[0x80, 0xE4, 0x00, 0x01, 0x1F]);
    assert_eq!(data[28], 0, "GET CARD DATA shows no tries left");
    card.reset();
    assert_eq!(
        send(&mut card, &verify_apdu("1234")).1,
        [0x69, 0x83],
        "a reset does not unblock"
    );
    assert_eq!(card.pin_tries_left(), 0);
}

#[test]
fn a_correct_pin_restores_the_tries() {
    let mut card = card(Profile::Applet17, TOM);
    assert_eq!(send(&mut card, &verify_apdu("4321")).1, [0x63, 0xC2]);
    assert_eq!(send(&mut card, &verify_apdu("1234")).1, [0x90, 0x00]);
    assert_eq!(send(&mut card, &STATUS_QUERY).1, [0x90, 0x00], "verified");
    assert_eq!(card.pin_tries_left(), 3);
    assert_eq!(
        send(&mut card, &verify_apdu("4321")).1,
        [0x63, 0xC2],
        "counted from 3 again"
    );
    assert_eq!(
        send(&mut card, &STATUS_QUERY).1,
        [0x63, 0xC2],
        "and the right is gone"
    );
}

#[test]
fn log_off_and_reset_withdraw_the_pin_but_keep_the_counter() {
    let mut card = card(Profile::Applet18, TOM);
    assert_eq!(send(&mut card, &verify_apdu("1111")).1, [0x63, 0xC2]);
    assert_eq!(send(&mut card, &verify_apdu("1234")).1, [0x90, 0x00]);
    assert_eq!(send(&mut card, &[0x80, 0xE6, 0x00, 0x00]).1, [0x90, 0x00]);
    assert_eq!(send(&mut card, &STATUS_QUERY).1, [0x63, 0xC3]);
    assert_eq!(send(&mut card, &verify_apdu("1234")).1, [0x90, 0x00]);
    assert_eq!(send(&mut card, &verify_apdu("1111")).1, [0x63, 0xC2]);
    card.reset();
    assert_eq!(
        send(&mut card, &STATUS_QUERY).1,
        [0x63, 0xC2],
        "the counter survives a reset"
    );
}

#[test]
fn malformed_pin_blocks_spend_no_try() {
    let mut card = card(Profile::Applet18, TOM);
    let mut not_bcd = verify_apdu("1234");
    not_bcd[6] = 0x3A;
    assert_eq!(send(&mut card, &not_bcd).1, [0x6A, 0x80]);
    let mut wrong_control = verify_apdu("1234");
    wrong_control[5] = 0x14;
    assert_eq!(send(&mut card, &wrong_control).1, [0x6A, 0x80]);
    let too_short = [0x00, 0x20, 0x00, 0x01, 0x04, 0x24, 0x12, 0x34, 0xFF];
    assert_eq!(send(&mut card, &too_short).1, [0x67, 0x00]);
    let other_pin = [&[0x00, 0x20, 0x00, 0x02][..], &verify_apdu("1234")[4..]].concat();
    assert_eq!(send(&mut card, &other_pin).1, [0x6A, 0x88]);
    assert_eq!(card.pin_tries_left(), 3);
}

#[test]
fn a_longer_pin_works_too() {
    let spec = CardSpec::new(citizen(TOM)).with_pin("987654321012");
    let mut card = card_from(Profile::Applet18, &spec);
    assert_eq!(send(&mut card, &verify_apdu("1234")).1, [0x63, 0xC2]);
    assert_eq!(
        send(&mut card, &verify_apdu("987654321012")).1,
        [0x90, 0x00]
    );
}

#[test]
fn the_transcript_masks_the_pin() {
    let mut card = card(Profile::Applet18, TOM);
    send(&mut card, &verify_apdu("1234"));
    send(&mut card, &verify_apdu("9876"));
    let transcript = render_transcript(card.transcript());
    assert_eq!(
        transcript,
        "> 00 20 00 01 08 ** ** ** ** ** ** ** **\n< 90 00\n\
         > 00 20 00 01 08 ** ** ** ** ** ** ** **\n< 63 C2\n"
    );
    for exchange in card.transcript() {
        assert!(
            exchange.command[5..].iter().all(Option::is_none),
            "{exchange:?}"
        );
    }
}
