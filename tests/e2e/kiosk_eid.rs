//! The kiosk with a real card reader: the node reads the virtual eID through pcscd, the page
//! follows the card in and out, and the request is made for the citizen the card names.
//!
//! With the PIN: a criminal-record extract for oneself is automatic once the card signs the
//! request. The citizen types a wrong PIN (the page and the card both count 2 tries left), then
//! the right one; the stored request says `card-pin` and carries the card's signature, which this
//! test checks itself over the request's holder statement, rebuilt from the API's answer.
//!
//! One pcscd per host: every test name here contains "pcscd" (`.config/nextest.toml`).

use anyhow::{Context, Result, bail, ensure};
use busloket_e2e::{
    Browser, Pcscd, TestNode, VPCD_READER, click, insert_virtual_card, pull_virtual_card, wait_for,
};
use busloket_hardware::eid::X509Certificate;
use busloket_hardware::eid::verify::verify_holder_signature;
use busloket_hardware::{DemoCitizen, DemoRole, DocumentType, HolderAlgorithm, demo_citizens};
use busloket_virtual_eid::{
    CardSpec, DEFAULT_PIN, DEFAULT_SEED, Exchange, Profile, TestPki, VirtualCard, file, personalise,
};
use fantoccini::Locator;
use serde_json::Value;

/// Starts a node reading cards through pcscd, with the kiosk station `tablet-1` on the vpcd
/// reader and the test roots of `pkis` as its only trust anchors.
async fn start_pcsc_node(pkis: &[&TestPki]) -> Result<TestNode> {
    let roots: Vec<Vec<u8>> = pkis
        .iter()
        .map(|pki| pki.root_certificate_der().to_vec())
        .collect();
    TestNode::start_with(move |dir, config| {
        let mut anchors = Vec::new();
        for (index, root) in roots.iter().enumerate() {
            let name = format!("test-root-{index}.der");
            std::fs::write(dir.join(&name), root)?;
            anchors.push(format!("\"{name}\""));
        }
        Ok(config
            .replace(
                "[card_readers]\nkind = \"simulated\"",
                &format!(
                    "[card_readers]\nkind = \"pcsc\"\ntrust_anchors = [{}]\nallow_test_roots = true",
                    anchors.join(", ")
                ),
            )
            .replace("reader = \"Demo Reader 1\"", &format!("reader = \"{VPCD_READER}\""))
            .replace("reader = \"Demo Desk Reader\"", "reader = \"Virtual PCD 00 01\""))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiosk_reads_the_card_through_pcscd() -> Result<()> {
    let _pcscd = Pcscd::start()?;
    let pki = TestPki::generate(Profile::Applet18, DEFAULT_SEED)?;
    let node = start_pcsc_node(&[&pki]).await?;
    let citizen = demo_citizens()
        .into_iter()
        .next()
        .context("a demo citizen")?;
    let browser = Browser::start(820, 1180).await?;
    let client = &browser.client;
    client.goto(&node.url("/kiosk/tablet-1")).await?;
    click(client, "main button[value='en']").await?;
    wait_for(client, "main .card-picture").await?;

    let card = personalise(
        &CardSpec::demo_citizen(&citizen.card.national_number).context("card")?,
        &pki,
    )?;
    let inserted = insert_virtual_card(card).await?;
    let for_whom = wait_for(client, "form[action$='/for-whom']")
        .await
        .context("the kiosk did not move on when the card went in")?;
    let first_name = citizen
        .card
        .first_names
        .split_whitespace()
        .next()
        .unwrap_or_default();
    assert!(
        client
            .source()
            .await?
            .contains(&format!("Hello {first_name}"))
    );
    browser.screenshot("kiosk-eid-01-card-read").await?;
    for_whom
        .find(Locator::Css("button[value='self']"))
        .await?
        .click()
        .await?;
    click(client, "button[value='birth-extract']").await?;
    click(client, "button[value='print-here']").await?;
    click(client, "form[action$='/confirm'] button").await?;
    wait_for(client, ".queue-number").await?;
    browser.screenshot("kiosk-eid-02-done").await?;

    // The request carries what the card proved.
    let token = node.sign_in().await?;
    let today: Vec<serde_json::Value> = node
        .http
        .get(node.url("/api/v1/requests"))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    let id = today
        .first()
        .and_then(|entry| entry["id"].as_str())
        .context("the request is listed")?;
    let view: serde_json::Value = node
        .http
        .get(node.url(&format!("/api/v1/requests/{id}")))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    let evidence = &view["evidence"];
    assert_eq!(evidence["applet_version"], 0x18, "{view}");
    assert_eq!(evidence["register_signature_verified"], true);
    assert_eq!(evidence["chip_verified"], true);
    assert_eq!(
        evidence["identity_file_sha256"].as_str().map(str::len),
        Some(64)
    );

    pull_virtual_card(inserted).await?;
    wait_for(client, "main form.choices button[value='nl']")
        .await
        .context("pulling the card did not clear the kiosk")?;
    assert!(!client.source().await?.contains(&citizen.card.surname));
    browser.close().await?;
    Ok(())
}

/// The document a PIN makes automatic for oneself (the catalogue says `automatic_requires =
/// "card-pin"`); it asks for a purpose.
const EXTRACT: &str = "criminal-record-595";
/// Not the card's PIN ([`DEFAULT_PIN`]).
const WRONG_PIN: &str = "9876";
/// The tries a card has before a wrong PIN, and again after the right one.
const PIN_TRIES: u8 = 3;
const PURPOSE: &str = "Vrijwilligerswerk in de jeugdbeweging";
/// VERIFY (class, instruction).
const VERIFY: (u8, u8) = (0x00, 0x20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiosk_confirms_with_the_pin_through_pcscd() -> Result<()> {
    let _pcscd = Pcscd::start()?;
    let pki_18 = TestPki::generate(Profile::Applet18, DEFAULT_SEED)?;
    let pki_17 = TestPki::generate(Profile::Applet17, DEFAULT_SEED)?;
    let node = start_pcsc_node(&[&pki_18, &pki_17]).await?;
    let citizen = demo_citizens()
        .into_iter()
        .find(|citizen| {
            citizen.role == DemoRole::Adult && citizen.card.document_type == DocumentType::Eid
        })
        .context("an adult demo citizen with a Belgian eID")?;
    let browser = Browser::start(820, 1180).await?;
    let token = node.sign_in().await?;
    // Screenshots of the first run only: the screens do not depend on the applet.
    confirm_with_pin(&node, &browser, &token, &citizen, &pki_18, true).await?;
    confirm_with_pin(&node, &browser, &token, &citizen, &pki_17, false).await?;
    browser.close().await?;
    Ok(())
}

/// One citizen at the kiosk, in Dutch, with a card of `pki`'s generation: the extract for
/// themselves, a wrong PIN, the right PIN, the request as stored, the card pulled.
async fn confirm_with_pin(
    node: &TestNode,
    browser: &Browser,
    token: &str,
    citizen: &DemoCitizen,
    pki: &TestPki,
    screenshots: bool,
) -> Result<()> {
    let profile = pki.profile();
    let client = &browser.client;
    let shot = |name: &str| {
        let name = format!("kiosk-pin-{name}");
        async move {
            if screenshots {
                browser.screenshot(&name).await?;
            }
            anyhow::Ok(())
        }
    };
    client.goto(&node.url("/kiosk/tablet-1")).await?;
    click(client, "main button[value='nl']").await?;
    wait_for(client, "main .card-picture").await?;

    let spec = CardSpec::demo_citizen(&citizen.card.national_number).context("a demo card")?;
    ensure!(
        spec.pin == DEFAULT_PIN,
        "demo cards are made with the default PIN"
    );
    let inserted = insert_virtual_card(personalise(&spec, pki)?).await?;
    wait_for(client, "form[action$='/for-whom'] button[value='self']")
        .await
        .with_context(|| format!("{profile}: the kiosk does not show the card's citizen"))?
        .click()
        .await?;

    // The documents: the extract is ready right away, with the PIN.
    let extract = wait_for(client, &format!("button[value='{EXTRACT}']")).await?;
    let badge = extract.find(Locator::Css(".badge")).await?;
    let badge_text = badge.text().await?;
    ensure!(
        badge_text.contains("Meteen klaar met uw pincode"),
        "{profile}: the extract's badge says {badge_text:?}"
    );
    ensure!(
        badge.attr("class").await?.as_deref() == Some("badge automatic"),
        "{profile}: the PIN badge is not drawn as automatic"
    );
    scroll_into_view(client, &extract, "center").await?;
    shot("01-documents-nl").await?;
    extract.click().await?;

    wait_for(client, "input#purpose")
        .await?
        .send_keys(PURPOSE)
        .await?;
    client
        .find(Locator::Css(
            "form[action$='/purpose'] button[type='submit']",
        ))
        .await?
        .click()
        .await?;
    click(client, "button[value='print-here']").await?;

    // The confirm screen asks for the PIN, hidden, and offers the way without it.
    let pin = wait_for(client, "form.pin input#pin").await?;
    ensure!(
        pin.attr("type").await?.as_deref() == Some("password")
            && pin.attr("name").await?.as_deref() == Some("pin"),
        "{profile}: the PIN field is not a password field named `pin`"
    );
    let skip = client
        .find(Locator::Css(
            "form[action$='/confirm']:not(.pin) button[type='submit']",
        ))
        .await?
        .text()
        .await?;
    ensure!(
        skip.contains("Ik ken mijn pincode niet"),
        "{profile}: the way without a PIN says {skip:?}"
    );
    shot("02-confirm-nl").await?;
    // The whole PIN form, down to its button, under the screen's title: as the citizen sees it
    // after scrolling (it does not fit under the header on a tablet held upright).
    scroll_into_view(
        client,
        &client.find(Locator::Css("main h1")).await?,
        "start",
    )
    .await?;
    shot("03-confirm-pin-form-nl").await?;

    // A wrong PIN: the card counts it and the page says how many tries are left.
    pin.send_keys(WRONG_PIN).await?;
    client
        .find(Locator::Css("form.pin button[type='submit']"))
        .await?
        .click()
        .await?;
    let problem = wait_for(client, "main .message.problem[role='alert']")
        .await
        .with_context(|| format!("{profile}: no message after a wrong PIN"))?
        .text()
        .await?;
    ensure!(
        problem.contains("Deze pincode is niet juist. U kunt het nog 2 keer proberen."),
        "{profile}: after a wrong PIN the page says {problem:?}"
    );
    let pin = client.find(Locator::Css("form.pin input#pin")).await?;
    ensure!(
        pin.prop("value").await?.as_deref() == Some(""),
        "{profile}: the PIN field kept the wrong PIN"
    );
    shot("04-wrong-pin-nl").await?;

    // The right PIN: the request is stored and automatic.
    pin.send_keys(DEFAULT_PIN).await?;
    client
        .find(Locator::Css("form.pin button[type='submit']"))
        .await?
        .click()
        .await?;
    let queue_number = wait_for(client, ".queue-number")
        .await
        .with_context(|| format!("{profile}: the right PIN did not lead to the done screen"))?
        .text()
        .await?;
    let done = client.find(Locator::Css("main")).await?.text().await?;
    ensure!(
        done.contains("Uw document wordt klaargemaakt."),
        "{profile}: the done screen does not say the document is being prepared:\n{done}"
    );
    shot("05-done-nl").await?;
    let queue_number: u64 = queue_number.trim().parse().context("the queue number")?;

    let inserted_card = pull_virtual_card(inserted).await?;
    wait_for(client, "main form.choices button[value='nl']")
        .await
        .with_context(|| format!("{profile}: pulling the card did not clear the kiosk"))?;
    check_pin_tries(&inserted_card, profile)?;

    let view = stored_request(node, token, queue_number).await?;
    check_stored_request(&view, &inserted_card, citizen, profile)
}

/// Scrolls the page so that `element` is in view, at `block` ("start", "center", "end").
async fn scroll_into_view(
    client: &fantoccini::Client,
    element: &fantoccini::elements::Element,
    block: &str,
) -> Result<()> {
    client
        .execute(
            "arguments[0].scrollIntoView({block: arguments[1]});",
            vec![serde_json::to_value(element)?, Value::from(block)],
        )
        .await?;
    Ok(())
}

/// The card's own word on the PIN: the first VERIFY was answered "2 tries left" (`63 C2`), the
/// second accepted, and the counter is full again.
fn check_pin_tries(card: &VirtualCard, profile: Profile) -> Result<()> {
    let verifies: Vec<&Exchange> = card
        .transcript()
        .iter()
        .filter(|exchange| {
            matches!(exchange.command.as_slice(), [Some(cla), Some(ins), ..] if (*cla, *ins) == VERIFY)
        })
        .collect();
    let answers: Vec<[u8; 2]> = verifies
        .iter()
        .map(|exchange| exchange.status_word())
        .collect();
    ensure!(
        answers == [[0x63, 0xC2], [0x90, 0x00]],
        "{profile}: the card answered the PIN verifications {answers:02X?}"
    );
    ensure!(
        card.pin_tries_left() == PIN_TRIES,
        "{profile}: the card has {} tries left after the right PIN",
        card.pin_tries_left()
    );
    Ok(())
}

/// The request with that queue number today, as the API shows it to a clerk.
async fn stored_request(node: &TestNode, token: &str, queue_number: u64) -> Result<Value> {
    let today: Vec<Value> = node
        .http
        .get(node.url("/api/v1/requests"))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = today
        .iter()
        .find(|entry| entry["queue_number"].as_u64() == Some(queue_number))
        .and_then(|entry| entry["id"].as_str())
        .with_context(|| format!("number {queue_number} is not in today's list"))?;
    Ok(node
        .http
        .get(node.url(&format!("/api/v1/requests/{id}")))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// The request says the holder confirmed with their PIN, and carries a signature of this card
/// over this request's holder statement.
fn check_stored_request(
    view: &Value,
    card: &VirtualCard,
    citizen: &DemoCitizen,
    profile: Profile,
) -> Result<()> {
    ensure!(view["document"] == EXTRACT, "{profile}: {view}");
    ensure!(view["authentication"] == "card-pin", "{profile}: {view}");
    ensure!(view["purpose"] == PURPOSE, "{profile}: {view}");
    let evidence = &view["evidence"];
    let applet = match profile {
        Profile::Applet17 => 0x17,
        Profile::Applet18 => 0x18,
    };
    ensure!(
        evidence["applet_version"] == applet,
        "{profile}: {evidence}"
    );
    ensure!(
        evidence["register_signature_verified"] == true,
        "{profile}: {evidence}"
    );
    let holder = &evidence["holder"];
    let algorithm = match (holder["algorithm"].as_str(), profile) {
        (Some("ecdsa-p384-sha384"), Profile::Applet18) => HolderAlgorithm::EcdsaP384Sha384,
        (Some("rsa-pkcs1-sha256"), Profile::Applet17) => HolderAlgorithm::RsaPkcs1Sha256,
        (other, _) => bail!("{profile}: the holder evidence names the algorithm {other:?}"),
    };
    let signature = bytes(&holder["signature"]).context("the holder signature")?;
    let certificate_der = bytes(&holder["certificate"]).context("the holder certificate")?;
    let card_file = card
        .file(file::AUTHENTICATION_CERTIFICATE)
        .context("the card has no file 5038")?;
    ensure!(
        !certificate_der.is_empty()
            && card_file.starts_with(&certificate_der)
            && card_file[certificate_der.len()..]
                .iter()
                .all(|&byte| byte == 0),
        "{profile}: the stored certificate is not the card's authentication certificate"
    );
    let certificate = X509Certificate::from_der(&certificate_der)?;
    let statement = holder_statement(view)?;
    verify_holder_signature(
        &certificate,
        &citizen.card.national_number,
        &algorithm.digest(&statement),
        &signature,
    )
    .with_context(|| {
        format!(
            "{profile}: the stored signature does not verify over the statement\n{}",
            String::from_utf8_lossy(&statement)
        )
    })?;
    Ok(())
}

/// A byte string as the API writes it: a JSON array of numbers.
fn bytes(value: &Value) -> Result<Vec<u8>> {
    value
        .as_array()
        .with_context(|| format!("not an array of bytes: {value}"))?
        .iter()
        .map(|byte| {
            byte.as_u64()
                .and_then(|byte| u8::try_from(byte).ok())
                .with_context(|| format!("not a byte: {byte}"))
        })
        .collect()
}

/// The holder statement of the request `view`, version 1 (see `busloket_sync::record::
/// holder_statement`): rebuilt here from the documented layout and the API's answer, so the check
/// does not rely on the node's own code.
fn holder_statement(view: &Value) -> Result<Vec<u8>> {
    let fields = [
        ("request", "/id", true),
        ("document", "/document", true),
        ("requester", "/requester/national_number", true),
        ("subject", "/subject/national_number", true),
        ("relation", "/relation", true),
        ("channel", "/channel", true),
        ("delivery", "/delivery/method", true),
        ("email", "/delivery/email", false),
        ("purpose", "/purpose", false),
        ("device", "/origin/device", true),
        ("station", "/origin/station", true),
        ("stop", "/origin/stop", false),
    ];
    let mut text = String::from("busloket holder statement v1\n");
    for (key, pointer, required) in fields {
        let value = match view.pointer(pointer) {
            Some(value @ Value::String(_)) => value.to_string(),
            None | Some(Value::Null) if !required => "null".to_owned(),
            other => bail!("the request's {pointer} is {other:?}"),
        };
        text.push_str(&format!("{key}: {value}\n"));
    }
    let at = view
        .pointer("/origin/at")
        .and_then(Value::as_str)
        .context("the request has no origin time")?;
    text.push_str(&format!("at: {}\n", unix_millis(at)?));
    Ok(text.into_bytes())
}

/// Milliseconds since the Unix epoch of an RFC 3339 time in UTC (`2026-11-23T10:15:30.123Z`).
fn unix_millis(time: &str) -> Result<i64> {
    let bad = || format!("not an RFC 3339 UTC time: {time:?}");
    let utc = time
        .strip_suffix('Z')
        .or_else(|| time.strip_suffix("+00:00"))
        .with_context(bad)?;
    let (date, clock) = utc.split_once('T').with_context(bad)?;
    let number = |text: &str| text.parse::<i64>().with_context(bad);
    let mut date = date.split('-');
    let (year, month, day) = match (date.next(), date.next(), date.next()) {
        (Some(year), Some(month), Some(day)) => (number(year)?, number(month)?, number(day)?),
        _ => bail!(bad()),
    };
    let (clock, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut clock = clock.split(':');
    let (hour, minute, second) = match (clock.next(), clock.next(), clock.next()) {
        (Some(hour), Some(minute), Some(second)) => {
            (number(hour)?, number(minute)?, number(second)?)
        }
        _ => bail!(bad()),
    };
    // Whole milliseconds: the first three digits of the fraction.
    let millis = number(&format!("{fraction:0<3}")[..3])?;
    // Days from the civil date (Howard Hinnant's algorithm, proleptic Gregorian).
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Ok(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

#[test]
fn unix_millis_reads_utc_times() -> Result<()> {
    assert_eq!(unix_millis("1970-01-01T00:00:00Z")?, 0);
    assert_eq!(unix_millis("2026-11-23T10:15:30.123Z")?, 1_795_428_930_123);
    assert_eq!(
        unix_millis("2000-02-29T23:59:59.999999+00:00")?,
        951_868_799_999
    );
    assert_eq!(unix_millis("2026-11-23T10:15:30.1Z")?, 1_795_428_930_100);
    assert!(unix_millis("2026-11-23T10:15:30+01:00").is_err());
    Ok(())
}
