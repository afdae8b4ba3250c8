//! Support for the end-to-end tests: start the real `busloket-node` binary on a free port with a
//! fresh data directory, talk to it over HTTP, kill it, and drive headless Chromium through
//! chromedriver.
//!
//! A missing binary or system tool fails the test with what to run or install; nothing is skipped.

pub mod city;
pub mod lte;
pub mod sync;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

pub const DEMO_USER: &str = "demo";
pub const DEMO_PASSWORD: &str = "bus-demo-2026";

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// Where `cargo xtask test` put the binaries (or `target/debug`).
fn binary(name: &str) -> Result<PathBuf> {
    let dir = std::env::var_os("BUSLOKET_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/debug"));
    let path = dir.join(name);
    if !path.exists() {
        bail!(
            "{} is missing: run `cargo xtask test`, or `cargo build -p busloket-node -p busloket-provisioning --bins` first",
            path.display()
        );
    }
    Ok(path)
}

/// A directory for screenshots and other things a person should look at after the run.
pub fn artifacts_dir() -> PathBuf {
    let dir = workspace_root().join("target/e2e");
    std::fs::create_dir_all(&dir).expect("cannot create target/e2e");
    dir
}

/// A `busloket-node` process with its own data directory (kept across restarts).
pub struct TestNode {
    pub dir: tempfile::TempDir,
    pub base: String,
    child: Option<Child>,
    pub http: reqwest::Client,
}

impl TestNode {
    /// Prepares a demo configuration in a fresh directory and starts the node.
    pub async fn start() -> Result<TestNode> {
        TestNode::start_with(|_, config| Ok(config)).await
    }

    /// Like [`TestNode::start`], with the configuration text changed by `adapt` first (it may
    /// also write files into the node's directory).
    pub async fn start_with(
        adapt: impl FnOnce(&Path, String) -> Result<String>,
    ) -> Result<TestNode> {
        let dir = tempfile::tempdir()?;
        let example = std::fs::read_to_string(workspace_root().join("deploy/node.example.toml"))?;
        let config = example
            .replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"")
            .replace("kiosk_idle_seconds = 180", "kiosk_idle_seconds = 600");
        let config = adapt(dir.path(), config)?;
        std::fs::write(dir.path().join("node.toml"), config)?;
        std::fs::create_dir_all(dir.path().join("keys"))?;
        let status = Command::new(binary("busloket-provision")?)
            .args(["key", "generate"])
            .arg(dir.path().join("keys/at-rest.key"))
            .status()?;
        if !status.success() {
            bail!("busloket-provision key generate failed: {status}");
        }
        let mut node = TestNode {
            dir,
            base: String::new(),
            child: None,
            http: reqwest::Client::new(),
        };
        node.spawn().await?;
        Ok(node)
    }

    /// Starts (or restarts) the node on a new port with the same data directory.
    pub async fn spawn(&mut self) -> Result<()> {
        let mut child = Command::new(binary("busloket-node")?)
            .arg("--config")
            .arg(self.dir.path().join("node.toml"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start busloket-node")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        })
        .await??;
        let Some(base) = line.trim().strip_prefix("busloket-node listening on ") else {
            let status = child.wait()?;
            bail!("busloket-node did not start ({status}); first line: {line:?}");
        };
        self.base = base.to_owned();
        self.child = Some(child);
        Ok(())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill_hard(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Signs in as the demo clerk through the API; the bearer token.
    pub async fn sign_in(&self) -> Result<String> {
        let answer: Value = self
            .http
            .post(self.url("/api/v1/session"))
            .json(&json!({ "username": DEMO_USER, "password": DEMO_PASSWORD }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(answer["token"].as_str().context("no token")?.to_owned())
    }

    /// Inserts a demo citizen's card through the demo control page.
    pub async fn insert_card(&self, reader: &str, national_number: &str) -> Result<()> {
        self.http
            .post(self.url("/demo/insert"))
            .form(&[("reader", reader), ("national_number", national_number)])
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    pub async fn pull_card(&self, reader: &str) -> Result<()> {
        self.http
            .post(self.url("/demo/pull"))
            .form(&[("reader", reader)])
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        let _ = self.kill_hard();
    }
}

/// A free TCP port on loopback (for chromedriver).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Headless Chromium through chromedriver, sized like a 10-inch tablet.
pub struct Browser {
    pub client: fantoccini::Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start(width: u32, height: u32) -> Result<Browser> {
        for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
            if !Path::new(tool).exists() {
                bail!(
                    "{tool} is missing: run `cargo xtask deps` (apt-get install chromium chromium-driver)"
                );
            }
        }
        let port = free_port()?;
        // Its own process group, so that Chromium (its child) goes with it, even when a test
        // fails before `close`.
        let mut driver = Command::new("/usr/bin/chromedriver")
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start chromedriver")?;
        // chromedriver says on stdout when it listens: wait for that line rather than retrying.
        let stdout = driver.stdout.take().context("no stdout")?;
        let ready = tokio::task::spawn_blocking(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .any(|line| line.contains("started successfully"))
        });
        let started = tokio::time::timeout(Duration::from_secs(20), ready).await;
        if !matches!(started, Ok(Ok(true))) {
            let _ = driver.kill();
            bail!("chromedriver did not start within 20 s");
        }
        let profile = tempfile::tempdir()?;
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object")
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = fantoccini::ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .context("cannot start a Chromium session through chromedriver")?;
        Ok(Browser {
            client,
            driver,
            _profile: profile,
        })
    }

    /// Saves a PNG screenshot under `target/e2e/`.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        let png = self.client.screenshot().await?;
        let path = artifacts_dir().join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    pub async fn close(self) -> Result<()> {
        self.client.clone().close().await?;
        Ok(())
    }
}

impl Drop for Browser {
    /// Stops chromedriver and every Chromium process it started (the whole process group).
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.wait();
    }
}

/// Waits at most 15 s (a card read, a PIN check, a redraw on a server-sent event) for an element
/// matching `css`; if none comes, the error says what the page shows instead.
pub async fn wait_for(
    client: &fantoccini::Client,
    css: &str,
) -> Result<fantoccini::elements::Element> {
    let found = client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(fantoccini::Locator::Css(css))
        .await;
    match found {
        Ok(element) => Ok(element),
        Err(err) => {
            let url = client
                .current_url()
                .await
                .map(|url| url.to_string())
                .unwrap_or_default();
            let shown = match client.find(fantoccini::Locator::Css("main")).await {
                Ok(main) => main.text().await.unwrap_or_default(),
                Err(_) => client.source().await.unwrap_or_default(),
            };
            bail!("`{css}` did not appear on {url} ({err}); the page shows:\n{shown}")
        }
    }
}

/// Clicks the element matching `css`, waiting for it first.
pub async fn click(client: &fantoccini::Client, css: &str) -> Result<()> {
    wait_for(client, css).await?.click().await?;
    Ok(())
}

/// The real pcscd, started in the foreground for a test and stopped by pid. One per host: the
/// tests that need it take it through [`Pcscd::start`], which refuses while another one runs.
pub struct Pcscd {
    child: Child,
}

const PCSCD_DIR: &str = "/run/pcscd";

impl Pcscd {
    pub fn start() -> Result<Pcscd> {
        if !Path::new("/usr/sbin/pcscd").exists() {
            bail!(
                "/usr/sbin/pcscd is missing: run `cargo xtask deps` (apt-get install pcscd vsmartcard-vpcd)"
            );
        }
        if !Path::new("/usr/lib/pcsc/drivers/serial/libifdvpcd.so").exists() {
            bail!(
                "the vpcd driver is missing: run `cargo xtask deps` (apt-get install vsmartcard-vpcd)"
            );
        }
        let pid_file = Path::new(PCSCD_DIR).join("pcscd.pid");
        if let Ok(pid) = std::fs::read_to_string(&pid_file) {
            let pid = pid.trim();
            if !pid.is_empty() && Path::new("/proc").join(pid).exists() {
                bail!("another pcscd (pid {pid}) is running; stop it first (kill {pid})");
            }
        }
        // A pcscd killed earlier leaves these behind, and they block a new start.
        for stale in ["pcscd.comm", "pcscd.pid"] {
            let _ = std::fs::remove_file(Path::new(PCSCD_DIR).join(stale));
        }
        let log = std::fs::File::create(artifacts_dir().join("pcscd.log"))?;
        let child = Command::new("/usr/sbin/pcscd")
            .arg("--foreground")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start pcscd")?;
        let pcscd = Pcscd { child };
        // pcscd has no readiness notification outside systemd: its socket appearing is the sign.
        let socket = Path::new(PCSCD_DIR).join("pcscd.comm");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            if Instant::now() > deadline {
                bail!(
                    "pcscd did not open {} within 10 s; see target/e2e/pcscd.log",
                    socket.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(pcscd)
    }

    /// Kills pcscd without warning, as a crash would.
    pub fn kill_hard(&mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Pcscd {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .arg(self.child.id().to_string())
                .status();
            let _ = self.child.wait();
        }
    }
}

/// The first reader of pcscd's vpcd driver, where the virtual card goes.
pub const VPCD_READER: &str = "Virtual PCD 00 00";

/// Plugs a virtual card into vpcd's first reader (the card is served on its own thread).
pub async fn insert_virtual_card(
    card: busloket_virtual_eid::VirtualCard,
) -> Result<busloket_virtual_eid::InsertedCard> {
    let address =
        std::net::SocketAddr::from(([127, 0, 0, 1], busloket_virtual_eid::DEFAULT_VPCD_PORT));
    let inserted = tokio::task::spawn_blocking(move || {
        busloket_virtual_eid::insert(card, address, Duration::from_secs(10))
    })
    .await??;
    Ok(inserted)
}

/// Plugs a virtual card into vpcd's first reader that pulls itself out right after answering
/// `apdus` command APDUs: a citizen taking the card back in the middle of a read.
pub async fn insert_virtual_card_pulled_after(
    card: busloket_virtual_eid::VirtualCard,
    apdus: usize,
) -> Result<busloket_virtual_eid::InsertedCard> {
    let address =
        std::net::SocketAddr::from(([127, 0, 0, 1], busloket_virtual_eid::DEFAULT_VPCD_PORT));
    let inserted = tokio::task::spawn_blocking(move || {
        busloket_virtual_eid::insert_pulled_after(card, address, Duration::from_secs(10), apdus)
    })
    .await??;
    Ok(inserted)
}

/// Pulls the virtual card out of its reader and gives it back.
pub async fn pull_virtual_card(
    inserted: busloket_virtual_eid::InsertedCard,
) -> Result<busloket_virtual_eid::VirtualCard> {
    Ok(tokio::task::spawn_blocking(move || inserted.pull()).await??)
}

/// Waits at most ten seconds for a card event.
pub async fn expect_card_event(
    events: &mut tokio::sync::broadcast::Receiver<busloket_hardware::CardEvent>,
    wanted: busloket_hardware::CardEvent,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(event)) if event == wanted => return Ok(()),
            Ok(Ok(_)) => {}
            Ok(Err(err)) => bail!("the card events stopped: {err}"),
            Err(_) => bail!("no {wanted:?} within 10 s"),
        }
    }
}
