//! Fixtures: requests, a small bus (records, counter, acknowledged heads — what the node's sync
//! client will do, done plainly), a city CA with enrolled devices, and a hub served over TLS.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use automerge::{ActorId, Change, ChangeHash};
use busloket_hub::config::Config;
use busloket_hub::server::{AppState, run};
use busloket_provisioning::bundle::DeviceBundle;
use busloket_provisioning::{RequestFiles, enroll_device, init_ca, load_bundle, request_device};
use busloket_sync::protocol::{
    self, Answer, FileVersion, OutgoingDoc, Payload, TripLine, UploadHeader, bound_actor,
    build_upload, decode_answer,
};
use busloket_sync::record::{NewRequest, Origin, RequestRecord};
use busloket_sync::terms::{DeviceId, RequestId};
use ed25519_dalek::SigningKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tempfile::TempDir;

/// The request fixtures of `busloket-sync`'s own tests (a made-up citizen, fixed times and ids),
/// compiled here too so that one `NewRequest` literal follows the record model.
#[path = "../../../tests/it/support.rs"]
#[allow(dead_code, reason = "the store's tests use the rest of it")]
pub mod fixtures;

pub use fixtures::{device, event_id, time};

/// Request `n` of bus `bus`: the random part of its id says which bus made it, so ids of
/// different buses never meet.
pub fn request_id(bus: u8, n: u32) -> RequestId {
    let mut random = [bus; 10];
    random[6..].copy_from_slice(&n.to_be_bytes());
    RequestId::new(1_749_974_400_000 + u64::from(n), random)
}

/// The store tests' request `n`, made on `bus` under `id`.
pub fn new_request(id: RequestId, bus: &DeviceId, n: u32) -> NewRequest {
    let request = fixtures::new_request(n);
    NewRequest {
        id,
        origin: Origin {
            device: bus.clone(),
            ..request.origin
        },
        ..request
    }
}

/// A bus as the protocol sees it.
pub struct Bus {
    pub id: DeviceId,
    pub key: SigningKey,
    pub actor: ActorId,
    pub records: BTreeMap<RequestId, RequestRecord>,
    /// The heads the hub acknowledged, per request.
    pub acked: BTreeMap<RequestId, Vec<ChangeHash>>,
    pub counter: u64,
    pub answer_applied: u64,
    pub files: Vec<FileVersion>,
    pub need_whole: Vec<RequestId>,
    /// Trip log lines the next upload carries.
    pub trip: Vec<TripLine>,
}

impl Bus {
    pub fn new(id: &str, key: SigningKey, number: u8) -> Bus {
        let actor = bound_actor(key.verifying_key().as_bytes(), [number; 8]);
        Bus {
            id: device(id),
            key,
            actor,
            records: BTreeMap::new(),
            acked: BTreeMap::new(),
            counter: 0,
            answer_applied: 0,
            files: Vec::new(),
            need_whole: Vec::new(),
            trip: Vec::new(),
        }
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Creates request `n` of this bus (bus number `number` keeps ids apart).
    pub fn create(&mut self, number: u8, n: u32) -> RequestId {
        let id = request_id(number, n);
        let record = RequestRecord::create(
            &new_request(id, &self.id, n),
            self.actor.clone(),
            event_id(n),
            "kiosk:kiosk-1",
        )
        .unwrap();
        self.records.insert(id, record);
        id
    }

    /// The requests whose heads differ from what the hub acknowledged.
    pub fn outbox(&mut self) -> Vec<RequestId> {
        let acked = &self.acked;
        self.records
            .iter_mut()
            .filter_map(|(id, record)| {
                let heads = record.heads();
                acked
                    .get(id)
                    .is_none_or(|acked| *acked != heads)
                    .then_some(*id)
            })
            .collect()
    }

    pub fn header(&self) -> UploadHeader {
        UploadHeader {
            device: self.id.clone(),
            counter: self.counter,
            created_at: time(3600),
            answer_applied: self.answer_applied,
            need_whole: self.need_whole.clone(),
            files: self.files.clone(),
            trip: self.trip.clone(),
        }
    }

    /// The next upload: every request of the outbox, each since its acknowledged heads.
    pub fn upload(&mut self) -> Vec<u8> {
        let ids = self.outbox();
        self.upload_of(&ids)
    }

    pub fn upload_of(&mut self, ids: &[RequestId]) -> Vec<u8> {
        self.counter += 1;
        let docs = ids
            .iter()
            .map(|id| {
                let base = self.acked.get(id).cloned().unwrap_or_default();
                OutgoingDoc::from_record(*id, self.records.get_mut(id).unwrap(), &base)
            })
            .collect();
        build_upload(&self.key, &self.header(), docs)
    }

    /// Applies an answer as PROTOCOL.md "What the bus does" 3 says.
    pub fn apply(&mut self, body: &[u8]) -> Answer {
        let answer = decode_answer(body, &self.id, self.counter).unwrap();
        self.need_whole.clear();
        for doc in &answer.docs {
            let id = RequestId::from_bytes(doc.id);
            if let Some(payload) = &doc.payload {
                let applied = match (self.records.get_mut(&id), payload) {
                    (Some(record), Payload::Document(bytes)) => {
                        record.load_incremental(bytes).is_ok()
                    }
                    (Some(record), Payload::Changes(chunks)) => record
                        .apply_changes(
                            chunks
                                .iter()
                                .map(|bytes| Change::from_bytes(bytes.clone()).unwrap())
                                .collect(),
                        )
                        .is_ok(),
                    (None, payload) => match RequestRecord::load(&payload.to_automerge_bytes()) {
                        Ok(record) => {
                            self.records.insert(id, record);
                            true
                        }
                        Err(_) => false,
                    },
                };
                let record = self.records.get_mut(&id);
                if !applied
                    || record.is_some_and(|record| !record.missing_dependencies().is_empty())
                {
                    self.need_whole.push(id);
                    continue;
                }
            }
            let heads = protocol::from_wire(&doc.heads);
            if let Some(record) = self.records.get_mut(&id)
                && heads.iter().all(|head| record.has_change(head))
            {
                self.acked.insert(id, heads);
            }
        }
        for refusal in &answer.refused {
            if refusal.code == "missing-base" {
                self.acked.remove(&RequestId::from_bytes(refusal.id));
            }
        }
        for file in &answer.files {
            self.files.retain(|known| known.name != file.name);
            self.files.push(FileVersion {
                name: file.name.clone(),
                version: file.version,
            });
        }
        self.answer_applied = answer.answer_seq;
        answer
    }
}

pub const CENTRAL_IT_PASSWORD: &str = "central-it-2026";

/// A city: its CA with enrolled devices, the hub's key and staff files, the hub's config.
pub struct City {
    /// Kept so the directory lives as long as the city.
    pub _dir: TempDir,
    pub ca_dir: PathBuf,
    pub config: Config,
    pub bundles: BTreeMap<String, DeviceBundle>,
}

pub fn now() -> SystemTime {
    SystemTime::now()
}

/// Enrols `name` with the CA in `ca_dir`; its keys and bundle go under `root`.
pub fn enrol(ca_dir: &Path, root: &Path, name: &str) -> DeviceBundle {
    let keys = root.join(format!("{name}-keys"));
    let bundle = root.join(format!("{name}-bundle"));
    request_device(&keys, name, &["bus.local".to_owned()]).unwrap();
    enroll_device(
        ca_dir,
        &RequestFiles {
            device: keys.join("device.csr.pem"),
            wifi: keys.join("wifi.csr.pem"),
        },
        "https://127.0.0.1:8443",
        &bundle,
        30,
        now(),
    )
    .unwrap();
    load_bundle(&bundle, &keys, now()).unwrap()
}

pub fn city(devices: &[&str]) -> City {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    init_ca(
        &ca_dir,
        "City of Testing",
        &["localhost".to_owned(), "127.0.0.1".to_owned()],
        now(),
    )
    .unwrap();
    let bundles = devices
        .iter()
        .map(|name| (name.to_string(), enrol(&ca_dir, dir.path(), name)))
        .collect();
    busloket_provisioning::generate_at_rest_key(&dir.path().join("hub-at-rest.key")).unwrap();
    let hash = busloket_provisioning::hash_staff_password(CENTRAL_IT_PASSWORD).unwrap();
    let clerk_hash = busloket_provisioning::hash_staff_password("bus-clerk-2026").unwrap();
    std::fs::write(
        dir.path().join("staff.toml"),
        format!(
            "[[staff]]\nusername = \"it\"\ndisplay_name = \"Ilse Tack\"\npassword_hash = \"{hash}\"\nroles = [\"central-it\"]\n\n\
             [[staff]]\nusername = \"clerk\"\ndisplay_name = \"Jan Clerk\"\npassword_hash = \"{clerk_hash}\"\nroles = [\"bus-clerk\"]\n"
        ),
    )
    .unwrap();
    let text = "listen = \"127.0.0.1:0\"\ndata_dir = \"hub-data\"\nat_rest_key = \"hub-at-rest.key\"\n\
                staff_file = \"staff.toml\"\n[trust]\nca_dir = \"ca\"\n";
    let config = Config::parse(text, &dir.path().join("hub.toml"), dir.path()).unwrap();
    City {
        _dir: dir,
        ca_dir,
        config,
        bundles,
    }
}

/// A bus whose identity is an enrolled bundle.
pub fn bus_of(bundle: &DeviceBundle, number: u8) -> Bus {
    Bus::new(
        bundle.device_id().as_str(),
        bundle.device_signing_key().clone(),
        number,
    )
}

/// The hub served over TLS on 127.0.0.1.
pub struct RunningHub {
    pub state: AppState,
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningHub {
    pub async fn start(config: &Config) -> RunningHub {
        let opened = AppState::open(config).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "https://127.0.0.1:{}",
            listener.local_addr().unwrap().port()
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = opened.state.clone();
        let task = tokio::spawn(run(listener, opened.tls, opened.state, async {
            let _ = stopped.await;
        }));
        RunningHub {
            state,
            url,
            stop: Some(stop),
            task,
        }
    }

    /// One round over HTTPS: `bus` uploads its outbox with `client`, the hub answers 200 and the
    /// bus applies the answer.
    pub async fn round(&self, client: &reqwest::Client, bus: &mut Bus) -> Answer {
        let (status, body) = post_upload(client, &self.url, bus.upload()).await.unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        bus.apply(&body)
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap();
    }
}

/// An HTTPS client that trusts `ca` only and, when given, presents the device's certificate.
pub fn client(ca: &CertificateDer<'static>, device: Option<&DeviceBundle>) -> reqwest::Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match device {
        Some(bundle) => builder
            .with_client_auth_cert(
                vec![bundle.device_certificate().clone()],
                PrivateKeyDer::Pkcs8(bundle.device_key_der()),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Posts an upload; the status and the body.
pub async fn post_upload(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
) -> Result<(u16, Vec<u8>), reqwest::Error> {
    post_to_upload(client, url, protocol::MEDIA_TYPE, body).await
}

/// Posts `body` as `content_type` to the upload endpoint; the status and the body.
pub async fn post_to_upload(
    client: &reqwest::Client,
    url: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> Result<(u16, Vec<u8>), reqwest::Error> {
    let response = client
        .post(format!("{url}/sync/v1/upload"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.bytes().await?.to_vec()))
}

/// The `code` of a refusal's JSON body.
pub fn code_of(body: &[u8]) -> String {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap();
    json["code"].as_str().unwrap().to_owned()
}
