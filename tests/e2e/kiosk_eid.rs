//! The kiosk with a real card reader: the node reads the virtual eID through pcscd, the page
//! follows the card in and out, and the request is made for the citizen the card names.

use std::time::Duration;

use anyhow::{Context, Result};
use busloket_e2e::{Browser, Pcscd, TestNode, VPCD_READER, insert_virtual_card, pull_virtual_card};
use busloket_hardware::demo_citizens;
use busloket_virtual_eid::{CardSpec, DEFAULT_SEED, Profile, TestPki, personalise};
use fantoccini::Locator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiosk_reads_the_card_through_pcscd() -> Result<()> {
    let _pcscd = Pcscd::start()?;
    let pki = TestPki::generate(Profile::Applet18, DEFAULT_SEED)?;
    let root = pki.root_certificate_der().to_vec();
    let node = TestNode::start_with(move |dir, config| {
        std::fs::write(dir.join("test-root.der"), &root)?;
        Ok(config
            .replace(
                "[card_readers]\nkind = \"simulated\"",
                "[card_readers]\nkind = \"pcsc\"\ntrust_anchors = [\"test-root.der\"]\nallow_test_roots = true",
            )
            .replace("reader = \"Demo Reader 1\"", &format!("reader = \"{VPCD_READER}\""))
            .replace("reader = \"Demo Desk Reader\"", "reader = \"Virtual PCD 00 01\""))
    })
    .await?;
    let citizen = demo_citizens()
        .into_iter()
        .next()
        .context("a demo citizen")?;
    let browser = Browser::start(820, 1180).await?;
    let client = &browser.client;
    client.goto(&node.url("/kiosk/tablet-1")).await?;
    client
        .wait()
        .for_element(Locator::Css("main button[value='en']"))
        .await?
        .click()
        .await?;
    client
        .wait()
        .for_element(Locator::Css("main .card-picture"))
        .await?;

    let card = personalise(
        &CardSpec::demo_citizen(&citizen.card.national_number).context("card")?,
        &pki,
    )?;
    let inserted = insert_virtual_card(card).await?;
    let for_whom = client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css("form[action$='/for-whom']"))
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
    client
        .wait()
        .for_element(Locator::Css("button[value='birth-extract']"))
        .await?
        .click()
        .await?;
    client
        .wait()
        .for_element(Locator::Css("button[value='print-here']"))
        .await?
        .click()
        .await?;
    client
        .wait()
        .for_element(Locator::Css("form[action$='/confirm'] button"))
        .await?
        .click()
        .await?;
    client
        .wait()
        .for_element(Locator::Css(".queue-number"))
        .await?;
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
    client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css("main form.choices button[value='nl']"))
        .await
        .context("pulling the card did not clear the kiosk")?;
    assert!(!client.source().await?.contains(&citizen.card.surname));
    browser.close().await?;
    Ok(())
}
