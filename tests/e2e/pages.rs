//! The pages in headless Chromium: a citizen walks the kiosk in Dutch (for themself) and in
//! French (for their child), the card is pulled and the screen is empty again; a clerk signs in,
//! finds the requests in the queue, opens one and cancels it. Screenshots go to `target/e2e/`.

use anyhow::{Context, Result, bail};
use busloket_e2e::{Browser, DEMO_PASSWORD, DEMO_USER, TestNode, click, wait_for};
use busloket_hardware::card::DEMO_PIN;
use busloket_hardware::demo_citizens;
use fantoccini::{Client, Locator};

const READER: &str = "Demo Reader 1";

/// The screen's title. The page may be redrawn between finding it and reading it (the kiosk
/// follows server-sent events), so a stale element is looked up again.
async fn heading(client: &Client) -> Result<String> {
    let mut last_error = None;
    for _ in 0..5 {
        match wait_for(client, "main h1").await?.text().await {
            Ok(text) => return Ok(text),
            Err(err) => last_error = Some(err),
        }
    }
    bail!("cannot read the title: {last_error:?}")
}

/// Clicks the button whose visible text contains `text`.
async fn click_button_with(client: &Client, text: &str) -> Result<()> {
    for button in client.find_all(Locator::Css("main button")).await? {
        if button.text().await?.contains(text) {
            button.click().await?;
            return Ok(());
        }
    }
    bail!("no button with `{text}` on {}", client.current_url().await?)
}

/// From the document list to the done screen, printed here, with the PIN where it is asked;
/// the queue number. Screenshots of
/// the documents and the confirmation are named after `language`.
async fn request_document(
    browser: &Browser,
    document: &str,
    language: &str,
    shots: (u8, u8, u8),
) -> Result<String> {
    let client = &browser.client;
    wait_for(client, &format!("button[value='{document}']")).await?;
    browser
        .screenshot(&format!("kiosk-{:02}-documents-{language}", shots.0))
        .await?;
    click(client, &format!("button[value='{document}']")).await?;
    click(client, "button[value='print-here']").await?;
    wait_for(client, "form[action$='/confirm'] button").await?;
    browser
        .screenshot(&format!("kiosk-{:02}-confirm-{language}", shots.1))
        .await?;
    // Where the PIN makes the request automatic, the citizen types the demo card's PIN.
    if let Ok(pin) = client.find(Locator::Css("#pin")).await {
        pin.send_keys(DEMO_PIN).await?;
        click(client, "form.pin button").await?;
    } else {
        click(client, "form[action$='/confirm'] button").await?;
    }
    let number = wait_for(client, ".queue-number").await?.text().await?;
    assert!(number.parse::<u32>().is_ok(), "queue number {number:?}");
    browser
        .screenshot(&format!("kiosk-{:02}-done-{language}", shots.2))
        .await?;
    Ok(number)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiosk_and_staff_console_in_a_browser() -> Result<()> {
    let node = TestNode::start().await?;
    let citizens = demo_citizens();
    let parent = citizens
        .iter()
        .find(|c| !c.children.is_empty())
        .context("a demo parent")?;
    let browser = Browser::start(820, 1180).await?;
    let client = &browser.client;

    // Dutch, for myself.
    client.goto(&node.url("/kiosk/tablet-1")).await?;
    assert!(heading(client).await?.contains("Welkom"));
    browser.screenshot("kiosk-01-language").await?;
    click(client, "main button[value='nl']").await?;
    assert_eq!(
        heading(client).await?,
        "Steek uw identiteitskaart in de lezer"
    );
    browser.screenshot("kiosk-02-insert-card-nl").await?;
    node.insert_card(READER, &parent.card.national_number)
        .await?;
    wait_for(client, "form[action$='/for-whom']").await?;
    assert_eq!(heading(client).await?, "Voor wie is het document?");
    browser.screenshot("kiosk-03-for-whom-nl").await?;
    click(client, "button[name='who'][value='self']").await?;
    let number = request_document(&browser, "household-composition", "nl", (4, 5, 6)).await?;
    let ticket: Option<String> = node
        .http
        .get(node.url("/demo/last-ticket"))
        .send()
        .await?
        .json()
        .await?;
    let ticket = ticket.context("no ticket printed")?;
    assert!(
        ticket.contains(&number) && ticket.contains("DIENSTENBUS"),
        "ticket:\n{ticket}"
    );
    assert!(
        !ticket.contains(&parent.card.surname),
        "the ticket must not carry the name:\n{ticket}"
    );

    // Pulling the card clears the screen: back to the language choice, nothing of the citizen left.
    node.pull_card(READER).await?;
    wait_for(client, "main form.choices button[value='fr']").await?;
    let source = client.source().await?;
    assert!(
        !source.contains(&parent.card.first_names),
        "the citizen's name is still on the page"
    );
    browser.screenshot("kiosk-07-after-pull").await?;

    // French, for my child.
    click(client, "main button[value='fr']").await?;
    assert_eq!(heading(client).await?, "Introduisez votre carte d'identité");
    node.insert_card(READER, &parent.card.national_number)
        .await?;
    wait_for(client, "form[action$='/for-whom']").await?;
    browser.screenshot("kiosk-08-for-whom-fr").await?;
    click_button_with(client, "enfant").await?;
    let second = request_document(&browser, "birth-extract", "fr", (9, 10, 11)).await?;
    assert_ne!(second, number);
    assert!(client.source().await?.contains("retirer votre carte"));
    node.pull_card(READER).await?;
    wait_for(client, "main form.choices button[value='nl']").await?;

    // The staff console: sign in, the queue, one request's history, cancel it.
    client.goto(&node.url("/staff")).await?;
    wait_for(client, "#username")
        .await?
        .send_keys(DEMO_USER)
        .await?;
    client
        .find(Locator::Css("#password"))
        .await?
        .send_keys(DEMO_PASSWORD)
        .await?;
    browser.screenshot("staff-01-sign-in").await?;
    click(client, "form[action='/staff/login'] button[type='submit']").await?;
    wait_for(client, "table.queue").await?;
    assert_eq!(
        client
            .find_all(Locator::Css("table.queue tbody tr"))
            .await?
            .len(),
        2
    );
    browser.screenshot("staff-02-queue").await?;
    client
        .find(Locator::LinkText(&number))
        .await?
        .click()
        .await?;
    let history = wait_for(client, "table.history").await?.text().await?;
    assert!(
        history.contains("Aanvraag ingediend") && history.contains("Ticket afgedrukt"),
        "history:\n{history}"
    );
    browser.screenshot("staff-03-request").await?;
    client
        .find(Locator::Css("#reason"))
        .await?
        .send_keys("Burger kwam terug: verkeerd document gekozen")
        .await?;
    click(client, "button.danger").await?;
    wait_for(client, "p.message").await?;
    let status = client
        .find(Locator::Css("dl.summary .status"))
        .await?
        .text()
        .await?;
    assert_eq!(status, "geannuleerd");
    browser.screenshot("staff-04-cancelled").await?;

    // Demo control page, for the record.
    client.goto(&node.url("/demo")).await?;
    wait_for(client, "pre.ticket").await?;
    browser.screenshot("demo-01-control").await?;
    browser.close().await?;
    Ok(())
}
