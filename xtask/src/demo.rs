//! `cargo xtask demo`: the city's hub and a bus's node synced with it, with simulated devices and
//! the made-up demo citizens.
//!
//! Builds the binaries, prepares `target/demo/` once with the real `busloket-provision` (later runs
//! reuse it; `--fresh` starts over), starts `busloket-hub` and then `busloket-node`, and prints the
//! URLs. Ctrl-C stops both. Options: `--port N` (the node, default 8080), `--hub-port N` (the hub,
//! default 8443), `--fresh`, `--https` (the bus Wi-Fi over HTTPS, see below).
//!
//! `target/demo/`:
//! - `city/ca/`: the demo city's CA (`ca init`), whose `hub.pem` is the hub's TLS certificate for
//!   127.0.0.1 and localhost;
//! - `bus/keys/`: the bus's own keys and requests (`device request`) and its at-rest key;
//!   `bus/bundle/`: its enrolment (`device enroll`, for `https://127.0.0.1:<hub port>`: redone
//!   when the hub port or the CA changes); `bus/node.toml` (`deploy/node.example.toml` with
//!   `[sync]`), `bus/data/`, `bus/printed/`;
//! - `hub/`: `hub.toml` (with `stops.toml` and `postcodes.toml` from `deploy/`), `staff.toml` (central IT `it-demo` and the bus clerk `demo`), the at-rest
//!   key in `hub/keys/`, the store in `hub/data/`, the log in `hub/hub.log`.
//!
//! The provisioning tool never overwrites a file, so each step runs only when its outputs are
//! missing; the two configurations are written on every run (they hold the ports).
//!
//! **The bus Wi-Fi is plain HTTP on the demo** (`wifi_tls = false`), unless `--https`. A real bus
//! always serves HTTPS with its Wi-Fi certificate, and `--https` does exactly that, but the
//! certificate comes from the demo city's CA, which no browser trusts: the reviewer's first
//! contact — the kiosk, the demo control page, the staff console, the ones they open most — would
//! each start with a certificate warning, and a tablet-sized window or `curl` would need the CA
//! first. Plain HTTP on loopback gives a first run without any of that and changes nothing of the
//! sync itself, which is mutual TLS with the hub either way. The hub has no plain mode, so its
//! device page shows the one warning unless `city/ca/ca.pem` is trusted; the demo prints where
//! that file is.
//!
//! `prepare` is the unsynced node alone, for `cargo xtask bench`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{run, workspace_root};

/// The demo bus clerk of `deploy/node.example.toml`, also in the demo hub's staff file.
pub const DEMO_USER: &str = "demo";
pub const DEMO_PASSWORD: &str = "bus-demo-2026";
/// Central IT's demo account at the demo hub (roles central-it and city-clerk).
pub const HUB_USER: &str = "it-demo";
pub const HUB_PASSWORD: &str = "hub-demo-2026";
/// The bus, as in `deploy/node.example.toml`.
const DEVICE: &str = "bus-demo-1";
const SYNC_INTERVAL_SECONDS: u32 = 30;

/// What `cargo xtask demo` was asked for.
struct Options {
    port: u16,
    hub_port: u16,
    fresh: bool,
    https: bool,
}

fn parse_options(args: &[String]) -> Result<Options> {
    let mut options = Options {
        port: 8080,
        hub_port: 8443,
        fresh: false,
        https: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => options.port = port_value(args.next(), "--port")?,
            "--hub-port" => options.hub_port = port_value(args.next(), "--hub-port")?,
            "--fresh" => options.fresh = true,
            "--https" => options.https = true,
            other => {
                bail!("unknown option `{other}` (use --port N, --hub-port N, --fresh, --https)")
            }
        }
    }
    Ok(options)
}

fn port_value(value: Option<&String>, flag: &str) -> Result<u16> {
    value
        .with_context(|| format!("{flag} needs a port number"))?
        .parse()
        .with_context(|| format!("{flag} needs a port number"))
}

pub fn run_demo(args: &[String]) -> Result<()> {
    let options = parse_options(args)?;
    let root = workspace_root();
    crate::build_binaries(&root, false)?;
    let dir = root.join("target/demo");
    if options.fresh && dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    let demo = prepare_synced(
        &root,
        &dir,
        &format!("127.0.0.1:{}", options.port),
        options.hub_port,
        options.https,
    )?;
    // Each guard stops its process when dropped: the hub goes when the node stops, fails to
    // start, or anything here fails.
    let hub = start_hub(&root, &demo)?;
    let mut node = start_node(&root, &demo)?;
    print_urls(&demo, &hub.url, &node.url, options.https);
    let status = node.wait()?;
    drop(hub);
    if !status.success() {
        bail!("busloket-node stopped: {status}");
    }
    Ok(())
}

fn print_urls(demo: &SyncedDemo, hub: &str, base: &str, https: bool) {
    let printed = demo.printed.display();
    let ca = demo.ca_certificate.display();
    println!();
    println!(
        "  busloket demo — a bus synced with the city's hub; simulated devices, made-up citizens"
    );
    println!();
    println!("  The bus (busloket-node)");
    println!("  Demo control (insert and pull cards):  {base}/demo");
    println!("  Kiosk, tablet 1:                       {base}/kiosk/tablet-1");
    println!("  Kiosk, tablet 2:                       {base}/kiosk/tablet-2");
    println!("  Staff console:                         {base}/staff");
    println!("    sign in as `{DEMO_USER}` with password `{DEMO_PASSWORD}`");
    println!("    or insert the demo card of An Claes at the desk reader and use PIN 1234");
    println!("  Every demo card has PIN 1234.");
    println!("  JSON API:                              {base}/api/v1/catalogue");
    println!();
    println!("  The city's hub (busloket-hub)");
    println!("  Devices (central IT):                  {hub}/devices");
    println!("  Indicators (visits, km avoided):       {hub}/indicators");
    println!("    sign in as `{HUB_USER}` with password `{HUB_PASSWORD}`");
    println!(
        "  The node syncs with the hub every {SYNC_INTERVAL_SECONDS} s and on 'Sync now' in the staff console."
    );
    println!();
    if https {
        println!("  Both serve HTTPS with certificates of the demo city's CA: {ca}");
        println!("    (trust it in the browser, or accept its warning once per address).");
    } else {
        println!("  The bus serves plain HTTP here (wifi_tls = false), for a first run without");
        println!("    certificate warnings; a real bus always serves HTTPS (see it with --https).");
        println!("  The hub is HTTPS only, with the demo city's CA: {ca}");
        println!("    (trust it in the browser, or accept its warning; curl --cacert {ca}).");
    }
    println!("  Printed tickets: {printed}");
    println!("  Hub log:         {}", demo.hub_log.display());
    println!("  Stop with Ctrl-C (it stops the hub too).");
}

/// Writes the demo configuration into `dir` (listening on `listen`) and makes the at-rest key:
/// an unsynced node alone (`cargo xtask bench`). `profile` picks the `busloket-provision` binary
/// (`debug` or `release`).
pub fn prepare(root: &Path, dir: &Path, listen: &str, profile: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir.join("keys"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("node.toml");
    std::fs::write(&path, node_config(root, listen)?)?;
    generate_key(root, profile, &dir.join("keys/at-rest.key"))?;
    Ok(path)
}

/// `deploy/node.example.toml` listening on `listen`.
fn node_config(root: &Path, listen: &str) -> Result<String> {
    let example = std::fs::read_to_string(root.join("deploy/node.example.toml"))
        .context("cannot read deploy/node.example.toml")?;
    Ok(example.replace(
        "listen = \"127.0.0.1:8080\"",
        &format!("listen = \"{listen}\""),
    ))
}

/// `busloket-provision key generate`, unless the key is there.
fn generate_key(root: &Path, profile: &str, key: &Path) -> Result<()> {
    if key.exists() {
        return Ok(());
    }
    run(provision(root, profile).args(["key", "generate"]).arg(key))
}

fn provision(root: &Path, profile: &str) -> Command {
    Command::new(root.join(format!("target/{profile}/busloket-provision")))
}

/// The synced demo as [`prepare_synced`] left it.
pub struct SyncedDemo {
    pub node_config: PathBuf,
    pub hub_config: PathBuf,
    /// The demo city's CA certificate (`city/ca/ca.pem`): what a browser or curl must trust.
    pub ca_certificate: PathBuf,
    pub hub_log: PathBuf,
    pub printed: PathBuf,
}

/// Prepares the demo city, its hub (on `127.0.0.1:<hub_port>`) and the enrolled bus (its node on
/// `listen`, serving HTTPS on the bus Wi-Fi only with `wifi_tls`) in `dir`, reusing whatever an
/// earlier run made (see the module documentation). Uses the debug binaries.
pub fn prepare_synced(
    root: &Path,
    dir: &Path,
    listen: &str,
    hub_port: u16,
    wifi_tls: bool,
) -> Result<SyncedDemo> {
    let profile = "debug";
    let ca = dir.join("city/ca");
    let bus = dir.join("bus");
    let hub = dir.join("hub");
    let hub_url = format!("https://127.0.0.1:{hub_port}");
    std::fs::create_dir_all(&bus).with_context(|| format!("cannot create {}", bus.display()))?;
    std::fs::create_dir_all(hub.join("keys"))
        .with_context(|| format!("cannot create {}", hub.display()))?;

    // A new CA or new bus keys make the bundle stale: it is enrolled again below.
    let mut stale_bundle = false;
    if !ca.join("ca.pem").exists() {
        provision_step(
            provision(root, profile)
                .args(["ca", "init", "--dir"])
                .arg(&ca)
                .args(["--name", "Demo City"])
                .args(["--hub-host", "127.0.0.1", "--hub-host", "localhost"]),
        )?;
        stale_bundle = true;
    }
    let keys = bus.join("keys");
    if !keys.join("device.key").exists() {
        provision_step(
            provision(root, profile)
                .args(["device", "request", "--dir"])
                .arg(&keys)
                .args(["--device", DEVICE])
                .args(["--wifi-host", "127.0.0.1", "--wifi-host", "localhost"]),
        )?;
        stale_bundle = true;
    }
    let bundle = bus.join("bundle");
    if stale_bundle || !bundle_is_for(&bundle, &ca, &hub_url) {
        if bundle.exists() {
            std::fs::remove_dir_all(&bundle)
                .with_context(|| format!("cannot remove {}", bundle.display()))?;
        }
        provision_step(
            provision(root, profile)
                .args(["device", "enroll", "--ca"])
                .arg(&ca)
                .arg("--request")
                .arg(&keys)
                .args(["--hub-url", &hub_url, "--out"])
                .arg(&bundle),
        )?;
    }

    // The hub.
    generate_key(root, profile, &hub.join("keys/at-rest.key"))?;
    let staff = hub.join("staff.toml");
    if !staff.exists() {
        let text = hub_staff_file(root, &password_hash(root, profile, HUB_PASSWORD)?)?;
        std::fs::write(&staff, text)
            .with_context(|| format!("cannot write {}", staff.display()))?;
    }
    let stops = hub.join("stops.toml");
    std::fs::copy(root.join("deploy/stops.example.toml"), &stops)
        .with_context(|| format!("cannot write {}", stops.display()))?;
    let postcodes = hub.join("postcodes.toml");
    std::fs::copy(root.join("deploy/postcodes.example.toml"), &postcodes)
        .with_context(|| format!("cannot write {}", postcodes.display()))?;
    let hub_config = hub.join("hub.toml");
    std::fs::write(
        &hub_config,
        format!(
            "# The demo hub, written by `cargo xtask demo` on every run (see deploy/hub.example.toml).\n\
             listen = \"127.0.0.1:{hub_port}\"\n\
             data_dir = \"data\"\n\
             at_rest_key = \"keys/at-rest.key\"\n\
             staff_file = \"staff.toml\"\n\
             stops_file = \"stops.toml\"\n\
             \n\
             [indicators]\n\
             town_hall = {{ name = \"Stadhuis Kortrijk\", latitude = 50.8277, longitude = 3.2647 }}\n\
             postcodes_file = \"postcodes.toml\"\n\
             \n\
             [trust]\n\
             ca_dir = \"../city/ca\"\n"
        ),
    )
    .with_context(|| format!("cannot write {}", hub_config.display()))?;

    // The bus.
    generate_key(root, profile, &keys.join("at-rest.key"))?;
    let node_config_path = bus.join("node.toml");
    // The demo bus drives its route between the demo's stops (deploy/stops.example.toml).
    let mut config = node_config(root, listen)?.replace(
        "kind = \"simulated\"\nlatitude = 50.8279\nlongitude = 3.2649\n",
        "kind = \"route\"\nbuiltin = \"demo\"\n",
    );
    if !config.contains("builtin = \"demo\"\n") {
        bail!(
            "deploy/node.example.toml's [gps] changed: teach xtask/src/demo.rs to drive the demo route"
        );
    }
    config.push_str(&format!(
        "\n# Written by `cargo xtask demo`: the demo bus enrolled at the demo city.\n\
         [sync]\n\
         bundle_dir = \"bundle\"\n\
         key_dir = \"keys\"\n\
         interval_seconds = {SYNC_INTERVAL_SECONDS}\n\
         wifi_tls = {wifi_tls}\n"
    ));
    std::fs::write(&node_config_path, config)
        .with_context(|| format!("cannot write {}", node_config_path.display()))?;

    Ok(SyncedDemo {
        node_config: node_config_path,
        hub_config,
        ca_certificate: ca.join("ca.pem"),
        hub_log: hub.join("hub.log"),
        printed: bus.join("printed"),
    })
}

/// Runs a provisioning step; its outputs were missing, so a refusal means a half-made
/// `target/demo`.
fn provision_step(command: &mut Command) -> Result<()> {
    run(command).context("preparing target/demo failed; start over with `cargo xtask demo --fresh`")
}

/// Whether `bundle` was enrolled for `hub_url` by the CA in `ca`.
fn bundle_is_for(bundle: &Path, ca: &Path, hub_url: &str) -> bool {
    let description = std::fs::read_to_string(bundle.join("bundle.toml")).unwrap_or_default();
    let same_ca = match (
        std::fs::read(bundle.join("ca.pem")),
        std::fs::read(ca.join("ca.pem")),
    ) {
        (Ok(ours), Ok(city)) => ours == city,
        _ => false,
    };
    same_ca
        && description
            .lines()
            .any(|line| line.trim() == format!("hub_url = \"{hub_url}\""))
}

/// `busloket-provision staff hash` of `password`, given on stdin.
fn password_hash(root: &Path, profile: &str, password: &str) -> Result<String> {
    let mut child = provision(root, profile)
        .args(["staff", "hash"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run busloket-provision staff hash")?;
    child
        .stdin
        .take()
        .context("no stdin")?
        .write_all(format!("{password}\n").as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!("busloket-provision staff hash failed: {}", output.status);
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

/// The demo hub's staff file: central IT's `it-demo` (hash of [`HUB_PASSWORD`]) and the bus clerk
/// `demo` with the hash and eID binding of `deploy/node.example.toml`'s `[[staff]]`.
fn hub_staff_file(root: &Path, central_it_hash: &str) -> Result<String> {
    let example = std::fs::read_to_string(root.join("deploy/node.example.toml"))
        .context("cannot read deploy/node.example.toml")?;
    let value = |key: &str| {
        example
            .lines()
            .find_map(|line| line.trim().strip_prefix(&format!("{key} = ")))
            .with_context(|| format!("deploy/node.example.toml has no `{key}` for the demo clerk"))
    };
    Ok(format!(
        "# The demo hub's staff, made by `cargo xtask demo`.\n\
         # Central IT: {HUB_USER} / {HUB_PASSWORD}.\n\
         [[staff]]\n\
         username = \"{HUB_USER}\"\n\
         display_name = \"Demo Centrale IT\"\n\
         password_hash = \"{central_it_hash}\"\n\
         roles = [\"central-it\", \"city-clerk\"]\n\
         \n\
         # The demo bus clerk of deploy/node.example.toml: {DEMO_USER} / {DEMO_PASSWORD}.\n\
         [[staff]]\n\
         username = \"{DEMO_USER}\"\n\
         display_name = \"Demo Medewerker\"\n\
         password_hash = {hash}\n\
         eid = {eid}\n\
         roles = [\"bus-clerk\"]\n",
        hash = value("password_hash")?,
        eid = value("eid")?,
    ))
}

/// A started demo process: stopped (SIGTERM, then SIGKILL after five seconds) when dropped.
struct Running {
    name: &'static str,
    child: Child,
    /// The address it said it listens on.
    url: String,
}

impl Running {
    fn wait(&mut self) -> Result<std::process::ExitStatus> {
        self.child
            .wait()
            .with_context(|| format!("cannot wait for {}", self.name))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        // std only sends SIGKILL; SIGTERM lets the process drain and close its store first.
        let asked = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|status| status.success());
        let deadline = Instant::now() + Duration::from_secs(5);
        while asked && Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A command for `binary` that the kernel ends (SIGTERM) when this process dies, however it
/// dies: util-linux's `setpriv --pdeathsig`, where there is one, so that killing `xtask` alone
/// leaves no hub or node behind. (Ctrl-C reaches them anyway: they share the terminal's process
/// group.)
fn demo_command(binary: &Path) -> Command {
    let setpriv = Path::new("/usr/bin/setpriv");
    if setpriv.exists() {
        let mut command = Command::new(setpriv);
        command.args(["--pdeathsig", "TERM", "--"]).arg(binary);
        command
    } else {
        Command::new(binary)
    }
}

/// Starts `busloket-hub`, its log in `hub/hub.log`, and waits for its "listening on" line.
fn start_hub(root: &Path, demo: &SyncedDemo) -> Result<Running> {
    let log = &demo.hub_log;
    let from = std::fs::metadata(log).map_or(0, |meta| meta.len() as usize);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    let child = demo_command(&root.join("target/debug/busloket-hub"))
        .arg("--config")
        .arg(&demo.hub_config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .context("cannot start busloket-hub")?;
    let mut hub = Running {
        name: "busloket-hub",
        child,
        url: String::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let text = text.get(from..).unwrap_or_default();
        let said = text
            .lines()
            .find_map(|line| line.strip_prefix("busloket-hub listening on "));
        if let Some(url) = said {
            hub.url = url.trim().to_owned();
            return Ok(hub);
        }
        if let Some(status) = hub.child.try_wait()? {
            bail!("busloket-hub did not start ({status}):\n{text}");
        }
        if Instant::now() > deadline {
            bail!("busloket-hub did not listen within 30 s:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `busloket-node` (its log on this terminal) and waits for its "listening on" line.
fn start_node(root: &Path, demo: &SyncedDemo) -> Result<Running> {
    let mut child = demo_command(&root.join("target/debug/busloket-node"))
        .arg("--config")
        .arg(&demo.node_config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start busloket-node")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut node = Running {
        name: "busloket-node",
        child,
        url: String::new(),
    };
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().transpose()?.unwrap_or_default();
    let Some(url) = first.strip_prefix("busloket-node listening on ") else {
        let status = node.wait()?;
        bail!("busloket-node did not start ({status}); see its log above");
    };
    node.url = url.trim().to_owned();
    // Keeps the pipe open (and passes on anything more) so that the node never writes into a
    // closed pipe.
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            println!("{line}");
        }
    });
    Ok(node)
}
