//! Kill the node with SIGKILL while submissions stream in; after a restart every acknowledged
//! request is there and the store opens.

use std::sync::{Arc, Mutex};

use busloket_e2e::TestNode;
use serde_json::{Value, json};

fn submission(index: usize) -> Value {
    let base = 700_101_001u64 + (index as u64 % 300) * 2;
    let number = format!("{base:09}{:02}", 97 - base % 97);
    json!({
        "document": "household-composition",
        "requester": { "national_number": number, "name": format!("Crash Test {index}") },
        "relation": "self",
        "authentication": "card-read",
        "channel": "bus-kiosk",
        "language": "nl",
        "delivery": { "method": "print-here" },
        "station": "tablet-1"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_requests_survive_sigkill() -> anyhow::Result<()> {
    let mut node = TestNode::start().await?;
    let token = node.sign_in().await?;
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let (enough_tx, enough_rx) = tokio::sync::oneshot::channel::<()>();
    let enough_tx = Arc::new(Mutex::new(Some(enough_tx)));
    let mut clients = Vec::new();
    for client in 0..4 {
        let http = node.http.clone();
        let url = node.url("/api/v1/requests");
        let token = token.clone();
        let acknowledged = acknowledged.clone();
        let enough_tx = enough_tx.clone();
        clients.push(tokio::spawn(async move {
            for round in 0.. {
                let response = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&submission(client * 10_000 + round))
                    .send()
                    .await;
                let Ok(response) = response else { return };
                if response.status() != 201 {
                    return;
                }
                let Ok(body) = response.json::<Value>().await else {
                    return;
                };
                let id = body["id"].as_str().expect("an id").to_owned();
                let count = {
                    let mut acknowledged = acknowledged.lock().unwrap();
                    acknowledged.push(id);
                    acknowledged.len()
                };
                if count >= 80
                    && let Some(tx) = enough_tx.lock().unwrap().take()
                {
                    let _ = tx.send(());
                }
            }
        }));
    }
    enough_rx.await?;
    // Requests are still in flight: this kill lands in the middle of writes.
    node.kill_hard()?;
    for client in clients {
        client.await?;
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 80);

    node.spawn().await?;
    let token = node.sign_in().await?;
    for id in &acknowledged {
        let response = node
            .http
            .get(node.url(&format!("/api/v1/requests/{id}")))
            .bearer_auth(&token)
            .send()
            .await?;
        assert_eq!(response.status(), 200, "acknowledged request {id} is lost");
        let view: Value = response.json().await?;
        assert_eq!(view["document"], "household-composition");
        assert_eq!(view["id"].as_str(), Some(id.as_str()));
    }
    let today: Vec<Value> = node
        .http
        .get(node.url("/api/v1/requests"))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let listed: std::collections::HashSet<&str> =
        today.iter().filter_map(|s| s["id"].as_str()).collect();
    for id in &acknowledged {
        assert!(
            listed.contains(id.as_str()),
            "{id} missing from today's list"
        );
    }
    // The store still takes new requests after the crash.
    let response = node
        .http
        .post(node.url("/api/v1/requests"))
        .bearer_auth(&token)
        .json(&submission(99_999))
        .send()
        .await?;
    assert_eq!(response.status(), 201);
    Ok(())
}
