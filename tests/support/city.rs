//! The city's trust for the sync tests, made with the real `busloket-provision` binary: a CA,
//! the hub's certificate, enrolled buses, revocations.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::binary;

/// A city CA in a temporary directory.
pub struct City {
    pub dir: tempfile::TempDir,
}

/// What a bus holds after enrolment: its key directory (device.key, wifi.key) and its bundle.
#[derive(Debug, Clone)]
pub struct EnrolledBus {
    pub device: String,
    pub keys: PathBuf,
    pub bundle: PathBuf,
}

impl City {
    /// `ca init` for a hub reachable as `hub_hosts` (names or addresses).
    pub fn new(hub_hosts: &[&str]) -> Result<City> {
        let dir = tempfile::tempdir()?;
        let mut args = vec!["ca", "init", "--name", "City of Testbeek"];
        for host in hub_hosts {
            args.extend(["--hub-host", host]);
        }
        let ca = dir.path().join("ca");
        provision(&args, &[("--dir", &ca)])?;
        Ok(City { dir })
    }

    /// The CA directory (ca.pem, hub.pem, hub.key, revoked.crl.pem, issued.toml…).
    pub fn ca_dir(&self) -> PathBuf {
        self.dir.path().join("ca")
    }

    /// `device request` on the bus, then `device enroll` at the city, for a hub at `hub_url`.
    pub fn enroll(&self, device: &str, wifi_hosts: &[&str], hub_url: &str) -> Result<EnrolledBus> {
        let keys = self.dir.path().join(format!("{device}-keys"));
        let bundle = self.dir.path().join(format!("{device}-bundle"));
        let mut args = vec!["device", "request", "--device", device];
        for host in wifi_hosts {
            args.extend(["--wifi-host", host]);
        }
        provision(&args, &[("--dir", &keys)])?;
        provision(
            &["device", "enroll", "--hub-url", hub_url],
            &[
                ("--ca", &self.ca_dir()),
                ("--request", &keys),
                ("--out", &bundle),
            ],
        )?;
        Ok(EnrolledBus {
            device: device.to_owned(),
            keys,
            bundle,
        })
    }

    /// `device revoke`: the CRL in the CA directory lists the device from now on.
    pub fn revoke(&self, device: &str) -> Result<()> {
        provision(
            &["device", "revoke", "--device", device],
            &[("--ca", &self.ca_dir())],
        )
    }
}

fn provision(args: &[&str], paths: &[(&str, &Path)]) -> Result<()> {
    let mut command = Command::new(binary("busloket-provision")?);
    command.args(args);
    for (flag, path) in paths {
        command.arg(flag).arg(path);
    }
    let output = command.output().context("cannot run busloket-provision")?;
    if !output.status.success() {
        bail!(
            "busloket-provision {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
