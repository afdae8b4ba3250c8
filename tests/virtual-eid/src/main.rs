//! `busloket-virtual-eid`: inserts a virtual eID card of a demo citizen into pcscd's vpcd
//! reader and serves it until vpcd closes the connection or the process is stopped (which
//! pulls the card).
//!
//! ```text
//! busloket-virtual-eid --citizen 78031203701 [--profile 1.8] [--port 35963] [--host 127.0.0.1]
//!     [--pin 1234] [--seed N] [--forgery altered-identity|swapped-address|replaced-photo|copied-chip]
//!     [--no-authentication-certificate] [--write-root FILE.pem] [--connect-timeout-secs 10]
//!     [--pull-after-apdus N]
//! ```
//!
//! `--pull-after-apdus N` has the card leave the reader right after answering its N-th APDU, as
//! a citizen who takes the card back in the middle of a read.
//!
//! Prints one line `inserted …` on stdout once connected, so a test can wait for it. Logs go
//! to stderr (`RUST_LOG`, default `info`). A test tool: never install it on a bus.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use busloket_hardware::demo_citizens;
use busloket_virtual_eid::{
    CardSpec, DEFAULT_SEED, DEFAULT_VPCD_PORT, Forgery, Profile, TestPki, insert,
    insert_pulled_after, personalise,
};

struct Options {
    host: IpAddr,
    port: u16,
    citizen: String,
    profile: Profile,
    pin: Option<String>,
    seed: u64,
    forgery: Option<String>,
    no_authentication_certificate: bool,
    write_root: Option<String>,
    connect_timeout: Duration,
    pull_after_apdus: Option<usize>,
}

fn parse_options() -> anyhow::Result<Options> {
    let mut options = Options {
        host: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: DEFAULT_VPCD_PORT,
        citizen: String::new(),
        profile: Profile::Applet18,
        pin: None,
        seed: DEFAULT_SEED,
        forgery: None,
        no_authentication_certificate: false,
        write_root: None,
        connect_timeout: Duration::from_secs(10),
        pull_after_apdus: None,
    };
    let mut arguments = std::env::args().skip(1);
    while let Some(flag) = arguments.next() {
        if flag == "--no-authentication-certificate" {
            options.no_authentication_certificate = true;
            continue;
        }
        let value = arguments
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--host" => options.host = value.parse().context("--host")?,
            "--port" => options.port = value.parse().context("--port")?,
            "--citizen" => options.citizen = value,
            "--profile" => options.profile = value.parse()?,
            "--pin" => options.pin = Some(value),
            "--seed" => options.seed = value.parse().context("--seed")?,
            "--forgery" => options.forgery = Some(value),
            "--write-root" => options.write_root = Some(value),
            "--connect-timeout-secs" => {
                options.connect_timeout =
                    Duration::from_secs(value.parse().context("--connect-timeout-secs")?);
            }
            "--pull-after-apdus" => {
                options.pull_after_apdus = Some(value.parse().context("--pull-after-apdus")?);
            }
            other => bail!("unknown option {other} (see the doc comment of src/main.rs)"),
        }
    }
    if options.citizen.is_empty() {
        bail!("--citizen <national number of a demo citizen> is required");
    }
    Ok(options)
}

fn forgery(name: &str, spec: &CardSpec) -> anyhow::Result<Forgery> {
    Ok(match name {
        "altered-identity" => Forgery::AlteredIdentity,
        "replaced-photo" => Forgery::ReplacedPhoto,
        "swapped-address" => {
            let other = demo_citizens()
                .into_iter()
                .map(|citizen| citizen.card)
                .find(|card| card.address != spec.identity.address)
                .context("no demo citizen with another address")?;
            Forgery::SwappedAddress(Box::new(other))
        }
        "copied-chip" => Forgery::CopiedToAnotherChip {
            other_chip_number: format!("{}00", spec.identity.chip_number),
        },
        other => bail!("unknown forgery {other:?}"),
    })
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let options = parse_options()?;

    let pki = TestPki::generate(options.profile, options.seed).context("building the test PKI")?;
    if let Some(path) = &options.write_root {
        std::fs::write(path, pki.root_certificate_pem())
            .with_context(|| format!("writing the test root to {path}"))?;
    }
    let mut spec = CardSpec::demo_citizen(&options.citizen)
        .context("no demo citizen has that national number")?;
    if let Some(pin) = &options.pin {
        spec = spec.with_pin(pin);
    }
    if options.no_authentication_certificate {
        spec.authentication_certificate = false;
    }
    if let Some(name) = &options.forgery {
        let forgery = forgery(name, &spec)?;
        spec = spec.with_forgery(forgery);
    }
    let masked = spec.identity.masked_national_number();
    let card = personalise(&spec, &pki).context("personalising the card")?;

    let address = SocketAddr::new(options.host, options.port);
    let inserted = match options.pull_after_apdus {
        Some(apdus) => insert_pulled_after(card, address, options.connect_timeout, apdus),
        None => insert(card, address, options.connect_timeout),
    }
    .with_context(|| format!("inserting the card into vpcd at {address}"))?;
    println!(
        "inserted {masked} profile {} into vpcd at {address}",
        options.profile
    );
    let (_, removal) = inserted.wait_until_removed().context("serving the card")?;
    tracing::info!(?removal, "card removed");
    Ok(())
}
