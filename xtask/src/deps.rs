//! Installs the Debian packages that the build, the demo and the tests need.
//!
//! Idempotent: asks dpkg which packages are missing and runs apt only for those, so it is quiet
//! when everything is there. Needs root for the install (CI and the development machines are).

use std::process::Command;

use anyhow::{Context, Result, bail};

/// The packages, each with why it is needed.
const PACKAGES: &[(&str, &str)] = &[
    (
        "chromium",
        "headless browser for the page tests and screenshots",
    ),
    ("chromium-driver", "WebDriver for the page tests"),
    (
        "fonts-dejavu-core",
        "a font with every accent for screenshots",
    ),
    ("procps", "ps, used by the benchmark to read memory"),
    (
        "pkg-config",
        "finds libpcsclite when building the PC/SC driver",
    ),
    ("libpcsclite-dev", "builds the PC/SC card-reader driver"),
    ("pcscd", "the PC/SC daemon the eID tests run against"),
    (
        "vsmartcard-vpcd",
        "the virtual card reader inside pcscd (tests only, never on a bus)",
    ),
    ("pcsc-tools", "pcsc_scan, to look at readers by hand"),
    (
        "iproute2",
        "ip and tc: the network namespaces, veth pair and uplink rate limit of the emulated LTE link",
    ),
    (
        "iptables",
        "the emulated LTE link's random loss and the NFQUEUE its delay daemon (lte-delay) serves",
    ),
    (
        "iputils-ping",
        "ping -U, the emulated LTE link's round trip",
    ),
    (
        "gpsd",
        "the GPS daemon the node reads positions from; the GPS tests run it through gpsfake",
    ),
    (
        "gpsd-clients",
        "gpsfake, which plays the tests' NMEA logs through its own gpsd (and gpspipe, to look by hand)",
    ),
];

pub fn install() -> Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !is_installed(name))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask deps: installing {}", missing.join(" "));
    if !is_root() {
        bail!(
            "these Debian packages are missing: {} — run `cargo xtask deps` as root, or `sudo apt-get install {}`",
            missing.join(" "),
            missing.join(" ")
        );
    }
    apt(&["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(&missing);
    apt(&args)?;
    let still_missing: Vec<&str> = missing
        .into_iter()
        .filter(|name| !is_installed(name))
        .collect();
    if !still_missing.is_empty() {
        bail!("apt-get did not install {}", still_missing.join(" "));
    }
    Ok(())
}

fn is_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

fn apt(args: &[&str]) -> Result<()> {
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("cannot run apt-get (is this a Debian machine?)")?;
    if !status.success() {
        bail!("apt-get {} failed: {status}", args.join(" "));
    }
    Ok(())
}
