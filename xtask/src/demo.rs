//! `cargo xtask demo`: a node with simulated devices and the made-up demo citizens.
//!
//! Builds the binaries, prepares `target/demo/` (configuration from `deploy/node.example.toml`, an
//! at-rest key), starts the node and prints the URLs. Ctrl-C stops it. `--port N` picks the port
//! (default 8080); `--fresh` starts from an empty store.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::{run, workspace_root};

pub const DEMO_USER: &str = "demo";
pub const DEMO_PASSWORD: &str = "bus-demo-2026";

pub fn run_demo(args: &[String]) -> Result<()> {
    let mut port = 8080u16;
    let mut fresh = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                port = args
                    .next()
                    .context("--port needs a number")?
                    .parse()
                    .context("--port needs a number")?
            }
            "--fresh" => fresh = true,
            other => bail!("unknown option `{other}` (use --port N, --fresh)"),
        }
    }
    let root = workspace_root();
    crate::build_binaries(&root, false)?;
    let dir = root.join("target/demo");
    if fresh && dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    let config = prepare(&root, &dir, &format!("127.0.0.1:{port}"), "debug")?;
    let mut node = Command::new(root.join("target/debug/busloket-node"))
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start busloket-node")?;
    let stdout = node.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().transpose()?.unwrap_or_default();
    let Some(base) = first.strip_prefix("busloket-node listening on ") else {
        let status = node.wait()?;
        bail!("busloket-node did not start ({status}); see its log above");
    };
    println!();
    println!("  busloket demo — simulated devices, made-up citizens (see the DEMO banner)");
    println!();
    println!("  Demo control (insert and pull cards):  {base}/demo");
    println!("  Kiosk, tablet 1:                       {base}/kiosk/tablet-1");
    println!("  Kiosk, tablet 2:                       {base}/kiosk/tablet-2");
    println!("  Staff console:                         {base}/staff");
    println!("    sign in as `{DEMO_USER}` with password `{DEMO_PASSWORD}`");
    println!("    or insert the demo card of An Claes at the desk reader and use PIN 1234");
    println!("  Every demo card has PIN 1234.");
    println!("  JSON API:                              {base}/api/v1/catalogue");
    println!();
    println!("  Printed tickets: {}", dir.join("printed").display());
    println!("  Stop with Ctrl-C.");
    let status = node.wait()?;
    if !status.success() {
        bail!("busloket-node stopped: {status}");
    }
    Ok(())
}

/// Writes the demo configuration into `dir` (listening on `listen`) and makes the at-rest key.
/// `profile` picks the `busloket-provision` binary (`debug` or `release`).
pub fn prepare(root: &Path, dir: &Path, listen: &str, profile: &str) -> Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir.join("keys"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let example = std::fs::read_to_string(root.join("deploy/node.example.toml"))?;
    let config = example.replace(
        "listen = \"127.0.0.1:8080\"",
        &format!("listen = \"{listen}\""),
    );
    let path = dir.join("node.toml");
    std::fs::write(&path, config)?;
    let key = dir.join("keys/at-rest.key");
    if !key.exists() {
        run(
            Command::new(root.join(format!("target/{profile}/busloket-provision")))
                .args(["key", "generate"])
                .arg(&key),
        )?;
    }
    Ok(path)
}
