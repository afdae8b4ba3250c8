//! `busloket-provision`: the city's enrolment tool.
//!
//! - `busloket-provision key generate <path>`: a node's at-rest key (mode 0600).
//! - `busloket-provision staff hash`: reads a password from stdin, prints its argon2 hash for the
//!   `[[staff]]` table of the node's configuration.
//! - `busloket-provision staff eid`: reads the clerk's national number from stdin, prints the
//!   `eid` binding that lets them sign in with their own eID and PIN.
//! - `busloket-provision ca init --dir DIR --name NAME --hub-host HOST…`: the city's CA, the
//!   hub's TLS certificate, the document-issuing key and an empty CRL.
//! - `busloket-provision device request --dir DIR --device ID --wifi-host HOST…`: on the bus, the
//!   device's keys and certificate requests.
//! - `busloket-provision device enroll --ca DIR --request DIR_OR_FILE… --hub-url URL --out DIR
//!   [--days N]`: at the city, the device's bundle.
//! - `busloket-provision device revoke --ca DIR --device ID`: every certificate of the device on
//!   the CRL.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use busloket_provisioning::enroll::{DEFAULT_DAYS, RequestFiles};
use busloket_sync::terms::DeviceId;

const USAGE: &str = "usage:
  busloket-provision key generate <path>
  busloket-provision staff hash   (password on stdin)
  busloket-provision staff eid    (national number on stdin)
  busloket-provision ca init --dir DIR --name \"City of …\" --hub-host HOST [--hub-host HOST…]
  busloket-provision device request --dir DIR --device ID --wifi-host HOST [--wifi-host HOST…]
  busloket-provision device enroll --ca DIR --request DIR_OR_FILE [--request FILE] --hub-url URL --out DIR [--days N]
  busloket-provision device revoke --ca DIR --device ID";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["key", "generate", path] => {
            let path = PathBuf::from(path);
            busloket_provisioning::generate_at_rest_key(&path)?;
            eprintln!("at-rest key written to {} (mode 0600)", path.display());
            Ok(())
        }
        ["staff", "hash"] => {
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .context("cannot read the password from stdin")?;
            let password = password.trim_end_matches(['\n', '\r']);
            println!("{}", busloket_provisioning::hash_staff_password(password)?);
            Ok(())
        }
        ["staff", "eid"] => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the national number from stdin")?;
            let number: busloket_sync::national_number::NationalNumber = line
                .trim()
                .parse()
                .context("this is not a valid national number")?;
            println!("{}", busloket_sync::staff::eid_binding(&number));
            Ok(())
        }
        ["ca", "init", flags @ ..] => ca_init(Flags::parse(flags, &["dir", "name", "hub-host"])?),
        ["device", "request", flags @ ..] => {
            device_request(Flags::parse(flags, &["dir", "device", "wifi-host"])?)
        }
        ["device", "enroll", flags @ ..] => device_enroll(Flags::parse(
            flags,
            &["ca", "request", "hub-url", "out", "days"],
        )?),
        ["device", "revoke", flags @ ..] => device_revoke(Flags::parse(flags, &["ca", "device"])?),
        _ => bail!("{USAGE}"),
    }
}

fn ca_init(flags: Flags) -> Result<()> {
    let dir = PathBuf::from(flags.one("dir")?);
    let created = busloket_provisioning::init_ca(
        &dir,
        flags.one("name")?,
        &flags.many("hub-host")?,
        SystemTime::now(),
    )?;
    eprintln!(
        "CA \"{}\" created in {}:",
        created.ca_subject,
        dir.display()
    );
    for file in &created.files {
        eprintln!("  {}", file.display());
    }
    eprintln!("Keep ca.key and issuing.key offline; hub.key goes to the hub only.");
    Ok(())
}

fn device_request(flags: Flags) -> Result<()> {
    let dir = PathBuf::from(flags.one("dir")?);
    let created = busloket_provisioning::request_device(
        &dir,
        flags.one("device")?,
        &flags.many("wifi-host")?,
    )?;
    eprintln!(
        "keys written to {} (mode 0600; they never leave this device)\nsend these requests to the city: {} and {}",
        dir.display(),
        created.device_request.display(),
        created.wifi_request.display()
    );
    Ok(())
}

fn device_enroll(flags: Flags) -> Result<()> {
    let requests: Vec<PathBuf> = flags
        .many("request")?
        .into_iter()
        .map(PathBuf::from)
        .collect();
    let requests = RequestFiles::from_paths(&requests)?;
    let days = match flags.optional("days")? {
        Some(days) => days
            .parse()
            .with_context(|| format!("--days {days}: not a number of days"))?,
        None => DEFAULT_DAYS,
    };
    let out = PathBuf::from(flags.one("out")?);
    let enrolled = busloket_provisioning::enroll_device(
        &PathBuf::from(flags.one("ca")?),
        &requests,
        flags.one("hub-url")?,
        &out,
        days,
        SystemTime::now(),
    )?;
    eprintln!(
        "device \"{}\" enrolled until {} (certificate serials {} and {}); copy {} to the bus",
        enrolled.device,
        enrolled.expires,
        enrolled.device_serial,
        enrolled.wifi_serial,
        out.display()
    );
    Ok(())
}

fn device_revoke(flags: Flags) -> Result<()> {
    let device: DeviceId = flags
        .one("device")?
        .parse()
        .context("this is not a valid device id")?;
    let revocation = busloket_provisioning::revoke_device(
        &PathBuf::from(flags.one("ca")?),
        &device,
        SystemTime::now(),
    )?;
    if revocation.newly_listed.is_empty() {
        eprintln!(
            "device \"{device}\" was already revoked; the revocation list (number {}) lists all its certificates",
            revocation.crl_number
        );
    } else {
        eprintln!(
            "device \"{device}\" revoked: {} certificate(s) on the revocation list, now number {}",
            revocation.newly_listed.len(),
            revocation.crl_number
        );
    }
    Ok(())
}

/// `--name value` pairs, each name one of the command's; a name may repeat.
struct Flags {
    values: BTreeMap<String, Vec<String>>,
}

impl Flags {
    fn parse(args: &[&str], known: &[&str]) -> Result<Flags> {
        let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let Some(name) = arg.strip_prefix("--").filter(|name| known.contains(name)) else {
                bail!("unexpected argument \"{arg}\"\n{USAGE}");
            };
            let Some(value) = args.next() else {
                bail!("--{name} needs a value\n{USAGE}");
            };
            values
                .entry(name.to_owned())
                .or_default()
                .push((*value).to_owned());
        }
        Ok(Flags { values })
    }

    fn many(&self, name: &str) -> Result<Vec<String>> {
        match self.values.get(name) {
            Some(values) => Ok(values.clone()),
            None => bail!("--{name} is missing\n{USAGE}"),
        }
    }

    fn optional(&self, name: &str) -> Result<Option<&str>> {
        match self.values.get(name).map(Vec::as_slice) {
            None => Ok(None),
            Some([value]) => Ok(Some(value)),
            Some(_) => bail!("--{name} may be given once only"),
        }
    }

    fn one(&self, name: &str) -> Result<&str> {
        match self.optional(name)? {
            Some(value) => Ok(value),
            None => bail!("--{name} is missing\n{USAGE}"),
        }
    }
}
