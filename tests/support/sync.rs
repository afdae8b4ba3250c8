//! A hub and a synced node on each side of an emulated LTE link ([`crate::lte`]), as real
//! processes: `busloket-hub` in the hub's namespace, `busloket-node` in the bus's, each with the
//! city's certificates from [`crate::city`]. The test talks to the node over its HTTPS from
//! inside the bus namespace, and to the hub from inside the hub namespace. Nothing here polls:
//! a wait on the node awaits its server-sent events, a wait for a process to listen awaits the
//! line it prints.

use std::fs::File;
use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
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

/// Which of a child's output pipes carries the line a test waits for.
#[derive(Debug, Clone, Copy)]
enum Pipe {
    Stdout,
    Stderr,
}

/// A child process and the thread copying its output pipe to its log file.
struct Logged {
    child: Child,
    copier: JoinHandle<()>,
}

impl Logged {
    /// Spawns `command` with `pipe` copied line by line to `log` (appended; the other stream is
    /// the caller's to set), and awaits the line starting with `prefix`; returns the process and
    /// the rest of that line. A child that stops first, or says nothing of the kind within 30 s,
    /// is an error showing what it printed (and is killed).
    fn spawn(
        command: &mut Command,
        pipe: Pipe,
        log: &Path,
        prefix: &str,
        what: &str,
    ) -> Result<(Logged, String)> {
        let log = log_file(log)?;
        match pipe {
            Pipe::Stdout => command.stdout(Stdio::piped()),
            Pipe::Stderr => command.stderr(Stdio::piped()),
        };
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {what}"))?;
        let output: Box<dyn Read + Send> = match pipe {
            Pipe::Stdout => Box::new(child.stdout.take().context("no stdout pipe")?),
            Pipe::Stderr => Box::new(child.stderr.take().context("no stderr pipe")?),
        };
        let (lines, copier) = copy_lines(output, log);
        let mut logged = Logged { child, copier };
        match await_line(&lines, prefix, &mut logged.child, what) {
            Ok(rest) => Ok((logged, rest)),
            Err(error) => {
                let _ = logged.kill();
                Err(error)
            }
        }
    }

    /// SIGKILL, then waits for the copy to reach the end of the pipe: the log file is complete
    /// when this returns.
    fn kill(mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        self.copier
            .join()
            .map_err(|_| anyhow::anyhow!("the log copier panicked"))
    }
}

/// Copies every line of `output` to `log` on a thread (the file must keep everything: the tests
/// print it on failure) and sends each one, without its line end, to the receiver. The copy
/// goes on to the end of the pipe whether or not anyone still listens, so the child never
/// blocks on a full pipe.
fn copy_lines(
    output: impl Read + Send + 'static,
    mut log: File,
) -> (Receiver<String>, JoinHandle<()>) {
    let (sender, receiver) = mpsc::channel();
    let copier = std::thread::spawn(move || {
        let mut output = BufReader::new(output);
        let mut line = Vec::new();
        loop {
            line.clear();
            match output.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {}
                Err(error) => {
                    eprintln!("reading a child's output failed: {error}");
                    return;
                }
            }
            if let Err(error) = log.write_all(&line) {
                eprintln!("copying a child's output to its log failed: {error}");
            }
            // Once the awaited line came, nobody listens; that is fine.
            let _ = sender.send(String::from_utf8_lossy(&line).trim_end().to_owned());
        }
    });
    (receiver, copier)
}

/// Awaits the line starting with `prefix` among `lines` (at most 30 s); returns the rest of it.
/// The channel closes when the child's output ends, that is when it stopped.
fn await_line(
    lines: &Receiver<String>,
    prefix: &str,
    child: &mut Child,
    what: &str,
) -> Result<String> {
    let within = Duration::from_secs(30);
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => match line.strip_prefix(prefix) {
                Some(rest) => return Ok(rest.trim().to_owned()),
                None => seen.push(line),
            },
            Err(RecvTimeoutError::Disconnected) => {
                let status = child.wait()?;
                bail!(
                    "{what} stopped ({status}) before it listened:\n{}",
                    seen.join("\n")
                );
            }
            Err(RecvTimeoutError::Timeout) => bail!(
                "{what} did not say `{prefix}` within {within:?}:\n{}",
                seen.join("\n")
            ),
        }
    }
}

fn log_file(path: &Path) -> Result<File> {
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
    process: Option<Logged>,
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
        // The demo's stops: the buses get them as synced file `stops`.
        std::fs::write(
            dir.path().join("stops.toml"),
            include_str!("../../deploy/stops.example.toml"),
        )?;
        // The demo's postcodes, for the indicators' estimate of kilometres avoided.
        std::fs::write(
            dir.path().join("postcodes.toml"),
            include_str!("../../deploy/postcodes.example.toml"),
        )?;
        let config = dir.path().join("hub.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"{addr}:{HUB_PORT}\"\ndata_dir = \"data\"\nat_rest_key = \"keys/at-rest.key\"\nstaff_file = \"staff.toml\"\nstops_file = \"stops.toml\"\n\n\
                 [indicators]\ntown_hall = {{ name = \"Stadhuis Kortrijk\", latitude = 50.8277, longitude = 3.2647 }}\npostcodes_file = \"postcodes.toml\"\n\n\
                 [trust]\nca_dir = \"{ca}\"\n",
                addr = link.hub_addr(),
                ca = city.ca_dir().display()
            ),
        )?;
        let mut hub = TestHub {
            ca_pem: std::fs::read(city.ca_dir().join("ca.pem"))?,
            url: format!("https://{}:{HUB_PORT}", link.hub_addr()),
            dir,
            config,
            process: None,
        };
        hub.spawn(link)?;
        Ok(hub)
    }

    /// Starts (or restarts, on the same store) the hub process.
    pub fn spawn(&mut self, link: &LteLink) -> Result<()> {
        let (process, _) = Logged::spawn(
            link.command_in_hub(binary("busloket-hub")?)
                .arg("--config")
                .arg(&self.config)
                .env("RUST_LOG", "info")
                .stdout(Stdio::null()),
            Pipe::Stderr,
            &self.dir.path().join("hub.log"),
            "busloket-hub listening on ",
            "busloket-hub",
        )?;
        self.process = Some(process);
        Ok(())
    }

    /// SIGKILL: no flush, no goodbye.
    pub fn kill_hard(&mut self) -> Result<()> {
        self.process.take().map_or(Ok(()), Logged::kill)
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
    process: Option<Logged>,
    ca_pem: Vec<u8>,
    /// `https://127.0.0.1:<port>` inside the bus namespace.
    pub base: String,
}

impl SyncedNode {
    /// Enrols `device` at `city` for `hub` and starts its node (demo devices, `[sync]` on).
    pub fn start(link: &LteLink, city: &City, hub: &TestHub, device: &str) -> Result<SyncedNode> {
        SyncedNode::start_with(link, city, hub, device, None)
    }

    /// As [`SyncedNode::start`], with its receiver through gpsd at `gpsd_address` instead of the
    /// example's simulated one. The node runs in the bus namespace, so that gpsd must listen
    /// there (a `Gpsfake` started inside [`LteLink::in_bus`]).
    pub fn start_with_gpsd(
        link: &LteLink,
        city: &City,
        hub: &TestHub,
        device: &str,
        gpsd_address: &str,
    ) -> Result<SyncedNode> {
        SyncedNode::start_with(link, city, hub, device, Some(gpsd_address))
    }

    fn start_with(
        link: &LteLink,
        city: &City,
        hub: &TestHub,
        device: &str,
        gpsd_address: Option<&str>,
    ) -> Result<SyncedNode> {
        let bus = city.enroll(device, &["127.0.0.1"], &hub.url)?;
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("keys"))?;
        run(Command::new(binary("busloket-provision")?)
            .args(["key", "generate"])
            .arg(dir.path().join("keys/at-rest.key")))?;
        let mut example =
            std::fs::read_to_string(workspace_root().join("deploy/node.example.toml"))?;
        if let Some(address) = gpsd_address {
            const SIMULATED: &str =
                "[gps]\nkind = \"simulated\"\nlatitude = 50.8279\nlongitude = 3.2649\n";
            if !example.contains(SIMULATED) {
                bail!("deploy/node.example.toml no longer has the simulated [gps] to replace");
            }
            example = example.replace(
                SIMULATED,
                &format!("[gps]\nkind = \"gpsd\"\naddress = \"{address}\"\n"),
            );
        }
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
            process: None,
            base: String::new(),
        };
        node.spawn(link)?;
        Ok(node)
    }

    /// Starts (or restarts) the node on the same data directory.
    pub fn spawn(&mut self, link: &LteLink) -> Result<()> {
        let log = self.dir.path().join("node.log");
        std::fs::write(&log, "")?;
        let (process, base) = Logged::spawn(
            link.command_in_bus(binary("busloket-node")?)
                .arg("--config")
                .arg(&self.config)
                .env("RUST_LOG", "info")
                .stderr(log_file(&self.dir.path().join("node.err.log"))?),
            Pipe::Stdout,
            &log,
            "busloket-node listening on ",
            "busloket-node",
        )?;
        self.process = Some(process);
        self.base = base;
        if !self.base.starts_with("https://") {
            bail!(
                "a synced node must serve HTTPS on the bus Wi-Fi, it said {}",
                self.base
            );
        }
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
        self.get(link, "/api/v1/sync")
    }

    /// `GET path` of the node's API, as JSON.
    pub fn get(&self, link: &LteLink, path: &str) -> Result<Value> {
        let path = path.to_owned();
        self.call(link, move |client, base, token| async move {
            Ok(client
                .get(format!("{base}{path}"))
                .bearer_auth(token)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?)
        })
    }

    /// `GET /api/v1/position`: where the node says the bus is.
    pub fn position(&self, link: &LteLink) -> Result<Value> {
        self.get(link, "/api/v1/position")
    }

    /// Asks the node for rounds until its sync status satisfies `done`, awaiting its events
    /// rather than polling (see [`StatusWatch::sync_until`]); the status that did.
    pub fn sync_until(
        &self,
        link: &LteLink,
        within: Duration,
        done: impl Fn(&Value) -> bool + Send + 'static,
    ) -> Result<Value> {
        self.call(link, move |client, base, token| async move {
            StatusWatch::open(client, base, token)
                .await?
                .sync_until(within, done)
                .await
        })
    }

    /// Awaits the node's events until its position satisfies `done` (see
    /// [`StatusWatch::position_until`]); the position that did.
    pub fn position_until(
        &self,
        link: &LteLink,
        within: Duration,
        done: impl Fn(&Value) -> bool + Send + 'static,
    ) -> Result<Value> {
        self.call(link, move |client, base, token| async move {
            StatusWatch::open(client, base, token)
                .await?
                .position_until(within, done)
                .await
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
                let id = submit_one(&client, &base, &token, index).await?;
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

    pub fn kill_hard(&mut self) -> Result<()> {
        self.process.take().map_or(Ok(()), Logged::kill)
    }
}

/// The node's event stream (`GET /staff/events`: an `event: changed` for every change of the
/// sync status or of the position, among others) with the sync status and the position, for a
/// test that waits on the node. Opened inside a [`SyncedNode::call`], whose bearer token the
/// stream takes as a staff session.
pub struct StatusWatch {
    client: reqwest::Client,
    base: String,
    token: String,
    events: reqwest::Response,
    /// Received from the stream and not yet read as events.
    unread: String,
}

/// The event stream lasts a whole wait, and each wait has its own deadline: the client's limit
/// of 60 s for one request does not fit it.
const EVENT_STREAM_LIMIT: Duration = Duration::from_secs(15 * 60);

impl StatusWatch {
    /// Subscribes to the node's events: every change from now on is seen.
    pub async fn open(client: reqwest::Client, base: String, token: String) -> Result<StatusWatch> {
        let events = client
            .get(format!("{base}/staff/events"))
            .bearer_auth(&token)
            .timeout(EVENT_STREAM_LIMIT)
            .send()
            .await?
            .error_for_status()
            .context("the node refused its event stream")?;
        Ok(StatusWatch {
            client,
            base,
            token,
            events,
            unread: String::new(),
        })
    }

    /// `GET path` of the node's API, as JSON.
    async fn get(&self, path: &str) -> Result<Value> {
        Ok(self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// `GET /api/v1/sync`.
    async fn status(&self) -> Result<Value> {
        self.get("/api/v1/sync").await
    }

    /// `POST /api/v1/sync`: a round at once, or right after the one in flight.
    async fn ask_for_round(&self) -> Result<()> {
        self.client
            .post(format!("{}/api/v1/sync", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Asks for a round, then reads the status, and reads it again after each `changed` event,
    /// until `done` holds for it (returned) or `within` has passed (an error showing the last
    /// status). After a failed round the node backs off for up to 5 minutes, so each new
    /// failure is answered with another ask, as a clerk would press "Sync now" again.
    pub async fn sync_until(
        &mut self,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + within;
        let mut failure_answered = self.status().await?["last_error"]["at"].clone();
        self.ask_for_round().await?;
        loop {
            let status = self.status().await?;
            if done(&status) {
                return Ok(status);
            }
            let failure = &status["last_error"]["at"];
            if !failure.is_null() && *failure != failure_answered {
                self.ask_for_round().await?;
                failure_answered = failure.clone();
            }
            if !self.changed_before(deadline).await? {
                bail!("the sync status was not as awaited within {within:?}; the last: {status:#}");
            }
        }
    }

    /// `GET /api/v1/position`: where the node says the bus is.
    pub async fn position(&self) -> Result<Value> {
        self.get("/api/v1/position").await
    }

    /// Reads the position, and reads it again after each `changed` event, until `done` holds
    /// for it (returned) or `within` has passed (an error showing the last position).
    pub async fn position_until(
        &mut self,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let position = self.position().await?;
            if done(&position) {
                return Ok(position);
            }
            if !self.changed_before(deadline).await? {
                bail!("the position was not as awaited within {within:?}; the last: {position:#}");
            }
        }
    }

    /// Awaits the next `changed` event; false if `deadline` comes first.
    pub async fn changed_before(&mut self, deadline: tokio::time::Instant) -> Result<bool> {
        loop {
            // Server-sent events end with a blank line; keep-alives are comment lines.
            while let Some(end) = self.unread.find("\n\n") {
                let event: String = self.unread.drain(..end + 2).collect();
                if event.lines().any(|line| line == "event: changed") {
                    return Ok(true);
                }
            }
            let Ok(chunk) = tokio::time::timeout_at(deadline, self.events.chunk()).await else {
                return Ok(false);
            };
            let chunk = chunk?.context("the node's event stream ended: did the node stop?")?;
            self.unread.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

impl Drop for SyncedNode {
    fn drop(&mut self) {
        let _ = self.kill_hard();
    }
}

/// A made-up citizen's request for the API: national numbers with valid checksums, no real
/// person.
/// Submits made-up request `index` ([`submission`]) through the node's API at `base`; its id.
pub async fn submit_one(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    index: usize,
) -> Result<String> {
    let created: Value = client
        .post(format!("{base}/api/v1/requests"))
        .bearer_auth(token)
        .json(&submission(index))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(created["id"].as_str().context("an id")?.to_owned())
}

pub fn submission(index: usize) -> Value {
    let base = 700_101_001u64 + (index as u64 % 300) * 2;
    let number = format!("{base:09}{:02}", 97 - base % 97);
    let postcode = ["8500", "8501", "8510", "8520", "7700"][index % 5];
    json!({
        "document": "household-composition",
        "requester": { "national_number": number, "name": format!("Sync Test {index}") },
        "requester_postcode": postcode,
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
