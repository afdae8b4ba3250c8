//! Holder authentication through the real pcscd: the virtual Belgian eID (applet 1.7 with RSA,
//! applet 1.8 with ECDSA P-384) sits in vpcd and `PcscReaders::authenticate_holder` asks it to
//! sign a statement with the holder's PIN. These tests prove that
//!
//! - the right PIN gives a signature that verifies here, over a digest the test computes itself,
//!   under the card's own authentication certificate (the bytes of its file 5038), for the card's
//!   national number, with the algorithm of the card's generation, and not as a demo;
//! - the driver leaves no verified PIN behind: LOG OFF follows every signature, the card as it
//!   comes out of the reader refuses to sign again, and the next wrong PIN costs a try while the
//!   right one after it restores the counter;
//! - wrong PINs count down (2, then 1 tries left) and then block the PIN, which the right PIN no
//!   longer opens; the card's own counter agrees at every step;
//! - a Kids-ID card (no authentication certificate), someone else's card, and a card whose
//!   authentication certificate chains to a root the driver does not trust are refused before
//!   any VERIFY reaches the card: not one PIN try is spent, even with a wrong PIN.
//!
//! No PIN or national number is printed: comparisons of national numbers use messages that do
//! not show them. One pcscd per host: every test name contains "pcscd", and nextest runs those
//! one at a time (`.config/nextest.toml`).

use anyhow::{Context, Result, bail, ensure};
use busloket_e2e::{Pcscd, VPCD_READER, expect_card_event, insert_virtual_card, pull_virtual_card};
use busloket_hardware::eid::verify::verify_holder_signature;
use busloket_hardware::eid::{Pin, TrustAnchors, X509Certificate};
use busloket_hardware::{
    CardError, CardEvent, CardReaders, DemoCitizen, DocumentType, HolderAlgorithm, HolderRequest,
    HolderSignature, PcscReaders, demo_citizens,
};
use busloket_virtual_eid::{
    CardSpec, DEFAULT_PIN, DEFAULT_SEED, Exchange, InsertedCard, Profile, TestPki, VirtualCard,
    file, personalise, render_transcript,
};
use tokio::sync::broadcast;

const READER: &str = VPCD_READER;
/// What the card signs a digest of: in the node, a request statement bound to a fresh nonce.
const STATEMENT: &[u8] = b"busloket e2e: holder statement, request 42, nonce 5f1c0a77";
/// Not the card's PIN ([`DEFAULT_PIN`]).
const WRONG_PIN: &str = "9876";
/// The tries a fresh card (and a card after a right PIN) has.
const PIN_TRIES: u8 = 3;

/// Instruction bytes the tests look for in the card's transcript.
const VERIFY: (u8, u8) = (0x00, 0x20);
const MSE_SET: (u8, u8) = (0x00, 0x22);
const PSO: (u8, u8) = (0x00, 0x2A);
const GET_RESPONSE: (u8, u8) = (0x00, 0xC0);
const LOG_OFF: (u8, u8) = (0x80, 0xE6);

/// pcscd, the driver on it with the vpcd reader in sight, and the driver's card events.
struct Rig {
    readers: PcscReaders,
    events: broadcast::Receiver<CardEvent>,
    _pcscd: Pcscd,
}

impl Rig {
    async fn start(anchors: TrustAnchors) -> Result<Rig> {
        let pcscd = Pcscd::start()?;
        let readers = PcscReaders::start(anchors)?;
        // Subscribed before looking, so a reader that appears after the look is an event.
        let mut events = readers.subscribe();
        if !readers.readers().iter().any(|reader| reader.name == READER) {
            expect_card_event(
                &mut events,
                CardEvent::ReaderAdded {
                    reader: READER.into(),
                },
            )
            .await
            .context("the driver did not find the vpcd reader")?;
        }
        Ok(Rig {
            readers,
            events,
            _pcscd: pcscd,
        })
    }

    /// Plugs the card into vpcd and waits until the driver has seen it.
    async fn insert(&mut self, card: VirtualCard) -> Result<InsertedCard> {
        let inserted = insert_virtual_card(card).await?;
        expect_card_event(
            &mut self.events,
            CardEvent::CardInserted {
                reader: READER.into(),
            },
        )
        .await?;
        Ok(inserted)
    }

    /// Pulls the card, waits until the driver has seen it go, and gives the card back with its
    /// PIN counter and transcript.
    async fn pull(&mut self, inserted: InsertedCard) -> Result<VirtualCard> {
        let card = pull_virtual_card(inserted).await?;
        expect_card_event(
            &mut self.events,
            CardEvent::CardRemoved {
                reader: READER.into(),
            },
        )
        .await?;
        Ok(card)
    }

    async fn authenticate(
        &self,
        pin: &str,
        expected_national_number: Option<&str>,
    ) -> Result<Result<HolderSignature, CardError>> {
        let request = HolderRequest {
            pin: Pin::new(pin)?,
            statement: STATEMENT.to_vec(),
            expected_national_number: expected_national_number.map(str::to_owned),
        };
        Ok(self.readers.authenticate_holder(READER, request).await)
    }
}

/// The test PKIs of both generations (default seed) and anchors trusting both roots.
fn both_pkis() -> Result<([TestPki; 2], TrustAnchors)> {
    let pki_18 = TestPki::generate(Profile::Applet18, DEFAULT_SEED)?;
    let pki_17 = TestPki::generate(Profile::Applet17, DEFAULT_SEED)?;
    let anchors =
        TrustAnchors::from_der([pki_18.root_certificate_der(), pki_17.root_certificate_der()])?;
    Ok(([pki_18, pki_17], anchors))
}

/// An adult demo citizen with a Belgian eID (so with an authentication certificate).
fn adult() -> Result<DemoCitizen> {
    demo_citizens()
        .into_iter()
        .find(|citizen| citizen.card.document_type == DocumentType::Eid)
        .context("a demo citizen with a Belgian eID")
}

fn card_of(citizen: &DemoCitizen, pki: &TestPki) -> Result<VirtualCard> {
    let spec = CardSpec::demo_citizen(&citizen.card.national_number).context("a demo card")?;
    ensure!(
        spec.pin == DEFAULT_PIN,
        "demo cards are made with the default PIN"
    );
    Ok(personalise(&spec, pki)?)
}

fn expected_algorithm(profile: Profile) -> HolderAlgorithm {
    match profile {
        Profile::Applet17 => HolderAlgorithm::RsaPkcs1Sha256,
        Profile::Applet18 => HolderAlgorithm::EcdsaP384Sha384,
    }
}

/// The card's authentication certificate file (5038) as personalised: DER, then zero padding.
fn authentication_file(card: &VirtualCard) -> Result<Vec<u8>> {
    card.file(file::AUTHENTICATION_CERTIFICATE)
        .map(<[u8]>::to_vec)
        .context("the card has no file 5038")
}

/// Checks, without trusting the driver's own verification, that `signed` is the card's
/// signature over [`STATEMENT`]: its certificate is the one in the card's file 5038, it names
/// `national_number`, and its key verifies the signature over the digest computed here — and
/// not over the digest of another statement.
fn check_signature(
    signed: &HolderSignature,
    card_authentication_file: &[u8],
    national_number: &str,
    profile: Profile,
) -> Result<()> {
    ensure!(
        !signed.demo,
        "{profile}: a real card's signature is marked demo"
    );
    ensure!(
        signed.algorithm == expected_algorithm(profile),
        "{profile}: signed with {:?}",
        signed.algorithm
    );
    ensure!(
        signed.national_number == national_number,
        "{profile}: the signature names another national number than the card's"
    );
    let der = signed.certificate_der.as_slice();
    ensure!(
        !der.is_empty()
            && card_authentication_file.starts_with(der)
            && card_authentication_file[der.len()..]
                .iter()
                .all(|&byte| byte == 0),
        "{profile}: the certificate returned is not the card's authentication certificate"
    );
    let certificate = X509Certificate::from_der(der).context("the returned certificate")?;
    ensure!(
        certificate.subject_serial_number().as_deref() == Some(national_number),
        "{profile}: the certificate's serialNumber is not the card's national number"
    );
    let expected_length = match profile {
        // RSA-2048: the signature is as long as the modulus.
        Profile::Applet17 => 256,
        // P-384: r ‖ s, 48 bytes each.
        Profile::Applet18 => 96,
    };
    ensure!(
        signed.signature.len() == expected_length,
        "{profile}: a signature of {} bytes",
        signed.signature.len()
    );
    let digest = signed.algorithm.digest(STATEMENT);
    verify_holder_signature(&certificate, national_number, &digest, &signed.signature)
        .with_context(|| format!("{profile}: the card's signature does not verify"))?;
    let other_digest = signed.algorithm.digest(b"another statement");
    ensure!(
        verify_holder_signature(
            &certificate,
            national_number,
            &other_digest,
            &signed.signature
        )
        .is_err(),
        "{profile}: the signature also verifies over another statement's digest"
    );
    Ok(())
}

/// The class and instruction of a recorded command.
fn instruction(exchange: &Exchange) -> Option<(u8, u8)> {
    match exchange.command.as_slice() {
        [Some(cla), Some(ins), ..] => Some((*cla, *ins)),
        _ => None,
    }
}

fn count(transcript: &[Exchange], wanted: (u8, u8)) -> usize {
    transcript
        .iter()
        .filter(|exchange| instruction(exchange) == Some(wanted))
        .count()
}

/// The last command of that kind, as sent (never a VERIFY: its PIN bytes are masked).
fn last_command(transcript: &[Exchange], wanted: (u8, u8)) -> Result<Vec<u8>> {
    let exchange = transcript
        .iter()
        .rev()
        .find(|exchange| instruction(exchange) == Some(wanted))
        .with_context(|| format!("no {wanted:02X?} in the transcript"))?;
    exchange
        .command
        .iter()
        .map(|byte| byte.context("a masked byte"))
        .collect()
}

/// Every PSO in the transcript is answered `61xx`, its signature is fetched with GET RESPONSE,
/// and the very next command is a LOG OFF the card accepted. Returns the number of PSOs.
fn check_log_off_after_every_signature(transcript: &[Exchange]) -> Result<usize> {
    let mut signatures = 0;
    for (index, exchange) in transcript.iter().enumerate() {
        if instruction(exchange) != Some(PSO) {
            continue;
        }
        signatures += 1;
        ensure!(
            exchange.status_word()[0] == 0x61,
            "PSO answered {:02X?}",
            exchange.status_word()
        );
        let after = transcript[index + 1..]
            .iter()
            .find(|next| instruction(next) != Some(GET_RESPONSE))
            .context("nothing after the signature: no LOG OFF")?;
        ensure!(
            instruction(after) == Some(LOG_OFF) && after.status_word() == [0x90, 0x00],
            "after the signature came, instead of an accepted LOG OFF:\n{}",
            render_transcript(std::slice::from_ref(after))
        );
    }
    Ok(signatures)
}

/// Checks that nothing in the transcript touched the PIN or the authentication key.
fn check_no_pin_sent(transcript: &[Exchange], what: &str) -> Result<()> {
    ensure!(
        count(transcript, VERIFY) == 0,
        "{what}: the driver sent VERIFY ({} times) before refusing",
        count(transcript, VERIFY)
    );
    ensure!(
        count(transcript, MSE_SET) == 0 && count(transcript, PSO) == 0,
        "{what}: the driver went on to the signature"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn right_pin_signs_and_leaves_no_pin_behind_through_pcscd() -> Result<()> {
    let (pkis, anchors) = both_pkis()?;
    let mut rig = Rig::start(anchors).await?;
    let citizen = adult()?;
    let national_number = citizen.card.national_number.as_str();

    for pki in &pkis {
        let profile = pki.profile();
        let card = card_of(&citizen, pki)?;
        let card_authentication_file = authentication_file(&card)?;
        let inserted = rig.insert(card).await?;

        // The right PIN, for the citizen identified earlier: a signature that verifies here.
        let signed = rig
            .authenticate(DEFAULT_PIN, Some(national_number))
            .await?
            .with_context(|| format!("{profile}: the right PIN did not sign"))?;
        check_signature(&signed, &card_authentication_file, national_number, profile)?;

        // The PIN verified for that signature did not linger: a wrong one now is a wrong PIN,
        // and it costs a try.
        match rig.authenticate(WRONG_PIN, Some(national_number)).await? {
            Err(CardError::WrongPin { tries_left: 2, .. }) => {}
            other => bail!("{profile}: a wrong PIN after a signature gave {other:?}"),
        }
        // The right PIN after it signs again (the card says whose it is) and restores the tries.
        let signed_again = rig
            .authenticate(DEFAULT_PIN, None)
            .await?
            .with_context(|| format!("{profile}: the right PIN after a wrong one"))?;
        check_signature(
            &signed_again,
            &card_authentication_file,
            national_number,
            profile,
        )?;

        let mut card = rig.pull(inserted).await?;
        ensure!(
            card.pin_tries_left() == PIN_TRIES,
            "{profile}: the card has {} tries left after the right PIN, not {PIN_TRIES}",
            card.pin_tries_left()
        );
        let transcript = card.take_transcript();
        ensure!(
            count(&transcript, VERIFY) == 3,
            "{profile}: {} VERIFY commands for three authentications",
            count(&transcript, VERIFY)
        );
        ensure!(
            check_log_off_after_every_signature(&transcript)? == 2,
            "{profile}: not two signatures in the transcript"
        );
        // The card as the driver left it holds no verified PIN: replaying the driver's own
        // MSE SET and PSO on it is refused with "security status not satisfied".
        let mse_set = last_command(&transcript, MSE_SET)?;
        let pso = last_command(&transcript, PSO)?;
        let mse_answer = card.respond(&mse_set);
        ensure!(
            mse_answer == [0x90, 0x00],
            "{profile}: the replayed MSE SET answered {mse_answer:02X?}"
        );
        let pso_answer = card.respond(&pso);
        ensure!(
            pso_answer == [0x69, 0x82],
            "{profile}: the card left by the driver answered a PSO with {pso_answer:02X?}, \
             not 69 82: a verified PIN was left behind"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pins_block_the_pin_through_pcscd() -> Result<()> {
    let (pkis, anchors) = both_pkis()?;
    let mut rig = Rig::start(anchors).await?;
    let citizen = adult()?;
    let national_number = citizen.card.national_number.as_str();

    for pki in &pkis {
        let profile = pki.profile();
        let mut card = card_of(&citizen, pki)?;
        // Each step: one authentication with the card in the reader, then the card pulled to
        // read its own counter, and put back for the next step.
        let steps: [(&str, &str, u8); 4] = [
            ("first wrong PIN", WRONG_PIN, 2),
            ("second wrong PIN", WRONG_PIN, 1),
            ("third wrong PIN", WRONG_PIN, 0),
            ("right PIN on a blocked card", DEFAULT_PIN, 0),
        ];
        for (step, pin, tries_after) in steps {
            let inserted = rig.insert(card).await?;
            let outcome = rig.authenticate(pin, Some(national_number)).await?;
            match (&outcome, tries_after) {
                (Err(CardError::WrongPin { tries_left, .. }), 1..)
                    if *tries_left == tries_after => {}
                (Err(CardError::PinBlocked { .. }), 0) => {}
                _ => bail!("{profile}, {step}: {outcome:?}"),
            }
            card = rig.pull(inserted).await?;
            ensure!(
                card.pin_tries_left() == tries_after,
                "{profile}, {step}: the card counts {} tries left, the driver said {outcome:?}",
                card.pin_tries_left()
            );
            let transcript = card.take_transcript();
            ensure!(
                count(&transcript, VERIFY) == 1,
                "{profile}, {step}: {} VERIFY commands",
                count(&transcript, VERIFY)
            );
            ensure!(
                count(&transcript, PSO) == 0,
                "{profile}, {step}: the card was asked to sign without a verified PIN"
            );
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kids_id_cannot_sign_and_keeps_its_pin_tries_through_pcscd() -> Result<()> {
    let (pkis, anchors) = both_pkis()?;
    let mut rig = Rig::start(anchors).await?;
    let child = demo_citizens()
        .into_iter()
        .find(|citizen| citizen.card.document_type == DocumentType::KidsId)
        .context("a demo child with a Kids-ID")?;
    let national_number = child.card.national_number.as_str();
    let spec = CardSpec::demo_citizen(national_number).context("the Kids-ID card")?;
    ensure!(
        !spec.authentication_certificate,
        "a Kids-ID card is made without authentication certificate"
    );

    for pki in &pkis {
        let profile = pki.profile();
        let inserted = rig.insert(personalise(&spec, pki)?).await?;
        // A wrong PIN: had the driver sent it, the card would count it.
        for (pin, expected) in [(WRONG_PIN, Some(national_number)), (DEFAULT_PIN, None)] {
            match rig.authenticate(pin, expected).await? {
                Err(CardError::CannotSign { .. }) => {}
                other => bail!("{profile}: a Kids-ID card gave {other:?}"),
            }
        }
        let mut card = rig.pull(inserted).await?;
        ensure!(
            card.pin_tries_left() == PIN_TRIES,
            "{profile}: the Kids-ID card lost PIN tries ({} left)",
            card.pin_tries_left()
        );
        check_no_pin_sent(&card.take_transcript(), &format!("{profile} Kids-ID"))?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_elses_card_is_refused_before_the_pin_through_pcscd() -> Result<()> {
    let (pkis, anchors) = both_pkis()?;
    let mut rig = Rig::start(anchors).await?;
    let holder = adult()?;
    let identified = demo_citizens()
        .into_iter()
        .find(|citizen| citizen.card.national_number != holder.card.national_number)
        .context("another demo citizen")?;

    for pki in &pkis {
        let profile = pki.profile();
        let inserted = rig.insert(card_of(&holder, pki)?).await?;
        // The kiosk identified one citizen; the card in the reader is another's.
        for pin in [WRONG_PIN, DEFAULT_PIN] {
            match rig
                .authenticate(pin, Some(&identified.card.national_number))
                .await?
            {
                Err(CardError::NotTrusted { reason, .. }) => ensure!(
                    reason.contains("someone else"),
                    "{profile}: someone else's card refused for another reason: {reason}"
                ),
                other => bail!("{profile}: someone else's card gave {other:?}"),
            }
        }
        let mut card = rig.pull(inserted).await?;
        ensure!(
            card.pin_tries_left() == PIN_TRIES,
            "{profile}: someone else's card lost PIN tries ({} left)",
            card.pin_tries_left()
        );
        check_no_pin_sent(
            &card.take_transcript(),
            &format!("{profile} someone else's card"),
        )?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn card_of_an_untrusted_root_is_refused_before_the_pin_through_pcscd() -> Result<()> {
    // The driver trusts the 1.7 test root of the default seed, and nothing else.
    let trusted = TestPki::generate(Profile::Applet17, DEFAULT_SEED)?;
    let anchors = TrustAnchors::from_der([trusted.root_certificate_der()])?;
    let mut rig = Rig::start(anchors).await?;
    let citizen = adult()?;
    let national_number = citizen.card.national_number.as_str();

    // Genuine cards of registers the driver does not know: a 1.8 card (its root is not an
    // anchor) and a 1.7 card of another seed (same names, other keys).
    let untrusted = [
        TestPki::generate(Profile::Applet18, DEFAULT_SEED)?,
        TestPki::generate(Profile::Applet17, DEFAULT_SEED + 1)?,
    ];
    for pki in &untrusted {
        let profile = pki.profile();
        let inserted = rig.insert(card_of(&citizen, pki)?).await?;
        for pin in [WRONG_PIN, DEFAULT_PIN] {
            match rig.authenticate(pin, Some(national_number)).await? {
                Err(CardError::NotTrusted { reason, .. }) => ensure!(
                    reason.contains("authentication certificate is not trusted"),
                    "{profile} (seed {}): refused for another reason: {reason}",
                    pki.seed()
                ),
                other => bail!(
                    "{profile} (seed {}): a card of an untrusted root gave {other:?}",
                    pki.seed()
                ),
            }
        }
        let mut card = rig.pull(inserted).await?;
        ensure!(
            card.pin_tries_left() == PIN_TRIES,
            "{profile} (seed {}): the card lost PIN tries ({} left)",
            pki.seed(),
            card.pin_tries_left()
        );
        check_no_pin_sent(
            &card.take_transcript(),
            &format!("{profile} (seed {})", pki.seed()),
        )?;
    }

    // The same citizen's card from the trusted register signs: the refusals were the root's.
    let card = card_of(&citizen, &trusted)?;
    let card_authentication_file = authentication_file(&card)?;
    let inserted = rig.insert(card).await?;
    let signed = rig
        .authenticate(DEFAULT_PIN, Some(national_number))
        .await?
        .context("the trusted card did not sign")?;
    check_signature(
        &signed,
        &card_authentication_file,
        national_number,
        Profile::Applet17,
    )?;
    rig.pull(inserted).await?;
    Ok(())
}
