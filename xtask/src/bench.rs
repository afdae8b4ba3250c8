//! `cargo xtask bench`: the figures of DESIGN.md §6, measured on the release build, printed as a
//! table and written to `target/bench/report.json` (`{name, value, unit, budget, detail}`).
//!
//! Figures are a report, never a pass/fail test. `--submissions N` changes the count (default
//! 10,000).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::demo::{DEMO_PASSWORD, DEMO_USER, prepare};
use crate::{cargo, run, workspace_root};

#[derive(Debug, Serialize, Deserialize)]
struct Figure {
    name: Cow<'static, str>,
    value: f64,
    unit: Cow<'static, str>,
    budget: Option<f64>,
    detail: String,
}

pub fn measure(args: &[String]) -> Result<()> {
    crate::deps::install()?;
    let mut submissions = 10_000usize;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--submissions" => {
                submissions = args
                    .next()
                    .context("--submissions needs a number")?
                    .parse()?
            }
            other => bail!("unknown option `{other}` (use --submissions N)"),
        }
    }
    let root = workspace_root();
    crate::build_binaries(&root, true)?;
    let dir = root.join("target/bench/node");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let config = prepare(&root, &dir, "127.0.0.1:0", "release")?;
    let mut figures = Vec::new();

    // Cold start on an empty store, then the submissions.
    let started = Instant::now();
    let mut node = Node::start(&root, &config)?;
    node.wait_healthy()?;
    let empty_start = started.elapsed();
    let token = node.sign_in()?;
    let mut durable = Vec::with_capacity(submissions);
    let mut round_trips = Vec::with_capacity(submissions);
    for index in 0..submissions {
        let body = submission(index);
        let start = Instant::now();
        let (status, answer) =
            node.request("POST", "/api/v1/requests", Some(&token), Some(&body))?;
        round_trips.push(start.elapsed().as_secs_f64() * 1000.0);
        if status != 201 {
            bail!("submission {index} answered {status}: {answer}");
        }
        durable.push(
            node.last_timing("durable")
                .context("no Server-Timing durable figure")?,
        );
    }
    let durable_detail = format!(
        "{submissions} sequential POST /api/v1/requests, release build, measured in the node \
         (Server-Timing): from the handler's start through validation, eligibility, the Automerge \
         record and the encrypted sled write until the flush to disk returned"
    );
    let http_detail = format!(
        "the same {submissions} submissions seen by the client on loopback: durable, then the \
         ticket printed on the simulated printer and its event flushed, then the answer"
    );
    durable.sort_by(f64::total_cmp);
    round_trips.sort_by(f64::total_cmp);
    for (name, values, p, budget, detail) in [
        ("submit_p50_ms", &durable, 0.50, None, &durable_detail),
        ("submit_p99_ms", &durable, 0.99, Some(10.0), &durable_detail),
        ("submit_http_p50_ms", &round_trips, 0.50, None, &http_detail),
        ("submit_http_p99_ms", &round_trips, 0.99, None, &http_detail),
    ] {
        figures.push(Figure {
            name: name.into(),
            value: percentile(values, p),
            unit: "ms".into(),
            budget,
            detail: detail.clone(),
        });
    }
    node.stop()?;

    // Cold start and idle memory with everything stored.
    let started = Instant::now();
    let mut node = Node::start(&root, &config)?;
    node.wait_healthy()?;
    let full_start = started.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let rss_mb = node.rss_kib()? as f64 / 1024.0;
    node.stop()?;
    figures.push(Figure {
        name: "node_cold_start_ms".into(),
        value: full_start.as_secs_f64() * 1000.0,
        unit: "ms".into(),
        budget: Some(500.0),
        detail: format!(
            "spawn → /healthz answers, with {submissions} stored requests (empty store: {:.0} ms)",
            empty_start.as_secs_f64() * 1000.0
        ),
    });
    figures.push(Figure {
        name: "node_rss_10k_mb".into(),
        value: rss_mb,
        unit: "MB".into(),
        budget: Some(64.0),
        detail: format!(
            "VmRSS of the idle node 2 s after start with {submissions} stored requests"
        ),
    });

    // The eID read through the real pcscd with the virtual card (a binary of the tests crate).
    // The sync figures: a day offline over the emulated LTE link, and 100 buses at once against
    // one hub (real binaries, mutual TLS; also a binary of the tests crate).
    run(cargo(&root).args([
        "build",
        "--release",
        "--package",
        "busloket-e2e",
        "--bin",
        "eid-bench",
        "--bin",
        "sync-bench",
        "--bin",
        "lte-delay",
    ]))?;
    for bench in ["eid-bench", "sync-bench"] {
        let output = Command::new(root.join("target/release").join(bench))
            .env("BUSLOKET_BIN_DIR", root.join("target/release"))
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("cannot run {bench}"))?;
        if !output.status.success() {
            bail!("{bench} failed ({})", output.status);
        }
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            figures.push(
                serde_json::from_str(line).with_context(|| format!("{bench} printed {line:?}"))?,
            );
        }
    }

    print_table(&figures);
    let out = root.join("target/bench/report.json");
    std::fs::create_dir_all(out.parent().expect("has a parent"))?;
    std::fs::write(&out, serde_json::to_string_pretty(&figures)?)?;
    println!("\nwritten to {}", out.display());
    Ok(())
}

/// The `p` quantile of sorted values (nearest rank).
fn percentile(values: &[f64], p: f64) -> f64 {
    let index = ((values.len() as f64 - 1.0) * p).round() as usize;
    values[index]
}

/// A synthetic citizen asking for their own household composition, with a valid number.
fn submission(index: usize) -> String {
    let base = 500_101_001u64 + (index as u64 % 400) * 2;
    let number = format!("{base:09}{:02}", 97 - base % 97);
    json!({
        "document": "household-composition",
        "requester": { "national_number": number, "name": format!("Bench Burger {index}") },
        "relation": "self",
        "authentication": "card-read",
        "channel": "bus-kiosk",
        "language": "nl",
        "delivery": { "method": "print-here" },
        "station": "tablet-1"
    })
    .to_string()
}

fn print_table(figures: &[Figure]) {
    println!(
        "\n{:<22} {:>10} {:<4} {:>8}",
        "figure", "value", "unit", "budget"
    );
    for figure in figures {
        let budget = figure
            .budget
            .map(|b| format!("{b}"))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<22} {:>10.2} {:<4} {:>8}",
            figure.name, figure.value, figure.unit, budget
        );
    }
}

/// A running release node and a minimal HTTP/1.1 client (keep-alive, no dependencies).
struct Node {
    child: Child,
    address: String,
    connection: Option<TcpStream>,
    /// The `Server-Timing` header of the last answer.
    last_server_timing: Option<String>,
}

impl Node {
    fn start(root: &Path, config: &Path) -> Result<Node> {
        let mut child = Command::new(root.join("target/release/busloket-node"))
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start busloket-node")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let address = line
            .trim()
            .strip_prefix("busloket-node listening on http://")
            .with_context(|| format!("unexpected first line from the node: {line:?}"))?
            .to_owned();
        Ok(Node {
            child,
            address,
            connection: None,
            last_server_timing: None,
        })
    }

    /// The node prints its address after binding, so the kernel queues this first connection
    /// until the server accepts it: one request measures the start, no polling.
    fn wait_healthy(&mut self) -> Result<()> {
        match self.request("GET", "/healthz", None, None)? {
            (200, _) => Ok(()),
            (status, body) => bail!("/healthz answered {status}: {body}"),
        }
    }

    fn sign_in(&mut self) -> Result<String> {
        let body = json!({ "username": DEMO_USER, "password": DEMO_PASSWORD }).to_string();
        let (status, answer) = self.request("POST", "/api/v1/session", None, Some(&body))?;
        if status != 200 {
            bail!("sign-in answered {status}: {answer}");
        }
        let value: serde_json::Value = serde_json::from_str(&answer)?;
        Ok(value["token"].as_str().context("no token")?.to_owned())
    }

    fn request(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Result<(u16, String)> {
        let result = self.try_request(method, path, token, body);
        if result.is_err() {
            self.connection = None;
        }
        result
    }

    fn try_request(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Result<(u16, String)> {
        if self.connection.is_none() {
            let stream = TcpStream::connect(&self.address)?;
            stream.set_nodelay(true)?;
            self.connection = Some(stream);
        }
        let stream = self.connection.as_mut().expect("connected above");
        let body = body.unwrap_or("");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.address,
            body.len()
        );
        if !body.is_empty() {
            head.push_str("Content-Type: application/json\r\n");
        }
        if let Some(token) = token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        stream.write_all(body.as_bytes())?;
        let (status, head, body) = read_response(stream)?;
        self.last_server_timing = header(&head, "server-timing");
        Ok((status, body))
    }

    /// A metric (milliseconds) from the last answer's `Server-Timing` header.
    fn last_timing(&self, metric: &str) -> Option<f64> {
        self.last_server_timing
            .as_deref()?
            .split(',')
            .find_map(|entry| {
                let mut parts = entry.trim().split(';');
                (parts.next()? == metric).then_some(())?;
                parts.find_map(|part| part.trim().strip_prefix("dur=")?.parse().ok())
            })
    }

    fn rss_kib(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS in /proc status")
    }

    fn stop(mut self) -> Result<()> {
        self.connection = None;
        // SIGTERM for a graceful stop.
        Command::new("kill")
            .arg(self.child.id().to_string())
            .status()?;
        self.child.wait()?;
        Ok(())
    }
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

/// Reads one answer: status, head and body (with a Content-Length, as axum sends).
fn read_response(stream: &mut TcpStream) -> Result<(u16, String, String)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            bail!("connection closed");
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .context("no status")?
        .parse()?;
    let length: usize = header(&head, "content-length")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    while buffer.len() < header_end + length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            bail!("connection closed mid-body");
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buffer[header_end..header_end + length]).to_string();
    Ok((status, head, body))
}
