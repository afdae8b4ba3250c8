//! A hub and a synced node on each side of an emulated LTE link ([`crate::lte`]), as real
//! processes: `busloket-hub` in the hub's namespace, `busloket-node` in the bus's, each with the
//! city's certificates from [`crate::city`]. The test talks to the node over its HTTPS from
//! inside the bus namespace, and to the hub from inside the hub namespace.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::city::{City, EnrolledBus};
use crate::lte::LteLink;
use crate::{DEMO_PASSWORD, DEMO_USER, binary, workspace_root};

/// Central IT's account at the test hub.
pub const HUB_USER: &str = "it-admin";
pub const HUB_PASSWORD: &str = "hub-test-2026";
const HUB_PORT: u16 = 8443;

/// Runs `call` with an HTTPS client that trusts the city CA, on a thread inside a namespace
/// (`in_ns` is [`LteLink::in_bus`] or [`LteLink::in_hub`]): every socket it opens is there.
fn in_namespace<T, F>(
    in_ns: impl FnOnce(Box<dyn FnOnce() -> Result<T> + Send>) -> Result<Result<T>>,
    ca_pem: Vec<u8>,
    call: impl FnOnce(reqwest::Client) -> F + Send + 'static,
) -> Result<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T>>,
{
    in_ns(Box::new(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem)?)
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        runtime.block_on(call(client))
    }))?
}

/// Waits until `log` has, after its first `from` bytes, a line starting with `prefix`; returns
/// the rest of the line.
fn wait_for_line(
    log: &Path,
    from: usize,
    prefix: &str,
    child: &mut Child,
    what: &str,
) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let text = text.get(from..).unwrap_or_default();
        if let Some(line) = text.lines().find_map(|line| line.strip_prefix(prefix)) {
            return Ok(line.trim().to_owned());
        }
        if let Some(status) = child.try_wait()? {
            bail!("{what} stopped ({status}) before it listened:\n{text}");
        }
        if Instant::now() > deadline {
            bail!("{what} did not say `{prefix}` within 30 s:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn log_file(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))
}

/// The `busloket-hub` process in the hub namespace.
pub struct TestHub {
    pub dir: tempfile::TempDir,
    config: PathBuf,
    child: Option<Child>,
    ca_pem: Vec<u8>,
    /// `https://<hub address>:8443`.
    pub url: String,
}

impl TestHub {
    /// Configures and starts the hub for `city`, listening on the link's hub address.
    pub fn start(link: &LteLink, city: &City) -> Result<TestHub> {
        let dir = tempfile::tempdir()?;
        let keys = dir.path().join("keys");
        std::fs::create_dir_all(&keys)?;
        run(Command::new(binary("busloket-provision")?)
            .args(["key", "generate"])
            .arg(keys.join("at-rest.key")))?;
        let hash = password_hash(HUB_PASSWORD)?;
        std::fs::write(
            dir.path().join("staff.toml"),
            format!(
                "[[staff]]\nusername = \"{HUB_USER}\"\ndisplay_name = \"Central IT\"\npassword_hash = \"{hash}\"\nroles = [\"central-it\", \"city-clerk\"]\n"
            ),
        )?;
        let config = dir.path().join("hub.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"{addr}:{HUB_PORT}\"\ndata_dir = \"data\"\nat_rest_key = \"keys/at-rest.key\"\nstaff_file = \"staff.toml\"\n\n[trust]\nca_dir = \"{ca}\"\n",
                addr = link.hub_addr(),
                ca = city.ca_dir().display()
            ),
        )?;
        let mut hub = TestHub {
            ca_pem: std::fs::read(city.ca_dir().join("ca.pem"))?,
            url: format!("https://{}:{HUB_PORT}", link.hub_addr()),
            dir,
            config,
            child: None,
        };
        hub.spawn(link)?;
        Ok(hub)
    }

    /// Starts (or restarts, on the same store) the hub process.
    pub fn spawn(&mut self, link: &LteLink) -> Result<()> {
        let log = self.dir.path().join("hub.log");
        let from = std::fs::metadata(&log).map_or(0, |meta| meta.len() as usize);
        let mut child = link
            .command_in_hub(binary("busloket-hub")?)
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log_file(&log)?)
            .spawn()
            .context("cannot start busloket-hub")?;
        wait_for_line(
            &log,
            from,
            "busloket-hub listening on ",
            &mut child,
            "busloket-hub",
        )?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL: no flush, no goodbye.
    pub fn kill_hard(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// What the hub logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("hub.log")).unwrap_or_default()
    }

    /// Signs in as central IT and runs `call` with the session cookie, inside the hub namespace.
    pub fn call<T, F>(
        &self,
        link: &LteLink,
        call: impl FnOnce(reqwest::Client, String, String) -> F + Send + 'static,
    ) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T>>,
    {
        let url = self.url.clone();
        in_namespace(
            |f| link.in_hub(f),
            self.ca_pem.clone(),
            move |client| async move {
                let response = client
                    .post(format!("{url}/signin"))
                    .form(&[("username", HUB_USER), ("password", HUB_PASSWORD)])
                    .send()
                    .await?;
                let cookie = response
                    .headers()
                    .get_all(reqwest::header::SET_COOKIE)
                    .iter()
                    .filter_map(|value| value.to_str().ok())
                    .find_map(|value| value.split(';').next().map(str::to_owned))
                    .context("the hub set no session cookie")?;
                call(client, url, cookie).await
            },
        )
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        let _ = self.kill_hard();
    }
}

/// A `busloket-node` process in the bus namespace, enrolled and syncing with the hub.
pub struct SyncedNode {
    pub dir: tempfile::TempDir,
    pub bus: EnrolledBus,
    config: PathBuf,
    child: Option<Child>,
    ca_pem: Vec<u8>,
    /// `https://127.0.0.1:<port>` inside the bus namespace.
    pub base: String,
}

impl SyncedNode {
    /// Enrols `device` at `city` for `hub` and starts its node (demo devices, `[sync]` on).
    pub fn start(link: &LteLink, city: &City, hub: &TestHub, device: &str) -> Result<SyncedNode> {
        let bus = city.enroll(device, &["127.0.0.1"], &hub.url)?;
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("keys"))?;
        run(Command::new(binary("busloket-provision")?)
            .args(["key", "generate"])
            .arg(dir.path().join("keys/at-rest.key")))?;
        let example = std::fs::read_to_string(workspace_root().join("deploy/node.example.toml"))?;
        let config = example
            .replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"")
            .replace(
                "device_id = \"bus-demo-1\"",
                &format!("device_id = \"{device}\""),
            )
            + &format!(
                "\n[sync]\nbundle_dir = \"{}\"\nkey_dir = \"{}\"\ninterval_seconds = 5\n",
                bus.bundle.display(),
                bus.keys.display()
            );
        let path = dir.path().join("node.toml");
        std::fs::write(&path, config)?;
        let mut node = SyncedNode {
            ca_pem: std::fs::read(bus.bundle.join("ca.pem"))?,
            dir,
            bus,
            config: path,
            child: None,
            base: String::new(),
        };
        node.spawn(link)?;
        Ok(node)
    }

    /// Starts (or restarts) the node on the same data directory.
    pub fn spawn(&mut self, link: &LteLink) -> Result<()> {
        let log = self.dir.path().join("node.log");
        std::fs::write(&log, "")?;
        let mut child = link
            .command_in_bus(binary("busloket-node")?)
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .stdout(log_file(&log)?)
            .stderr(log_file(&self.dir.path().join("node.err.log"))?)
            .spawn()
            .context("cannot start busloket-node")?;
        self.base = wait_for_line(
            &log,
            0,
            "busloket-node listening on ",
            &mut child,
            "busloket-node",
        )?;
        if !self.base.starts_with("https://") {
            bail!(
                "a synced node must serve HTTPS on the bus Wi-Fi, it said {}",
                self.base
            );
        }
        self.child = Some(child);
        Ok(())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("node.err.log")).unwrap_or_default()
    }

    /// Signs in as the demo clerk and runs `call` with the bearer token, inside the bus
    /// namespace.
    pub fn call<T, F>(
        &self,
        link: &LteLink,
        call: impl FnOnce(reqwest::Client, String, String) -> F + Send + 'static,
    ) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T>>,
    {
        let base = self.base.clone();
        in_namespace(
            |f| link.in_bus(f),
            self.ca_pem.clone(),
            move |client| async move {
                let answer: Value = client
                    .post(format!("{base}/api/v1/session"))
                    .json(&json!({ "username": DEMO_USER, "password": DEMO_PASSWORD }))
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                let token = answer["token"].as_str().context("no token")?.to_owned();
                call(client, base, token).await
            },
        )
    }

    /// The node's sync status (`GET /api/v1/sync`).
    pub fn sync_status(&self, link: &LteLink) -> Result<Value> {
        self.call(link, |client, base, token| async move {
            Ok(client
                .get(format!("{base}/api/v1/sync"))
                .bearer_auth(token)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?)
        })
    }

    /// Submits `count` made-up requests through the node's API (each with `reprints` extra
    /// ticket prints, so several events each); their ids.
    pub fn submit(
        &self,
        link: &LteLink,
        from: usize,
        count: usize,
        reprints: usize,
    ) -> Result<Vec<String>> {
        self.call(link, move |client, base, token| async move {
            let mut ids = Vec::with_capacity(count);
            for index in from..from + count {
                let created: Value = client
                    .post(format!("{base}/api/v1/requests"))
                    .bearer_auth(&token)
                    .json(&submission(index))
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                let id = created["id"].as_str().context("an id")?.to_owned();
                for _ in 0..reprints {
                    client
                        .post(format!("{base}/api/v1/requests/{id}/reprint"))
                        .bearer_auth(&token)
                        .send()
                        .await?
                        .error_for_status()?;
                }
                ids.push(id);
            }
            Ok(ids)
        })
    }

    /// Asks for a round now.
    pub fn sync_now(&self, link: &LteLink) -> Result<()> {
        self.call(link, |client, base, token| async move {
            client
                .post(format!("{base}/api/v1/sync"))
                .bearer_auth(token)
                .send()
                .await?
                .error_for_status()?;
            Ok(())
        })
    }

    pub fn kill_hard(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }
}

impl Drop for SyncedNode {
    fn drop(&mut self) {
        let _ = self.kill_hard();
    }
}

/// A made-up citizen's request for the API: national numbers with valid checksums, no real
/// person.
pub fn submission(index: usize) -> Value {
    let base = 700_101_001u64 + (index as u64 % 300) * 2;
    let number = format!("{base:09}{:02}", 97 - base % 97);
    json!({
        "document": "household-composition",
        "requester": { "national_number": number, "name": format!("Sync Test {index}") },
        "relation": "self",
        "authentication": "card-read",
        "channel": "bus-kiosk",
        "language": "nl",
        "delivery": { "method": "print-here" },
        "station": "tablet-1"
    })
}

fn password_hash(password: &str) -> Result<String> {
    use std::io::Write;
    let mut child = Command::new(binary("busloket-provision")?)
        .args(["staff", "hash"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("no stdin")?
        .write_all(format!("{password}\n").as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "busloket-provision staff hash failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

fn run(command: &mut Command) -> Result<()> {
    let output = command.output()?;
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
