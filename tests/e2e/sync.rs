//! Sync between a bus and the hub, as real processes in two network namespaces joined by the
//! emulated LTE link (60 ms round trip, 1 % loss, 5 Mbit/s up), over mutual TLS with the city's
//! certificates: a day offline converges, a link cut mid-round and a hub killed mid-round lose
//! nothing and duplicate nothing, and a decision made at the hub reaches the bus.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use busloket_e2e::city::City;
use busloket_e2e::lte::LteLink;
use busloket_e2e::sync::{StatusWatch, SyncedNode, TestHub};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// Asks for rounds until the node is online with nothing waiting and a round succeeded.
fn wait_converged(
    node: &SyncedNode,
    link: &LteLink,
    hub: &TestHub,
    within: Duration,
) -> Result<Value> {
    node.sync_until(link, within, |status| {
        status["state"] == "online" && status["waiting"] == 0 && status["last_success"].is_string()
    })
    .with_context(|| {
        format!(
            "the node did not converge\nnode log:\n{}\nhub log:\n{}",
            node.log(),
            hub.log()
        )
    })
}

/// A time of the sync status.
fn time(value: &Value) -> Option<DateTime<Utc>> {
    value.as_str()?.parse().ok()
}

/// Every request the node lists, by id.
fn listed(node: &SyncedNode, link: &LteLink) -> Result<Vec<Value>> {
    Ok(serde_json::from_value(node.get(link, "/api/v1/requests")?)?)
}

fn request_on_bus(node: &SyncedNode, link: &LteLink, id: &str) -> Result<Value> {
    node.get(link, &format!("/api/v1/requests/{id}"))
}

/// Central IT records a decision of the city at the hub.
fn decide_at_hub(hub: &TestHub, link: &LteLink, id: &str, event: Value) -> Result<Value> {
    let id = id.to_owned();
    hub.call(link, move |client, url, cookie| async move {
        let response = client
            .post(format!("{url}/api/v1/requests/{id}/events"))
            .header(reqwest::header::COOKIE, cookie)
            .json(&event)
            .send()
            .await?;
        let status = response.status();
        let body = response.text().await?;
        ensure!(
            status.is_success(),
            "the hub refused the event ({status}): {body}"
        );
        Ok(serde_json::from_str(&body).unwrap_or(Value::Null))
    })
}

fn event_kinds(view: &Value) -> Vec<String> {
    view["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter_map(|event| event["kind"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_day_offline_reaches_the_hub_and_the_citys_decision_comes_back() -> Result<()> {
    let link = LteLink::up("sync-day")?;
    let city = City::new(&[&link.hub_addr().to_string()])?;
    let hub = TestHub::start(&link, &city)?;
    // The bus leaves the depot without coverage.
    link.cut()?;
    let node = SyncedNode::start(&link, &city, &hub, "bus-day-1")?;
    let ids = node.submit(&link, 0, 120, 2)?;
    let offline = node.sync_status(&link)?;
    assert_eq!(offline["waiting"], 120, "{offline:#}");
    assert_ne!(offline["state"], "online", "{offline:#}");

    link.restore()?;
    let status = wait_converged(&node, &link, &hub, Duration::from_secs(120))?;
    let round = &status["last_round"];
    assert!(
        round["round_trips"].as_u64().unwrap_or(0) >= 1,
        "{status:#}"
    );
    // The hub's stop schedule came with the round.
    let position = node.position(&link)?;
    assert_eq!(position["stops_known"], 3, "{position:#}");

    // A decision of the city, made at the hub, reaches the bus on its next round.
    let id = &ids[7];
    decide_at_hub(
        &hub,
        &link,
        id,
        json!({ "kind": "cancelled", "reason": "the citizen asked at the town hall" }),
    )?;
    let decided = Utc::now();
    node.sync_until(&link, Duration::from_secs(60), move |status| {
        let attempt = time(&status["last_attempt"]);
        attempt > Some(decided) && time(&status["last_success"]) >= attempt
    })
    .context("no round started after the hub's decision went through")?;
    let view = request_on_bus(&node, &link, id)?;
    ensure!(
        event_kinds(&view).iter().any(|kind| kind == "cancelled"),
        "a round started after the hub's cancellation went through, and it is not on the bus: \
         {view:#}"
    );
    assert_eq!(view["status"], "cancelled", "{view:#}");
    wait_converged(&node, &link, &hub, Duration::from_secs(60))?;
    link.close()
}

/// Brings the cut link back and asks for a round, then returns once one is in flight with
/// requests waiting: an attempt later than the last success while the outbox is not empty, so
/// its upload carries them. The session and the event stream are opened before the link comes
/// back, so that the ask follows it within milliseconds.
fn restore_and_start_round(node: &SyncedNode, link: &LteLink) -> Result<()> {
    let bus_ns = link.bus_ns().to_owned();
    node.call(link, |client, base, token| async move {
        let mut watch = StatusWatch::open(client, base, token).await?;
        let up = std::process::Command::new("ip")
            .args([
                "-n",
                &bus_ns,
                "link",
                "set",
                busloket_e2e::lte::BUS_INTERFACE,
                "up",
            ])
            .status()?;
        ensure!(up.success(), "ip link set up failed: {up}");
        // The node publishes an event as a round starts and as it ends. Were the round over
        // before the test saw it under way, nothing would be waiting any more, and the test
        // says so.
        let status = watch
            .sync_until(Duration::from_secs(30), |status| {
                let attempt = time(&status["last_attempt"]);
                status["waiting"] == 0
                    || (attempt.is_some() && time(&status["last_success"]) < attempt)
            })
            .await
            .context("no round started")?;
        ensure!(
            status["waiting"].as_u64() > Some(0),
            "every request was synced before the test could interrupt a round: {status:#}"
        );
        Ok(())
    })
}

#[test]
fn a_link_cut_and_a_hub_killed_mid_round_lose_and_duplicate_nothing() -> Result<()> {
    let link = LteLink::up("sync-cut")?;
    let city = City::new(&[&link.hub_addr().to_string()])?;
    let mut hub = TestHub::start(&link, &city)?;
    link.cut()?;
    let node = SyncedNode::start(&link, &city, &hub, "bus-cut-1")?;
    let mut ids = node.submit(&link, 0, 300, 3)?;

    // The link comes back, a round starts, and the link drops in the middle of it.
    restore_and_start_round(&node, &link)?;
    // Deliberate: the round's upload needs a moment to get on the wire before the cut.
    std::thread::sleep(Duration::from_millis(50));
    link.cut()?;
    let during = node.sync_status(&link)?;
    ensure!(
        during["waiting"].as_u64() > Some(0),
        "the cut came after the round: {during:#}"
    );
    // Deliberate: the outage lasts long enough for the round in flight to stall on it.
    std::thread::sleep(Duration::from_secs(3));
    link.restore()?;
    wait_converged(&node, &link, &hub, Duration::from_secs(180))?;

    // More work out of coverage, then the hub dies with SIGKILL in the middle of a round, and
    // comes back.
    link.cut()?;
    ids.extend(node.submit(&link, 300, 200, 3)?);
    restore_and_start_round(&node, &link)?;
    // Deliberate: the round's upload needs a moment to get on the wire before the hub dies.
    std::thread::sleep(Duration::from_millis(50));
    hub.kill_hard()?;
    let during = node.sync_status(&link)?;
    ensure!(
        during["waiting"].as_u64() > Some(0),
        "the hub died after the round: {during:#}"
    );
    // Deliberate: the hub stays down a while, as a crashed one would, and the bus's round fails.
    std::thread::sleep(Duration::from_secs(2));
    hub.spawn(&link)?;
    wait_converged(&node, &link, &hub, Duration::from_secs(180))?;

    // Nothing lost, nothing doubled: the bus lists exactly what was submitted, and every
    // request is acknowledged by the hub with its current heads (nothing waiting).
    let on_bus: Vec<String> = listed(&node, &link)?
        .iter()
        .filter_map(|summary| summary["id"].as_str().map(str::to_owned))
        .collect();
    let unique: HashSet<&String> = on_bus.iter().collect();
    assert_eq!(unique.len(), on_bus.len(), "a request is listed twice");
    assert_eq!(unique, ids.iter().collect::<HashSet<_>>());
    // The hub holds them: a decision on the last one is accepted there.
    decide_at_hub(
        &hub,
        &link,
        ids.last().context("ids")?,
        json!({ "kind": "approved" }),
    )?;
    link.close()
}
