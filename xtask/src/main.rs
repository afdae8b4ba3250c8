//! `cargo xtask`: the project's own tasks, with nothing to install but cargo.
//!
//! - `deps`: installs the Debian packages the build and the tests need (idempotent, quiet when
//!   everything is there).
//! - `test`: deps, format check, clippy, then the whole test suite with nextest (the tidy checks
//!   are tests of this crate, see `tidy.rs`).
//! - `demo`: the city's hub and a node synced with it, with simulated devices and the embedded
//!   defaults; prints the URLs.
//! - `bench`: the figures of DESIGN.md §6, printed and written to `target/bench/report.json`.

mod bench;
mod demo;
mod deps;
#[cfg(test)]
mod tidy;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let rest = &args[args.len().min(1)..];
    match task {
        "deps" => deps::install(),
        "test" => test(rest),
        "demo" => demo::run_demo(rest),
        "bench" => bench::measure(rest),
        "help" | "--help" | "-h" => {
            print_help();
            Ok(())
        }
        other => {
            print_help();
            bail!("unknown task `{other}`")
        }
    }
}

fn print_help() {
    println!(
        "cargo xtask <task>\n\n\
         deps    install the Debian packages the build and tests need (as root)\n\
         test    deps, cargo fmt --check, clippy -D warnings, the whole test suite\n\
         demo    run the hub and a synced node with simulated devices, print the URLs\n\
         bench   measure the budgets of DESIGN.md §6, write target/bench/report.json"
    );
}

fn test(extra: &[String]) -> Result<()> {
    deps::install()?;
    let root = workspace_root();
    run(cargo(&root).args(["fmt", "--all", "--", "--check"]))
        .context("code is not formatted: run `cargo fmt --all`")?;
    run(cargo(&root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The end-to-end tests start the binaries; build them with the same profile first.
    build_binaries(&root, false)?;
    run(cargo(&root)
        .args(["nextest", "run", "--workspace", "--no-fail-fast"])
        .args(extra)
        .env("BUSLOKET_BIN_DIR", root.join("target/debug")))
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

/// Builds `busloket-node` and `busloket-provision` (debug, or release for the benchmark).
fn build_binaries(root: &Path, release: bool) -> Result<()> {
    let mut command = cargo(root);
    command.args([
        "build",
        "--package",
        "busloket-node",
        "--package",
        "busloket-provisioning",
        "--package",
        "busloket-hub",
        "--bins",
    ]);
    if release {
        command.arg("--release");
    }
    run(&mut command)
}

fn cargo(root: &Path) -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(root);
    command
}

fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot start {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed: {status}");
    }
    Ok(())
}
