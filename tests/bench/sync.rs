//! `sync-bench`: the sync figures of DESIGN.md §6, printed as JSON lines for `cargo xtask bench`.
//!
//! - A day offline over the emulated LTE link (60 ms round trip, 1 % loss, 5 Mbit/s up): the real
//!   `busloket-node` in the bus namespace takes 400 requests through its API while the link is
//!   cut (each submission and reprint adds changes), then the link comes back and one sync
//!   reconciles them with the real `busloket-hub` over mutual TLS. Reported: the round's wall
//!   time, its round trips, and the bytes that crossed the link's interface (TCP, TLS and HTTP
//!   included) against the zstd-compressed raw Automerge changes of the same requests.
//! - 100 buses at once against one hub: 100 enrolled devices, each with 400 requests, upload over
//!   mutual TLS at the same moment; reported: the wall time until every bus has its answer and
//!   every request is acknowledged with the heads it sent.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use busloket_e2e::city::City;
use busloket_e2e::lte::LteLink;
use busloket_e2e::sync::{SyncedNode, TestHub};
use busloket_sync::protocol::{
    BATCH_BYTES, OutgoingDoc, UploadHeader, bound_actor, build_upload, decode_answer, from_wire,
};
use busloket_sync::record::{
    Delivery, EligibilityOutcome, EventId, EventKind, NewEvent, NewRequest, Origin, Person,
    RequestRecord,
};
use busloket_sync::store::Store;
use busloket_sync::terms::{
    AuthStrength, Channel, DeliveryMethod, DeviceId, Language, Relation, RequestId,
};
use chrono::Utc;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};

const DAY_REQUESTS: usize = 400;
/// Reprints per request on the day: with the submission's own changes, about 12 changes each.
const DAY_REPRINTS: usize = 9;
const BUSES: usize = 100;
const BUS_REQUESTS: usize = 400;

fn main() -> Result<()> {
    day_offline()?;
    hundred_buses()?;
    Ok(())
}

fn figure(name: &str, value: f64, unit: &str, budget: Option<f64>, detail: String) {
    println!(
        "{}",
        json!({ "name": name, "value": value, "unit": unit, "budget": budget, "detail": detail })
    );
}

/// Bytes received and sent by the bus's end of the link.
fn interface_bytes(link: &LteLink) -> Result<u64> {
    let output = std::process::Command::new("ip")
        .args(["-n", link.bus_ns(), "-s", "-j", "link", "show", "lte-bus"])
        .output()?;
    let links: Value = serde_json::from_slice(&output.stdout)?;
    let stats = &links[0]["stats64"];
    Ok(stats["rx"]["bytes"].as_u64().context("rx bytes")?
        + stats["tx"]["bytes"].as_u64().context("tx bytes")?)
}

fn day_offline() -> Result<()> {
    let link = LteLink::up("bench-day")?;
    let city = City::new(&[&link.hub_addr().to_string()])?;
    let hub = TestHub::start(&link, &city)?;
    link.cut()?;
    let mut node = SyncedNode::start(&link, &city, &hub, "bus-bench-1")?;
    node.submit(&link, 0, DAY_REQUESTS, DAY_REPRINTS)?;
    let before = node.sync_status(&link)?;
    ensure!(
        before["waiting"] == DAY_REQUESTS,
        "not all waiting: {before:#}"
    );

    link.restore()?;
    let wire_before = interface_bytes(&link)?;
    let status = node
        .sync_until(&link, Duration::from_secs(300), |status| {
            status["waiting"] == 0 && status["last_success"].is_string()
        })
        .context("no convergence")?;
    let wire = interface_bytes(&link)? - wire_before;
    let round = &status["last_round"];
    let seconds = round["duration_ms"].as_f64().context("duration")? / 1000.0;
    let round_trips = round["round_trips"].as_f64().context("round trips")?;
    let (up, down) = (
        round["bytes_up"].as_f64().unwrap_or(0.0),
        round["bytes_down"].as_f64().unwrap_or(0.0),
    );

    // The same requests' raw changes, compressed as one body: the yardstick for the bytes.
    node.kill_hard()?;
    let store = Store::open_with_key_file(
        &node.dir.path().join("data"),
        &node.dir.path().join("keys/at-rest.key"),
    )?;
    let mut raw = Vec::new();
    let mut changes = 0usize;
    for summary in store.summaries_by_day(Utc::now().date_naive())? {
        let mut record = store.load(summary.id)?.context("a stored request")?;
        for change in record.changes_since(&[]) {
            raw.extend_from_slice(change.raw_bytes());
            changes += 1;
        }
    }
    let compressed = zstd::bulk::compress(&raw, 3)?.len();
    let per_request = changes as f64 / DAY_REQUESTS as f64;
    figure(
        "sync_day_offline_s",
        seconds,
        "s",
        Some(3.0),
        format!(
            "{DAY_REQUESTS} requests, {changes} changes ({per_request:.1} per request) made offline on the real node, \
             then one sync to the real hub over mutual TLS across the emulated LTE link \
             (30 ms each way, 1 % loss each way, 5 Mbit/s up): the node's round from the first \
             connection to the durable acknowledgement"
        ),
    );
    figure(
        "sync_round_trips",
        round_trips,
        "uploads",
        Some(3.0),
        "HTTPS uploads (each one request and its answer) in that sync; the TLS handshake adds \
         its own round trips once per connection"
            .into(),
    );
    figure(
        "sync_bytes_ratio",
        wire as f64 / compressed as f64,
        "×",
        Some(1.5),
        format!(
            "{wire} bytes crossed the bus's interface (both ways: IP, TCP, TLS, HTTP; {up:.0} B \
             of upload bodies, {down:.0} B of answers) vs {compressed} bytes of the same \
             {changes} raw Automerge changes ({} B) compressed as one zstd body (level 3)",
            raw.len()
        ),
    );
    drop(store);
    drop(hub);
    link.close()
}

/// A made-up citizen's request (valid national-number checksum, no real person).
fn new_request(id: RequestId, device: &DeviceId, n: usize) -> NewRequest {
    let person = Person {
        national_number: "85.07.31-003.28".parse().expect("valid"),
        name: format!("Bench Citizen {n}"),
    };
    NewRequest {
        id,
        document: "birth-extract".parse().expect("known"),
        subject: person.clone(),
        requester: person,
        relation: Relation::Myself,
        channel: Channel::BusKiosk,
        language: Language::Nl,
        document_language: Language::Nl,
        delivery: Delivery {
            method: DeliveryMethod::PrintHere,
            email: None,
        },
        authentication: AuthStrength::CardRead,
        purpose: None,
        origin: Origin {
            device: device.clone(),
            station: "kiosk-1".into(),
            stop: Some("markt".parse().expect("a stop id")),
            at: Utc::now(),
            whereabouts: Default::default(),
        },
        queue_number: n as u32 + 1,
        evidence: None,
        requester_postcode: None,
    }
}

/// One signed upload: its counter, its body, and the heads it sends per request.
struct SignedUpload {
    counter: u64,
    body: Vec<u8>,
    sent: Vec<(RequestId, Vec<automerge::ChangeHash>)>,
}

struct BusUploads {
    tls: rustls::ClientConfig,
    uploads: Vec<SignedUpload>,
    device: DeviceId,
}

/// The bus's day, built in memory with its own bound actor: each request submitted, found
/// automatic and its receipt printed (3 changes).
fn bus_day(city: &City, hub_url: &str, n: usize) -> Result<BusUploads> {
    let name = format!("bench-bus-{n:03}");
    let bus = city.enroll(&name, &["127.0.0.1"], hub_url)?;
    let bundle = busloket_provisioning::load_bundle(&bus.bundle, &bus.keys, SystemTime::now())?;
    let device = bundle.device_id().clone();
    let key = bundle.device_signing_key().clone();
    let actor = bound_actor(key.verifying_key().as_bytes(), [n as u8; 8]);
    let mut docs = Vec::with_capacity(BUS_REQUESTS);
    for index in 0..BUS_REQUESTS {
        let millis = Utc::now().timestamp_millis() as u64;
        let mut random = [n as u8; 10];
        random[..8].copy_from_slice(&(index as u64).to_be_bytes());
        let id = RequestId::new(millis, random);
        let mut record = RequestRecord::create(
            &new_request(id, &device, index),
            actor.clone(),
            EventId::new(millis, random),
            "kiosk:kiosk-1",
        )?;
        for (step, kind) in [
            EventKind::EligibilityDecided {
                outcome: EligibilityOutcome::Automatic,
                reason: None,
            },
            EventKind::ReceiptPrinted {
                printer: "receipt".into(),
            },
        ]
        .into_iter()
        .enumerate()
        {
            let mut event_random = random;
            event_random[9] = step as u8 + 1;
            event_random[8] = 0xEE;
            record.append(
                &actor,
                NewEvent {
                    id: EventId::new(millis + step as u64 + 1, event_random),
                    at: Utc::now(),
                    by: "staff:bench".into(),
                    device: device.clone(),
                    kind,
                },
            )?;
        }
        docs.push(OutgoingDoc::from_record(id, &mut record, &[]));
    }
    let mut uploads = Vec::new();
    let mut batch = Vec::new();
    let mut size = 0;
    let mut counter = 0;
    let mut flush = |batch: &mut Vec<OutgoingDoc>| {
        counter += 1;
        let sent = batch
            .iter()
            .map(|doc| (doc.id, doc.heads.clone()))
            .collect();
        let header = UploadHeader {
            device: device.clone(),
            counter,
            created_at: Utc::now(),
            answer_applied: 0,
            need_whole: Vec::new(),
            files: Vec::new(),
            trip: Vec::new(),
        };
        uploads.push(SignedUpload {
            counter,
            body: build_upload(&key, &header, std::mem::take(batch)),
            sent,
        });
    };
    for doc in docs {
        if !batch.is_empty() && size + doc.size() > BATCH_BYTES {
            flush(&mut batch);
            size = 0;
        }
        size += doc.size();
        batch.push(doc);
    }
    flush(&mut batch);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(bundle.ca_certificate().clone())?;
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_client_auth_cert(
        vec![CertificateDer::from(bundle.device_certificate().to_vec())],
        PrivateKeyDer::Pkcs8(bundle.device_key_der()),
    )?;
    Ok(BusUploads {
        tls,
        uploads,
        device,
    })
}

fn hundred_buses() -> Result<()> {
    let link = LteLink::plain("bench-100")?;
    let city = City::new(&[&link.hub_addr().to_string()])?;
    let hub = TestHub::start(&link, &city)?;
    let prepared = Instant::now();
    let buses = (0..BUSES)
        .map(|n| bus_day(&city, &hub.url, n))
        .collect::<Result<Vec<_>>>()?;
    eprintln!(
        "sync-bench: {BUSES} buses × {BUS_REQUESTS} requests prepared in {:.1} s",
        prepared.elapsed().as_secs_f64()
    );
    let url = format!("{}/sync/v1/upload", hub.url);
    let (seconds, acknowledged) = link.in_bus(move || -> Result<(f64, usize)> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let start = Instant::now();
            let mut tasks = Vec::new();
            for bus in buses {
                let url = url.clone();
                tasks.push(tokio::spawn(async move {
                    let client = reqwest::Client::builder()
                        .use_preconfigured_tls(bus.tls)
                        .timeout(Duration::from_secs(300))
                        .build()?;
                    let mut acknowledged = 0usize;
                    for SignedUpload {
                        counter,
                        body,
                        sent,
                    } in bus.uploads
                    {
                        let response = client
                            .post(&url)
                            .header("content-type", busloket_sync::protocol::MEDIA_TYPE)
                            .body(body)
                            .send()
                            .await?;
                        let status = response.status();
                        let bytes = response.bytes().await?;
                        if !status.is_success() {
                            bail!(
                                "{}: {status} {}",
                                bus.device,
                                String::from_utf8_lossy(&bytes)
                            );
                        }
                        let answer = decode_answer(&bytes, &bus.device, counter)?;
                        for (id, heads) in sent {
                            let doc = answer
                                .docs
                                .iter()
                                .find(|doc| doc.id == *id.as_bytes())
                                .with_context(|| {
                                    format!("{}: {id} not acknowledged", bus.device)
                                })?;
                            let mut acked = from_wire(&doc.heads);
                            let mut heads = heads;
                            acked.sort();
                            heads.sort();
                            ensure!(
                                acked == heads,
                                "{}: {id} acknowledged with other heads",
                                bus.device
                            );
                            acknowledged += 1;
                        }
                    }
                    Ok::<usize, anyhow::Error>(acknowledged)
                }));
            }
            let mut acknowledged = 0;
            for task in tasks {
                acknowledged += task.await??;
            }
            Ok((start.elapsed().as_secs_f64(), acknowledged))
        })
    })??;
    ensure!(
        acknowledged == BUSES * BUS_REQUESTS,
        "only {acknowledged} of {} requests acknowledged",
        BUSES * BUS_REQUESTS
    );
    figure(
        "hub_100_buses_s",
        seconds,
        "s",
        Some(15.0),
        format!(
            "{BUSES} enrolled buses upload {BUS_REQUESTS} requests each (3 changes each) at the same \
             moment to the real busloket-hub over mutual TLS (plain veth, this machine's 2 cores \
             shared by the hub and the 100 clients); wall time until every bus has its answer; \
             {acknowledged} requests acknowledged with the heads they were sent with, none lost"
        ),
    );
    drop(hub);
    link.close()
}
