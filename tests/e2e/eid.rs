//! Belgian eID cards through the real pcscd: the virtual card (applet 1.7 and 1.8) plugs into
//! vpcd, the PC/SC driver sees it arrive, reads and verifies it — every demo citizen, kids and
//! foreigner cards, long names and accents included; forged cards are refused with
//! the reason; pcscd killed under the driver comes back and reading works again; a card pulled
//! in the middle of a read is `CardRemoved`, never an identity, and the next card reads fine.
//!
//! One pcscd per host: tests that start it have "pcscd" in their name, and nextest runs them one
//! at a time (`.config/nextest.toml`).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use busloket_e2e::{
    Pcscd, VPCD_READER, expect_card_event, insert_virtual_card, insert_virtual_card_pulled_after,
    pull_virtual_card,
};
use busloket_hardware::eid::TrustAnchors;
use busloket_hardware::{CardError, CardEvent, CardReaders, PcscReaders, demo_citizens};
use busloket_virtual_eid::{
    CardSpec, DEFAULT_SEED, Forgery, InsertedCard, Profile, Removal, TestPki, VirtualCard,
    personalise,
};
use tokio::sync::broadcast;

const READER: &str = VPCD_READER;

/// Plugs the card into vpcd and waits until the driver has seen it.
async fn insert_card(
    card: VirtualCard,
    events: &mut broadcast::Receiver<CardEvent>,
) -> Result<InsertedCard> {
    let inserted = insert_virtual_card(card).await?;
    let inserted_event = CardEvent::CardInserted {
        reader: READER.into(),
    };
    expect_card_event(events, inserted_event).await?;
    Ok(inserted)
}

async fn pull_card(
    inserted: InsertedCard,
    events: &mut broadcast::Receiver<CardEvent>,
) -> Result<()> {
    pull_virtual_card(inserted).await?;
    expect_card_event(
        events,
        CardEvent::CardRemoved {
            reader: READER.into(),
        },
    )
    .await
}

/// Waits until the driver lists the vpcd reader.
async fn wait_for_reader(
    readers: &PcscReaders,
    events: &mut broadcast::Receiver<CardEvent>,
) -> Result<()> {
    let started = Instant::now();
    while !readers.readers().iter().any(|reader| reader.name == READER) {
        if started.elapsed() > Duration::from_secs(10) {
            bail!(
                "the driver did not find {READER}; readers: {:?}",
                readers.readers()
            );
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), events.recv()).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eid_cards_through_pcscd() -> Result<()> {
    let mut pcscd = Pcscd::start()?;
    let pki_17 = TestPki::generate(Profile::Applet17, DEFAULT_SEED)?;
    let pki_18 = TestPki::generate(Profile::Applet18, DEFAULT_SEED)?;
    let anchors =
        TrustAnchors::from_der([pki_17.root_certificate_der(), pki_18.root_certificate_der()])?;
    let readers = PcscReaders::start(anchors)?;
    let mut events = readers.subscribe();
    wait_for_reader(&readers, &mut events).await?;

    let citizens = demo_citizens();
    let tom = citizens
        .iter()
        .find(|c| !c.children.is_empty())
        .context("a demo parent")?;
    let other = citizens
        .iter()
        .find(|c| c.card.national_number != tom.card.national_number)
        .context("another citizen")?;
    let spec = || CardSpec::demo_citizen(&tom.card.national_number).context("Tom's card");

    // Genuine cards of both generations are read and verified.
    for pki in [&pki_18, &pki_17] {
        let inserted = insert_card(personalise(&spec()?, pki)?, &mut events).await?;
        let started = Instant::now();
        let identity = readers
            .read_identity(READER)
            .await
            .with_context(|| format!("{:?}", pki.profile()))?;
        eprintln!(
            "{:?}: read and verified in {:?}",
            pki.profile(),
            started.elapsed()
        );
        assert_eq!(identity.national_number, tom.card.national_number);
        assert_eq!(identity.surname, tom.card.surname);
        assert_eq!(identity.address.municipality, tom.card.address.municipality);
        assert!(!identity.photo_jpeg.is_empty());
        assert!(
            readers
                .readers()
                .iter()
                .any(|r| r.name == READER && r.card_present)
        );
        pull_card(inserted, &mut events).await?;
    }

    // Every demo citizen's card, on both generations: a Kids-ID without authentication
    // certificate, a foreigner card, accents, a German card, a name longer than 255 bytes.
    // Applet 1.7 cards need RSA keys made per card (slow in a debug build): two of them suffice
    // next to every citizen on 1.8.
    let on_17 = |c: &&busloket_hardware::DemoCitizen| {
        !matches!(c.card.document_type, busloket_hardware::DocumentType::Eid)
    };
    for pki in [&pki_18, &pki_17] {
        for citizen in citizens
            .iter()
            .filter(|c| pki.profile() == Profile::Applet18 || on_17(c))
        {
            let spec =
                CardSpec::demo_citizen(&citizen.card.national_number).context("a demo card")?;
            let inserted = insert_card(personalise(&spec, pki)?, &mut events).await?;
            let identity = readers.read_identity(READER).await.with_context(|| {
                format!("{} on {:?}", citizen.card.display_name(), pki.profile())
            })?;
            assert_eq!(identity.national_number, citizen.card.national_number);
            assert_eq!(identity.first_names, citizen.card.first_names);
            assert_eq!(identity.surname, citizen.card.surname);
            assert_eq!(identity.document_type, citizen.card.document_type);
            assert_eq!(identity.birth_date, citizen.card.birth_date);
            assert_eq!(identity.address, citizen.card.address);
            pull_card(inserted, &mut events).await?;
        }
    }
    // A surname longer than 255 bytes, with accents: the TLV length runs over two bytes.
    let mut long_name = tom.card.clone();
    long_name.surname = "Van den Élst-Ölçer de Sainte-Thérèse "
        .repeat(8)
        .trim_end()
        .to_owned();
    assert!(long_name.surname.len() > 255);
    let inserted = insert_card(
        personalise(&CardSpec::new(long_name.clone()), &pki_18)?,
        &mut events,
    )
    .await?;
    let identity = readers.read_identity(READER).await?;
    assert_eq!(identity.surname, long_name.surname);
    pull_card(inserted, &mut events).await?;

    // Forged cards are refused, each for its own reason.
    let forgeries = [
        (Forgery::AlteredIdentity, "identity"),
        (Forgery::ReplacedPhoto, "photo"),
        (
            Forgery::SwappedAddress(Box::new(other.card.clone())),
            "address",
        ),
        (
            Forgery::CopiedToAnotherChip {
                other_chip_number: other.card.chip_number.clone(),
            },
            "chip",
        ),
    ];
    for (forgery, topic) in forgeries {
        let inserted = insert_card(
            personalise(&spec()?.with_forgery(forgery), &pki_18)?,
            &mut events,
        )
        .await?;
        match readers.read_identity(READER).await {
            Err(CardError::NotTrusted { reason, .. }) => {
                assert!(
                    reason.contains(topic),
                    "a forged {topic} refused for another reason: {reason}"
                )
            }
            other => bail!("a forged {topic} was not refused: {other:?}"),
        }
        pull_card(inserted, &mut events).await?;
    }

    // A card from another register (another test PKI) is not trusted either.
    let foreign = TestPki::generate(Profile::Applet18, DEFAULT_SEED + 1)?;
    let inserted = insert_card(personalise(&spec()?, &foreign)?, &mut events).await?;
    assert!(matches!(
        readers.read_identity(READER).await,
        Err(CardError::NotTrusted { .. })
    ));
    pull_card(inserted, &mut events).await?;

    // No card: a clear error.
    assert!(matches!(
        readers.read_identity(READER).await,
        Err(CardError::NoCard { .. })
    ));

    // pcscd dies under the driver and comes back: the reader returns and reading works again.
    pcscd.kill_hard()?;
    expect_card_event(
        &mut events,
        CardEvent::ReaderRemoved {
            reader: READER.into(),
        },
    )
    .await?;
    drop(pcscd);
    let _pcscd = Pcscd::start()?;
    expect_card_event(
        &mut events,
        CardEvent::ReaderAdded {
            reader: READER.into(),
        },
    )
    .await?;
    let inserted = insert_card(personalise(&spec()?, &pki_18)?, &mut events).await?;
    let identity = readers.read_identity(READER).await?;
    assert_eq!(identity.national_number, tom.card.national_number);
    pull_card(inserted, &mut events).await?;
    Ok(())
}

/// A citizen pulls the card half-way through the read: the driver answers `CardRemoved` (never
/// an identity, never a vaguer error), the monitor announces the removal, and a complete card put
/// in the same reader afterwards reads and verifies as if nothing happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_pulled_mid_read_through_pcscd_is_card_removed() -> Result<()> {
    let _pcscd = Pcscd::start()?;
    let pki = TestPki::generate(Profile::Applet18, DEFAULT_SEED)?;
    let readers = PcscReaders::start(TrustAnchors::from_der([pki.root_certificate_der()])?)?;
    let mut events = readers.subscribe();
    wait_for_reader(&readers, &mut events).await?;
    let citizen = demo_citizens()
        .into_iter()
        .next()
        .context("a demo citizen")?;
    let card = || -> Result<VirtualCard> {
        let spec = CardSpec::demo_citizen(&citizen.card.national_number).context("a demo card")?;
        Ok(personalise(&spec, &pki)?)
    };
    let removed_event = CardEvent::CardRemoved {
        reader: READER.into(),
    };

    // After the applet selection, in the middle of the identity files, and in the photo: a
    // complete read of an applet 1.8 card takes 38 APDUs.
    for apdus in [1, 10, 25] {
        let inserted = insert_virtual_card_pulled_after(card()?, apdus).await?;
        expect_card_event(
            &mut events,
            CardEvent::CardInserted {
                reader: READER.into(),
            },
        )
        .await?;
        match readers.read_identity(READER).await {
            Err(CardError::CardRemoved { reader }) => assert_eq!(reader, READER),
            Err(other) => bail!("a card pulled after {apdus} APDUs gave {other:?}"),
            Ok(_) => bail!("a card pulled after {apdus} APDUs gave an identity"),
        }
        expect_card_event(&mut events, removed_event.clone())
            .await
            .with_context(|| format!("pulled after {apdus} APDUs"))?;
        let (pulled, removal) =
            tokio::task::spawn_blocking(move || inserted.wait_until_removed()).await??;
        assert_eq!(removal, Removal::PulledAfterApdus(apdus));
        assert_eq!(pulled.transcript().len(), apdus);
        assert!(
            !readers
                .readers()
                .iter()
                .any(|reader| reader.name == READER && reader.card_present),
            "the reader still shows a card: {:?}",
            readers.readers()
        );

        // A complete card in the same reader: nothing of the pulled one is left over.
        let inserted = insert_card(card()?, &mut events).await?;
        let identity = readers
            .read_identity(READER)
            .await
            .with_context(|| format!("the card after one pulled after {apdus} APDUs"))?;
        assert!(identity.national_number == citizen.card.national_number);
        assert_eq!(identity.surname, citizen.card.surname);
        assert!(
            identity
                .evidence
                .is_some_and(|evidence| evidence.chip_verified)
        );
        let complete = pull_virtual_card(inserted).await?;
        expect_card_event(&mut events, removed_event.clone()).await?;
        assert!(
            complete.transcript().len() > apdus,
            "the complete card answered {} APDUs",
            complete.transcript().len()
        );
    }
    Ok(())
}
