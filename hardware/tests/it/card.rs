//! The simulated card readers: inserting, pulling, events, reads that race a pulled card, and
//! the masking of personal data in `Debug`, and the holder's PIN on demo cards.

use std::sync::Arc;
use std::time::Duration;

use busloket_hardware::card::DEMO_PIN;
use busloket_hardware::eid::Pin;
use busloket_hardware::{
    CardError, CardEvent, CardReaders, DocumentType, HolderRequest, ReaderState, SimCardReaders,
    demo_citizens,
};
use tokio::sync::broadcast::error::TryRecvError;

const TOM: &str = "78031203701";
const SARAH: &str = "80092711839";

fn readers() -> SimCardReaders {
    SimCardReaders::new(
        vec!["kiosk-1".into(), "desk".into(), "kiosk-1".into()],
        demo_citizens(),
    )
}

#[tokio::test]
async fn readers_start_empty_in_the_given_order_without_duplicates() {
    let readers: Arc<dyn CardReaders> = Arc::new(readers());
    assert_eq!(
        readers.readers(),
        vec![
            ReaderState {
                name: "kiosk-1".into(),
                card_present: false
            },
            ReaderState {
                name: "desk".into(),
                card_present: false
            },
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_inserted_card_is_announced_and_reads_as_the_demo_citizen() {
    let readers = readers();
    let mut events = readers.subscribe();

    readers.insert("kiosk-1", "78.03.12-037.01").unwrap();

    assert_eq!(
        events.recv().await.unwrap(),
        CardEvent::CardInserted {
            reader: "kiosk-1".into()
        }
    );
    assert_eq!(readers.inserted("kiosk-1").as_deref(), Some(TOM));
    assert_eq!(readers.inserted("desk"), None);
    assert!(readers.readers()[0].card_present);

    let started = tokio::time::Instant::now();
    let identity = readers.read_identity("kiosk-1").await.unwrap();
    assert_eq!(
        started.elapsed(),
        busloket_hardware::card::DEFAULT_READ_DELAY
    );
    assert_eq!(identity.national_number, TOM);
    assert_eq!(identity.surname, "Janssens");
    assert_eq!(identity.document_type, DocumentType::Eid);
    assert!(identity.demo);
}

#[tokio::test]
async fn inserting_an_unknown_citizen_fails_clearly_without_echoing_the_number() {
    let readers = readers();
    let error = readers.insert("kiosk-1", "85073100328").unwrap_err();
    assert!(
        matches!(error, CardError::UnknownDemoCitizen { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert_eq!(
        message,
        "no demo citizen has the national number **.**.**-***.28"
    );
    assert_eq!(readers.inserted("kiosk-1"), None);
}

#[tokio::test]
async fn unknown_readers_and_empty_readers_are_errors() {
    let readers = readers();
    assert!(matches!(
        readers.insert("kiosk-9", TOM),
        Err(CardError::UnknownReader { reader }) if reader == "kiosk-9"
    ));
    assert!(matches!(readers.pull("desk"), Err(CardError::NoCard { reader }) if reader == "desk"));
    assert!(matches!(
        readers.read_identity("desk").await,
        Err(CardError::NoCard { .. })
    ));
    assert!(matches!(
        readers.read_identity("kiosk-9").await,
        Err(CardError::UnknownReader { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn a_card_pulled_during_the_read_fails_with_card_removed() {
    let readers = readers().with_read_delay(Duration::from_millis(200));
    readers.insert("desk", SARAH).unwrap();

    let read = readers.read_identity("desk");
    tokio::pin!(read);
    // The read has started and now waits for the card.
    assert!(futures::poll!(&mut read).is_pending());
    readers.pull("desk").unwrap();

    assert!(matches!(read.await, Err(CardError::CardRemoved { reader }) if reader == "desk"));
}

#[tokio::test(start_paused = true)]
async fn a_card_swapped_during_the_read_fails_even_if_it_is_the_same_card() {
    let readers = readers().with_read_delay(Duration::from_millis(200));
    readers.insert("desk", SARAH).unwrap();

    let read = readers.read_identity("desk");
    tokio::pin!(read);
    assert!(futures::poll!(&mut read).is_pending());
    readers.pull("desk").unwrap();
    readers.insert("desk", SARAH).unwrap();

    assert!(matches!(read.await, Err(CardError::CardRemoved { .. })));
    // The card now in the reader reads fine.
    assert_eq!(
        readers.read_identity("desk").await.unwrap().national_number,
        SARAH
    );
}

#[tokio::test(start_paused = true)]
async fn a_reader_unplugged_during_the_read_fails_with_card_removed() {
    let readers = readers().with_read_delay(Duration::from_millis(200));
    readers.insert("desk", SARAH).unwrap();
    let read = readers.read_identity("desk");
    tokio::pin!(read);
    assert!(futures::poll!(&mut read).is_pending());
    readers.remove_reader("desk").unwrap();
    assert!(matches!(read.await, Err(CardError::CardRemoved { .. })));
}

#[tokio::test]
async fn swapping_cards_announces_the_removal_then_the_insertion() {
    let readers = readers();
    readers.insert("kiosk-1", TOM).unwrap();
    let mut events = readers.subscribe();

    readers.insert("kiosk-1", SARAH).unwrap();
    readers.pull("kiosk-1").unwrap();

    let kiosk = || "kiosk-1".to_owned();
    assert_eq!(
        events.try_recv().unwrap(),
        CardEvent::CardRemoved { reader: kiosk() }
    );
    assert_eq!(
        events.try_recv().unwrap(),
        CardEvent::CardInserted { reader: kiosk() }
    );
    assert_eq!(
        events.try_recv().unwrap(),
        CardEvent::CardRemoved { reader: kiosk() }
    );
    assert_eq!(events.try_recv(), Err(TryRecvError::Empty));
}

#[tokio::test]
async fn readers_can_be_plugged_and_unplugged() {
    let readers = readers();
    let mut events = readers.subscribe();
    readers.add_reader("kiosk-2");
    readers.add_reader("kiosk-2");
    readers.insert("kiosk-2", TOM).unwrap();
    readers.remove_reader("kiosk-2").unwrap();

    let kiosk = || "kiosk-2".to_owned();
    assert_eq!(
        events.try_recv().unwrap(),
        CardEvent::ReaderAdded { reader: kiosk() }
    );
    assert_eq!(
        events.try_recv().unwrap(),
        CardEvent::CardInserted { reader: kiosk() }
    );
    assert_eq!(
        events.try_recv().unwrap(),
        CardEvent::CardRemoved { reader: kiosk() }
    );
    assert_eq!(
        events.try_recv().unwrap(),
        CardEvent::ReaderRemoved { reader: kiosk() }
    );
    assert_eq!(events.try_recv(), Err(TryRecvError::Empty));
    assert!(matches!(
        readers.remove_reader("kiosk-2"),
        Err(CardError::UnknownReader { .. })
    ));
    assert_eq!(readers.readers().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_card_and_a_stopped_service_give_their_errors() {
    let readers = readers();
    readers
        .insert_unreadable("kiosk-1", "the chip does not answer")
        .unwrap();
    assert!(readers.readers()[0].card_present);
    assert_eq!(readers.inserted("kiosk-1"), None);
    let error = readers.read_identity("kiosk-1").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "the card in reader \"kiosk-1\" cannot be read: the chip does not answer"
    );

    readers.insert("desk", TOM).unwrap();
    readers.set_service_down(Some("pcscd is not running"));
    assert_eq!(readers.readers(), vec![]);
    assert!(matches!(
        readers.read_identity("desk").await,
        Err(CardError::ServiceUnavailable { reason }) if reason == "pcscd is not running"
    ));
    readers.set_service_down(None);
    assert_eq!(
        readers.read_identity("desk").await.unwrap().national_number,
        TOM
    );
}

#[test]
fn debug_masks_the_national_number_and_the_street() {
    let tom = demo_citizens()
        .into_iter()
        .find(|c| c.card.national_number == TOM)
        .unwrap();
    let debug = format!("{:?}", tom);
    assert!(!debug.contains(TOM), "{debug}");
    assert!(!debug.contains("Demostraat"), "{debug}");
    assert!(debug.contains("**.**.**-***.01"), "{debug}");
    assert!(debug.contains("8500"), "{debug}");
    assert_eq!(tom.card.masked_national_number(), "**.**.**-***.01");
}

#[test]
fn identities_serialise_without_the_photo_and_come_back_equal() {
    let mut card = demo_citizens().remove(0).card;
    let json = serde_json::to_value(&card).unwrap();
    assert!(json.get("photo_jpeg").is_none());
    assert_eq!(json["document_type"], 1);
    assert_eq!(json["sex"], "M");
    assert_eq!(json["birth_date"], "1978-03-12");
    assert_eq!(
        serde_json::from_value::<busloket_hardware::CardIdentity>(json.clone()).unwrap(),
        card
    );

    card.photo_jpeg = vec![0xff, 0xd8, 0xff];
    let back: busloket_hardware::CardIdentity =
        serde_json::from_value(serde_json::to_value(&card).unwrap()).unwrap();
    assert!(back.photo_jpeg.is_empty());
}

#[test]
fn document_type_codes_map_both_ways() {
    for (code, document_type) in [
        (1, DocumentType::Eid),
        (6, DocumentType::KidsId),
        (11, DocumentType::ForeignerCard { code: 11 }),
        (31, DocumentType::ForeignerCard { code: 31 }),
        (66, DocumentType::ForeignerCard { code: 66 }),
        (7, DocumentType::Other { code: 7 }),
    ] {
        assert_eq!(DocumentType::from(code), document_type);
        assert_eq!(document_type.code(), code);
    }
}

fn holder_request(pin: &str, expected: Option<&str>) -> HolderRequest {
    HolderRequest {
        pin: Pin::new(pin).unwrap(),
        statement: b"busloket test statement".to_vec(),
        expected_national_number: expected.map(str::to_owned),
    }
}

#[tokio::test(start_paused = true)]
async fn a_demo_card_signs_with_the_demo_pin_and_says_it_is_a_demo() {
    let readers = readers();
    readers.insert("kiosk-1", TOM).unwrap();
    let signature = readers
        .authenticate_holder("kiosk-1", holder_request(DEMO_PIN, Some(TOM)))
        .await
        .unwrap();
    assert_eq!(signature.national_number, TOM);
    assert!(signature.demo);
    assert!(signature.signature.is_empty());
    assert!(!format!("{signature:?}").contains(TOM));
}

#[tokio::test(start_paused = true)]
async fn wrong_pins_count_down_block_the_card_and_a_right_pin_resets_the_count() {
    let readers = readers();
    readers.insert("kiosk-1", TOM).unwrap();
    let attempt =
        |pin: &'static str| readers.authenticate_holder("kiosk-1", holder_request(pin, None));
    assert!(matches!(
        attempt("9999").await,
        Err(CardError::WrongPin { tries_left: 2, .. })
    ));
    attempt(DEMO_PIN).await.unwrap();
    assert_eq!(readers.pin_tries_left(TOM), 3);
    assert!(matches!(
        attempt("9999").await,
        Err(CardError::WrongPin { tries_left: 2, .. })
    ));
    assert!(matches!(
        attempt("0000").await,
        Err(CardError::WrongPin { tries_left: 1, .. })
    ));
    // The count stays with the card, not with the reader.
    readers.pull("kiosk-1").unwrap();
    readers.insert("desk", TOM).unwrap();
    assert!(matches!(
        readers
            .authenticate_holder("desk", holder_request("1111", None))
            .await,
        Err(CardError::PinBlocked { .. })
    ));
    assert!(matches!(
        readers
            .authenticate_holder("desk", holder_request(DEMO_PIN, None))
            .await,
        Err(CardError::PinBlocked { .. })
    ));
    assert_eq!(readers.pin_tries_left(TOM), 0);
}

#[tokio::test(start_paused = true)]
async fn a_kids_card_cannot_sign_and_keeps_its_tries() {
    const MILAN: &str = "17100321158";
    let readers = readers();
    readers.insert("kiosk-1", MILAN).unwrap();
    assert!(matches!(
        readers
            .authenticate_holder("kiosk-1", holder_request("9999", None))
            .await,
        Err(CardError::CannotSign { .. })
    ));
    assert_eq!(readers.pin_tries_left(MILAN), 3);
}

#[tokio::test(start_paused = true)]
async fn another_citizens_card_or_a_pulled_card_signs_nothing() {
    let readers = readers();
    readers.insert("kiosk-1", SARAH).unwrap();
    assert!(matches!(
        readers
            .authenticate_holder("kiosk-1", holder_request(DEMO_PIN, Some(TOM)))
            .await,
        Err(CardError::NotTrusted { .. })
    ));
    let pending = readers.authenticate_holder("kiosk-1", holder_request(DEMO_PIN, Some(SARAH)));
    let pull = async {
        tokio::task::yield_now().await;
        readers.pull("kiosk-1").unwrap();
    };
    let (result, ()) = tokio::join!(pending, pull);
    assert!(matches!(result, Err(CardError::CardRemoved { .. })));
    // The pulled card spent no try.
    assert_eq!(readers.pin_tries_left(SARAH), 3);
}
