//! Sync between a bus and the hub, as real processes in two network namespaces joined by the
//! emulated LTE link (60 ms round trip, 1 % loss, 5 Mbit/s up), over mutual TLS with the city's
//! certificates: a day offline converges, a link cut mid-round and a hub killed mid-round lose
//! nothing and duplicate nothing, and a decision made at the hub reaches the bus.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use busloket_e2e::city::City;
use busloket_e2e::lte::LteLink;
use busloket_e2e::sync::{SyncedNode, TestHub};
use serde_json::{Value, json};

/// Waits until the node has nothing waiting and its last round succeeded after `since`.
fn wait_converged(
    node: &SyncedNode,
    link: &LteLink,
    hub: &TestHub,
    within: Duration,
) -> Result<Value> {
    let deadline = Instant::now() + within;
    let mut last = Value::Null;
    while Instant::now() < deadline {
        node.sync_now(link)?;
        let status = node.sync_status(link)?;
        if status["state"] == "online"
            && status["waiting"] == 0
            && status["last_success"].is_string()
        {
            return Ok(status);
        }
        last = status;
        std::thread::sleep(Duration::from_millis(500));
    }
    bail!(
        "the node did not converge within {within:?}; its status: {last:#}\nnode log:\n{}\nhub log:\n{}",
        node.log(),
        hub.log()
    )
}

/// Every request the node lists, by id.
fn listed(node: &SyncedNode, link: &LteLink) -> Result<Vec<Value>> {
    node.call(link, |client, base, token| async move {
        Ok(client
            .get(format!("{base}/api/v1/requests"))
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    })
}

fn request_on_bus(node: &SyncedNode, link: &LteLink, id: &str) -> Result<Value> {
    let id = id.to_owned();
    node.call(link, move |client, base, token| async move {
        Ok(client
            .get(format!("{base}/api/v1/requests/{id}"))
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    })
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

    // A decision of the city, made at the hub, reaches the bus on its next round.
    let id = &ids[7];
    decide_at_hub(
        &hub,
        &link,
        id,
        json!({ "kind": "cancelled", "reason": "the citizen asked at the town hall" }),
    )?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        node.sync_now(&link)?;
        let view = request_on_bus(&node, &link, id)?;
        if event_kinds(&view).iter().any(|kind| kind == "cancelled") {
            assert_eq!(view["status"], "cancelled", "{view:#}");
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the hub's cancellation never reached the bus: {view:#}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    wait_converged(&node, &link, &hub, Duration::from_secs(60))?;
    link.close()
}

/// Brings the cut link back and asks for a round, then returns once one is in flight with
/// requests waiting: an attempt later than the last success while the outbox is not empty, so
/// its upload carries them. The session is opened before the link comes back, so that each look
/// costs a few milliseconds.
fn restore_and_start_round(node: &SyncedNode, link: &LteLink) -> Result<()> {
    let bus_ns = link.bus_ns().to_owned();
    node.call(link, |client, base, token| async move {
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
        client
            .post(format!("{base}/api/v1/sync"))
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?;
        let time = |value: &Value| {
            value
                .as_str()
                .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now: Value = client
                .get(format!("{base}/api/v1/sync"))
                .bearer_auth(&token)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            ensure!(
                now["waiting"].as_u64() > Some(0),
                "every request was synced before the test could interrupt a round: {now:#}"
            );
            let attempt = time(&now["last_attempt"]);
            if attempt.is_some() && time(&now["last_success"]) < attempt {
                return Ok(());
            }
            ensure!(Instant::now() < deadline, "no round started: {now:#}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
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
    std::thread::sleep(Duration::from_millis(50));
    link.cut()?;
    let during = node.sync_status(&link)?;
    ensure!(
        during["waiting"].as_u64() > Some(0),
        "the cut came after the round: {during:#}"
    );
    std::thread::sleep(Duration::from_secs(3));
    link.restore()?;
    wait_converged(&node, &link, &hub, Duration::from_secs(180))?;

    // More work out of coverage, then the hub dies with SIGKILL in the middle of a round, and
    // comes back.
    link.cut()?;
    ids.extend(node.submit(&link, 300, 200, 3)?);
    restore_and_start_round(&node, &link)?;
    std::thread::sleep(Duration::from_millis(50));
    hub.kill_hard()?;
    let during = node.sync_status(&link)?;
    ensure!(
        during["waiting"].as_u64() > Some(0),
        "the hub died after the round: {during:#}"
    );
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
