//! An emulated LTE link between a bus and the hub: two network namespaces, `<name>-<pid>-<n>-bus`
//! and `…-hub`, joined by a veth pair (`lte-bus` ↔ `lte-hub`, one /30), shaped like the bus's
//! mobile uplink — 30 ms each way (a 60 ms round trip), 1 % of the packets lost each way, and
//! 5 Mbit/s from the bus to the hub.
//!
//! This kernel has no netem (nor fq or prio), so the link is built from what it has, all of it in
//! the kernel except the delay:
//!
//! - **rate**: a TBF qdisc on the bus end (`tc … tbf rate 5mbit`), so the uplink queues and
//!   serialises as a radio does; the downlink is not limited.
//! - **loss**: iptables' `statistic` match (random, in the kernel) dropping on *arrival* at each
//!   end (`raw PREROUTING`), 1 % each way. A drop on the sending side's `OUTPUT` would be told to
//!   the sending socket (`EPERM`), which no radio does; a drop on arrival is silent, as netem's is.
//! - **delay**: an NFQUEUE on arrival at each end (`mangle PREROUTING`, after the loss), served by
//!   the `lte-delay` binary of this crate (`tests/lte/delay.rs`), one per namespace, which holds
//!   every packet 30 ms before it lets it through. Holding packets on the *receiving* side
//!   matters: a packet held on the sender's egress still counts against its socket (TCP small
//!   queues), which throttled a TCP upload to 1.5 Mbit/s; held on arrival, the sender has let it
//!   go, as with a real radio. So a packet from the bus goes: TBF → veth → loss → 30 ms → hub.
//! - **packets, not bursts**: `gso_max_segs 1` on both ends, so every packet is its own skb and
//!   the loss hits single packets, not 64 KB segmentation bursts.
//!
//! The link carries IPv4; ARP and IPv6 are not shaped. `ping` reports the kernel's receive
//! timestamp, taken before the arrival delay: `ping -U` shows the real round trip.
//!
//! Everything goes with the [`LteLink`] (its `Drop`, or [`LteLink::close`]): the daemons get
//! SIGTERM, the namespaces are deleted; a daemon whose test process died sees its stdin close and
//! stops by itself. Needs root; a missing tool fails the test with the Debian package to install.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The bus end of the veth pair (in the bus namespace).
pub const BUS_INTERFACE: &str = "lte-bus";
/// The hub end of the veth pair (in the hub namespace).
pub const HUB_INTERFACE: &str = "lte-hub";

/// How the link is shaped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shaping {
    /// Added to each direction on arrival: the round trip grows by twice this.
    pub one_way_delay: Duration,
    /// Packets lost in each direction, in percent.
    pub loss_percent: f64,
    /// The bus's uplink (bus → hub) in kbit/s; the downlink is not limited.
    pub uplink_kbit: Option<u32>,
}

impl Shaping {
    /// The link: 60 ms round trip, 1 % loss, 5 Mbit/s up.
    pub const LTE: Shaping = Shaping {
        one_way_delay: Duration::from_millis(30),
        loss_percent: 1.0,
        uplink_kbit: Some(5_000),
    };
}

/// Two network namespaces joined by a veth pair, shaped or not. See the module's documentation.
pub struct LteLink {
    ip: PathBuf,
    bus_ns: String,
    hub_ns: String,
    bus_addr: Ipv4Addr,
    hub_addr: Ipv4Addr,
    shaping: Option<Shaping>,
    /// The namespaces created so far, for the teardown (also of a half-built link).
    namespaces: Vec<String>,
    delays: Vec<DelayDaemon>,
}

/// Makes every link of this process distinct: namespaces are named after the pid and this.
static LINKS: AtomicU32 = AtomicU32::new(0);

impl LteLink {
    /// The LTE link ([`Shaping::LTE`]). `name` (lowercase letters, digits, `-`) names the
    /// namespaces, made unique with the pid and a counter so tests can run in parallel.
    pub fn up(name: &str) -> Result<LteLink> {
        LteLink::with_shaping(name, Some(Shaping::LTE))
    }

    /// Two namespaces and a plain veth pair, for tests that need separation only.
    pub fn plain(name: &str) -> Result<LteLink> {
        LteLink::with_shaping(name, None)
    }

    /// A link shaped as `shaping` says (`None`: plain), for tests that need another link.
    pub fn with_shaping(name: &str, shaping: Option<Shaping>) -> Result<LteLink> {
        let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if name.is_empty() || name.len() > 24 || !name.chars().all(valid) {
            bail!("LteLink name {name:?}: 1 to 24 lowercase letters, digits or '-'");
        }
        let ip = tool("ip", "iproute2")?;
        let pid = std::process::id();
        let number = LINKS.fetch_add(1, Ordering::Relaxed);
        // Each link has its own namespaces, so addresses could repeat; distinct ones make logs
        // and packet captures of parallel tests easier to tell apart.
        let block = (pid.wrapping_mul(64).wrapping_add(number) % (1 << 22)) * 4;
        let mut link = LteLink {
            ip,
            bus_ns: format!("{name}-{pid}-{number}-bus"),
            hub_ns: format!("{name}-{pid}-{number}-hub"),
            bus_addr: Ipv4Addr::from(0x0a00_0000 | (block + 1)),
            hub_addr: Ipv4Addr::from(0x0a00_0000 | (block + 2)),
            shaping,
            namespaces: Vec::new(),
            delays: Vec::new(),
        };
        remove_abandoned_namespaces(&link.ip);
        // From here on an error drops `link`, which removes what was made.
        for namespace in [link.bus_ns.clone(), link.hub_ns.clone()] {
            // Only a process with our pid made this name: one that died before cleaning up.
            if netns_path(&namespace).exists() {
                link.ip(&["netns", "del", &namespace])?;
            }
            link.ip(&["netns", "add", &namespace])?;
            link.namespaces.push(namespace.clone());
            link.ip(&["-n", &namespace, "link", "set", "lo", "up"])?;
        }
        let (bus_ns, hub_ns) = (link.bus_ns.clone(), link.hub_ns.clone());
        link.ip(&[
            "link",
            "add",
            BUS_INTERFACE,
            "netns",
            &bus_ns,
            "type",
            "veth",
            "peer",
            "name",
            HUB_INTERFACE,
            "netns",
            &hub_ns,
        ])?;
        for (namespace, interface, address) in [
            (&bus_ns, BUS_INTERFACE, link.bus_addr),
            (&hub_ns, HUB_INTERFACE, link.hub_addr),
        ] {
            let address = format!("{address}/30");
            link.ip(&["-n", namespace, "addr", "add", &address, "dev", interface])?;
        }
        // Shaped before it comes up, so that no packet ever crosses unshaped.
        if let Some(shaping) = shaping {
            link.shape(shaping)?;
        }
        link.ip(&["-n", &bus_ns, "link", "set", BUS_INTERFACE, "up"])?;
        link.ip(&["-n", &hub_ns, "link", "set", HUB_INTERFACE, "up"])?;
        link.wait_until(LinkState::Up)?;
        Ok(link)
    }

    fn shape(&mut self, shaping: Shaping) -> Result<()> {
        let iptables = tool("iptables", "iptables")?;
        let tc = tool("tc", "iproute2")?;
        let delay_binary = if shaping.one_way_delay.is_zero() {
            None
        } else {
            Some(delay_binary()?)
        };
        let ends = [
            (self.bus_ns.clone(), BUS_INTERFACE),
            (self.hub_ns.clone(), HUB_INTERFACE),
        ];
        for (namespace, interface) in ends {
            self.ip(&[
                "-n",
                &namespace,
                "link",
                "set",
                "dev",
                interface,
                "gso_max_segs",
                "1",
            ])?;
            let ip = self.ip.clone();
            let iptables_in_ns = |args: &[&str]| -> Result<()> {
                let mut command = Command::new(&ip);
                command
                    .args(["netns", "exec", &namespace])
                    .arg(&iptables)
                    .arg("-w")
                    .args(args);
                run(command)
            };
            if shaping.loss_percent > 0.0 {
                let probability = format!("{:.6}", shaping.loss_percent / 100.0);
                iptables_in_ns(&[
                    "-t",
                    "raw",
                    "-A",
                    "PREROUTING",
                    "-i",
                    interface,
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                    &probability,
                    "-j",
                    "DROP",
                ])?;
            }
            if let Some(delay_binary) = &delay_binary {
                // The daemon first: a queue with no one bound to it drops every packet.
                let daemon =
                    DelayDaemon::start(&self.ip, delay_binary, &namespace, shaping.one_way_delay)?;
                self.delays.push(daemon);
                iptables_in_ns(&[
                    "-t",
                    "mangle",
                    "-A",
                    "PREROUTING",
                    "-i",
                    interface,
                    "-j",
                    "NFQUEUE",
                    "--queue-num",
                    "0",
                ])?;
            }
        }
        if let Some(kbit) = shaping.uplink_kbit {
            // A burst of a few packets, and a queue of about 200 ms, as a modem's is deep.
            let mut command = Command::new(tc);
            command
                .args(["-n", &self.bus_ns, "qdisc", "add", "dev", BUS_INTERFACE])
                .args(["root", "tbf", "rate", &format!("{kbit}kbit")])
                .args(["burst", "16kb", "latency", "200ms"]);
            run(command)?;
        }
        Ok(())
    }

    pub fn bus_addr(&self) -> IpAddr {
        IpAddr::V4(self.bus_addr)
    }

    pub fn hub_addr(&self) -> IpAddr {
        IpAddr::V4(self.hub_addr)
    }

    /// The bus namespace's name (as `ip netns` knows it).
    pub fn bus_ns(&self) -> &str {
        &self.bus_ns
    }

    /// The hub namespace's name (as `ip netns` knows it).
    pub fn hub_ns(&self) -> &str {
        &self.hub_ns
    }

    pub fn shaping(&self) -> Option<Shaping> {
        self.shaping
    }

    /// `program` run inside the bus namespace (`ip netns exec <bus> program`); add its arguments.
    pub fn command_in_bus(&self, program: impl AsRef<OsStr>) -> Command {
        self.command_in(&self.bus_ns, program)
    }

    /// `program` run inside the hub namespace (`ip netns exec <hub> program`).
    pub fn command_in_hub(&self, program: impl AsRef<OsStr>) -> Command {
        self.command_in(&self.hub_ns, program)
    }

    fn command_in(&self, namespace: &str, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(&self.ip);
        command.args(["netns", "exec", namespace]).arg(program);
        command
    }

    /// Runs `make` on a thread inside the bus namespace and returns what it made: sockets bound
    /// or connected there stay in the namespace wherever they are used afterwards (also through
    /// `tokio::net::TcpStream::from_std`). Blocks the calling thread until `make` returns.
    pub fn in_bus<T: Send>(&self, make: impl FnOnce() -> T + Send) -> Result<T> {
        in_namespace(&self.bus_ns, make)
    }

    /// Like [`LteLink::in_bus`], inside the hub namespace.
    pub fn in_hub<T: Send>(&self, make: impl FnOnce() -> T + Send) -> Result<T> {
        in_namespace(&self.hub_ns, make)
    }

    /// Cuts the link, as a bus driving out of coverage: `ip link set lte-bus down` in the bus
    /// namespace; returns once the bus end is down and the hub end has lost its carrier.
    pub fn cut(&self) -> Result<()> {
        self.ip(&["-n", &self.bus_ns, "link", "set", BUS_INTERFACE, "down"])?;
        self.wait_until(LinkState::Cut)
    }

    /// Brings the link back after [`LteLink::cut`]; returns once both ends are up again (the
    /// shaping stays as it was).
    pub fn restore(&self) -> Result<()> {
        self.ip(&["-n", &self.bus_ns, "link", "set", BUS_INTERFACE, "up"])?;
        self.wait_until(LinkState::Up)
    }

    /// Stops the delay daemons and deletes the namespaces, saying what went wrong (a daemon that
    /// did not stop on SIGTERM or failed, a namespace that could not be deleted). `Drop` does the
    /// same and only logs.
    pub fn close(mut self) -> Result<()> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<()> {
        let mut problems = Vec::new();
        for daemon in self.delays.drain(..) {
            if let Err(err) = daemon.stop() {
                problems.push(format!("{err:#}"));
            }
        }
        for namespace in std::mem::take(&mut self.namespaces) {
            if let Err(err) = self.ip(&["netns", "del", &namespace]) {
                problems.push(format!("{err:#}"));
            }
        }
        if !problems.is_empty() {
            bail!("tearing down the LTE link: {}", problems.join("; "));
        }
        Ok(())
    }

    fn ip(&self, args: &[&str]) -> Result<()> {
        let mut command = Command::new(&self.ip);
        command.args(args);
        run(command)
    }

    /// Waits (at most 5 s) until both ends are in `wanted`, as `ip -j link` reports them.
    fn wait_until(&self, wanted: LinkState) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let bus = self.interface_flags(&self.bus_ns, BUS_INTERFACE)?;
            let hub = self.interface_flags(&self.hub_ns, HUB_INTERFACE)?;
            let has = |flags: &[String], flag: &str| flags.iter().any(|f| f == flag);
            let reached = match wanted {
                LinkState::Up => has(&bus, "LOWER_UP") && has(&hub, "LOWER_UP"),
                LinkState::Cut => !has(&bus, "UP") && has(&hub, "NO-CARRIER"),
            };
            if reached {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the LTE link did not become {wanted:?} within 5 s: {BUS_INTERFACE} {bus:?}, \
                     {HUB_INTERFACE} {hub:?}"
                );
            }
            // The kernel's link-state changes come through its link watch, shortly after `ip
            // link set` returns; there is no event to await here short of `ip monitor`.
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn interface_flags(&self, namespace: &str, interface: &str) -> Result<Vec<String>> {
        let output = Command::new(&self.ip)
            .args(["-n", namespace, "-j", "link", "show", "dev", interface])
            .output()
            .context("cannot run ip")?;
        if !output.status.success() {
            bail!(
                "ip -n {namespace} link show dev {interface}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let shown: serde_json::Value =
            serde_json::from_slice(&output.stdout).context("ip -j link show did not print JSON")?;
        let flags = shown[0]["flags"]
            .as_array()
            .context("ip -j link show: no flags")?;
        Ok(flags
            .iter()
            .filter_map(|flag| flag.as_str().map(str::to_owned))
            .collect())
    }
}

impl Drop for LteLink {
    fn drop(&mut self) {
        if let Err(err) = self.teardown() {
            eprintln!("{err:#}");
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum LinkState {
    Up,
    Cut,
}

/// One `lte-delay` process serving the NFQUEUE of one namespace.
struct DelayDaemon {
    namespace: String,
    child: Child,
    /// Kept open: the daemon stops by itself when it closes, that is when this process dies.
    _stdin: ChildStdin,
    /// Copies the daemon's stderr to ours, each line marked with the namespace.
    stderr: JoinHandle<()>,
}

impl DelayDaemon {
    fn start(ip: &Path, binary: &Path, namespace: &str, delay: Duration) -> Result<DelayDaemon> {
        // `ip netns exec` execs the program: the child's pid is the daemon's.
        let mut child = Command::new(ip)
            .args(["netns", "exec", namespace])
            .arg(binary)
            .args(["--queue", "0", "--delay-ms", &delay.as_millis().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stderr = child.stderr.take().context("no stderr")?;
        let (lines_before_ready, ready) = mpsc::channel();
        let prefix = namespace.to_owned();
        let stderr = std::thread::spawn(move || {
            let mut lines_before_ready = Some(lines_before_ready);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[{prefix}] {line}");
                if let Some(sender) = &lines_before_ready {
                    let is_ready = line.starts_with("lte-delay: ready");
                    let _ = sender.send(line);
                    if is_ready {
                        lines_before_ready = None;
                    }
                }
            }
        });
        let mut daemon = DelayDaemon {
            namespace: namespace.to_owned(),
            child,
            _stdin: stdin,
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut said = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match ready.recv_timeout(left) {
                Ok(line) if line.starts_with("lte-delay: ready") => return Ok(daemon),
                Ok(line) => said.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = daemon.child.wait()?;
                    bail!(
                        "lte-delay in {namespace} stopped before it was ready ({status}): {}",
                        said.join(" / ")
                    );
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = daemon.child.kill();
                    bail!(
                        "lte-delay in {namespace} was not ready within 10 s: {}",
                        said.join(" / ")
                    );
                }
            }
        }
    }

    /// SIGTERM, then at most 3 s for it to release the packets it holds and exit.
    fn stop(mut self) -> Result<()> {
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let _ = self.stderr.join();
                bail!(
                    "lte-delay in {} did not stop within 3 s of SIGTERM",
                    self.namespace
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let _ = self.stderr.join();
        if !status.success() {
            bail!("lte-delay in {} failed: {status}", self.namespace);
        }
        Ok(())
    }
}

/// Deletes the namespaces of links whose test process died without its `Drop` (SIGKILL, a
/// timeout): names of this module's shape, `<name>-<pid>-<n>-bus|hub`, whose pid no longer runs.
/// Their delay daemons have already stopped, when their stdin closed.
fn remove_abandoned_namespaces(ip: &Path) {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name
            .strip_suffix("-bus")
            .or_else(|| name.strip_suffix("-hub"))
        else {
            continue;
        };
        let mut parts = rest.rsplitn(3, '-');
        let (Some(number), Some(pid), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
        if digits(number) && digits(pid) && !Path::new("/proc").join(pid).exists() {
            let _ = Command::new(ip)
                .args(["netns", "del", &name])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn netns_path(namespace: &str) -> PathBuf {
    Path::new("/run/netns").join(namespace)
}

fn in_namespace<T: Send>(namespace: &str, make: impl FnOnce() -> T + Send) -> Result<T> {
    let handle = File::open(netns_path(namespace))
        .with_context(|| format!("no network namespace {namespace}"))?;
    std::thread::scope(|scope| {
        let thread = scope.spawn(|| -> Result<T> {
            // setns(2) moves this thread only; the process stays where it is.
            rustix::thread::move_into_link_name_space(
                handle.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .with_context(|| format!("cannot enter the network namespace {namespace}"))?;
            Ok(make())
        });
        match thread.join() {
            Ok(made) => made,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// The path of a system tool, or an error naming the Debian package that has it.
fn tool(name: &str, package: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut directories: Vec<PathBuf> = std::env::split_paths(&path).collect();
    // Root's tools live in sbin, which a test's PATH does not always have.
    directories.extend(["/usr/sbin", "/sbin"].map(PathBuf::from));
    directories
        .into_iter()
        .map(|directory| directory.join(name))
        .find(|candidate| candidate.is_file())
        .with_context(|| {
            format!("`{name}` is missing: run `cargo xtask deps` (apt-get install {package})")
        })
}

/// The `lte-delay` binary: Cargo builds it, for this crate's integration tests, beside them.
fn delay_binary() -> Result<PathBuf> {
    let mut candidates = Vec::new();
    // target/<profile>/deps/e2e-<hash> → target/<profile>/lte-delay
    if let Ok(test_binary) = std::env::current_exe()
        && let Some(profile_dir) = test_binary.parent().and_then(Path::parent)
    {
        candidates.push(profile_dir.join("lte-delay"));
    }
    if let Some(dir) = std::env::var_os("BUSLOKET_BIN_DIR") {
        candidates.push(PathBuf::from(dir).join("lte-delay"));
    }
    candidates
        .into_iter()
        .find(|candidate| candidate.is_file())
        .context("the lte-delay binary is missing: run `cargo build -p busloket-e2e --bins`")
}

/// Runs a setup command; its stderr becomes the error, with a hint when it is about rights.
fn run(mut command: Command) -> Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stderr);
        let hint = if said.contains("Operation not permitted") || said.contains("Permission denied")
        {
            " (the LTE link needs root)"
        } else {
            ""
        };
        bail!(
            "{command:?} failed ({}){hint}: {}",
            output.status,
            said.trim()
        );
    }
    Ok(())
}
