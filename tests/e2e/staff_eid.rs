//! The staff console with a real desk reader: a clerk signs in with their own (virtual) eID and
//! PIN through pcscd — a wrong PIN is counted, a citizen's card is no staff account — and then
//! reads a citizen's card at the desk, whose photo the console shows.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use busloket_e2e::{
    Browser, Pcscd, TestNode, VPCD_READER, click, insert_virtual_card, pull_virtual_card, wait_for,
};
use busloket_virtual_eid::{CardSpec, DEFAULT_SEED, Profile, TestPki, personalise};
use fantoccini::{Client, Locator};

/// The demo clerk An Claes, bound to the demo staff account in `deploy/node.example.toml`.
const CLERK: &str = "86041708674";
const CITIZEN: &str = "78031203701";

async fn sign_in_with_pin(client: &Client, node: &TestNode, pin: &str) -> Result<String> {
    client.goto(&node.url("/staff/login")).await?;
    let field = wait_for(client, "#pin").await?;
    field.send_keys(pin).await?;
    client
        .find(Locator::Css("form[action='/staff/login/eid'] button"))
        .await?
        .click()
        .await?;
    wait_for(client, "main h1").await?;
    Ok(client.source().await?)
}

/// Waits until the node's desk reader shows a card (or, with `present` false, none), as a clerk
/// would before pressing "read": listens to the console's event stream, and looks at the devices
/// again after each event.
async fn wait_for_desk_card(node: &TestNode, present: bool) -> Result<()> {
    let token = node.sign_in().await?;
    // Listen first, then look: a change after the first look comes as an event.
    let mut events = node
        .http
        .get(node.url("/staff/events"))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?;
    let shown = || async {
        let devices: serde_json::Value = node
            .http
            .get(node.url("/api/v1/devices"))
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        anyhow::Ok(devices["readers"].as_array().is_some_and(|readers| {
            readers
                .iter()
                .any(|reader| reader["name"] == VPCD_READER && reader["card_present"] == present)
        }))
    };
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while !shown().await? {
            events
                .chunk()
                .await?
                .context("the console's event stream ended")?;
        }
        anyhow::Ok(())
    })
    .await;
    match waited {
        Ok(result) => result,
        Err(_) => anyhow::bail!("the node's desk reader never showed card_present = {present}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_sign_in_with_their_eid_through_pcscd() -> Result<()> {
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
            .replace("reader = \"Demo Reader 1\"", "reader = \"Virtual PCD 00 01\"")
            .replace("reader = \"Demo Desk Reader\"", &format!("reader = \"{VPCD_READER}\"")))
    })
    .await?;
    let browser = Browser::start(1280, 1000).await?;
    let client = &browser.client;

    // A citizen's card signs, but names no staff account.
    let citizen_card = personalise(
        &CardSpec::demo_citizen(CITIZEN).context("citizen card")?,
        &pki,
    )?;
    let inserted = insert_virtual_card(citizen_card).await?;
    wait_for_desk_card(&node, true).await?;
    let page = sign_in_with_pin(client, &node, "1234").await?;
    ensure!(
        page.contains("niet gekoppeld aan een medewerkersaccount"),
        "a citizen's card signed a clerk in: {page}"
    );
    let citizen_card = pull_virtual_card(inserted).await?;
    wait_for_desk_card(&node, false).await?;

    let clerk_card = personalise(&CardSpec::demo_citizen(CLERK).context("clerk card")?, &pki)?;
    let inserted = insert_virtual_card(clerk_card).await?;
    wait_for_desk_card(&node, true).await?;
    let page = sign_in_with_pin(client, &node, "9876").await?;
    ensure!(page.contains("Nog 2 pogingen"), "{page}");
    ensure!(!page.contains("9876"), "the PIN came back in the page");
    browser.screenshot("staff-eid-01-wrong-pin").await?;
    let page = sign_in_with_pin(client, &node, "1234").await?;
    ensure!(
        page.contains("Demo Medewerker"),
        "the clerk is not signed in: {page}"
    );
    let clerk_card = pull_virtual_card(inserted).await?;
    wait_for_desk_card(&node, false).await?;
    ensure!(
        clerk_card.pin_tries_left() == 3,
        "the right PIN resets the card's counter"
    );

    // At the desk: the citizen's card, read on demand, with its photo.
    let _inserted = insert_virtual_card(citizen_card).await?;
    wait_for_desk_card(&node, true).await?;
    client.goto(&node.url("/staff/serve")).await?;
    click(client, "form[action='/staff/serve/read-card'] button").await?;
    wait_for(client, "figure.card-photo img")
        .await
        .context("the desk card's photo is not shown")?;
    let loaded = client
        .execute(
            "const img = document.querySelector('figure.card-photo img'); \
             return img.complete && img.naturalWidth > 0;",
            vec![],
        )
        .await?;
    ensure!(
        loaded == serde_json::Value::Bool(true),
        "the photo did not load"
    );
    let page = client.source().await?;
    ensure!(page.contains("78.03.12-037.01"), "{page}");
    browser.screenshot("staff-eid-02-desk-card").await?;
    browser.close().await?;
    Ok(())
}
