//! `eid-bench`: how long reading and verifying an eID takes through the real pcscd with the
//! virtual card, and how many APDUs it needs. Run by `cargo xtask bench` (release build), which
//! adds the figures to `target/bench/report.json`; prints them as JSON lines on stdout.

use std::time::Instant;

use anyhow::{Context, Result};
use busloket_e2e::{Pcscd, VPCD_READER, expect_card_event, insert_virtual_card, pull_virtual_card};
use busloket_hardware::eid::TrustAnchors;
use busloket_hardware::{CardEvent, CardReaders, PcscReaders, demo_citizens};
use busloket_virtual_eid::{CardSpec, DEFAULT_SEED, Profile, TestPki, personalise};
use serde_json::json;

const READS: usize = 30;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let _pcscd = Pcscd::start()?;
    let citizen = demo_citizens()
        .into_iter()
        .next()
        .context("a demo citizen")?;
    for profile in [Profile::Applet18, Profile::Applet17] {
        let pki = TestPki::generate(profile, DEFAULT_SEED)?;
        let readers = PcscReaders::start(TrustAnchors::from_der([pki.root_certificate_der()])?)?;
        let mut events = readers.subscribe();
        let card = personalise(
            &CardSpec::demo_citizen(&citizen.card.national_number).context("card")?,
            &pki,
        )?;
        let inserted = insert_virtual_card(card).await?;
        let inserted_event = CardEvent::CardInserted {
            reader: VPCD_READER.into(),
        };
        expect_card_event(&mut events, inserted_event).await?;
        let mut times = Vec::with_capacity(READS);
        for _ in 0..READS {
            let start = Instant::now();
            readers.read_identity(VPCD_READER).await?;
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        let card = pull_virtual_card(inserted).await?;
        let apdus = card.transcript().len() as f64 / READS as f64;
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let (read_name, apdu_name) = match profile {
            Profile::Applet18 => ("eid_read_ms", "eid_apdus"),
            Profile::Applet17 => ("eid_read_17_ms", "eid_apdus_17"),
        };
        let detail = format!(
            "{profile:?}: connect, identity + address + photo + signatures + RRN certificate{}, all checks, \
             disconnect with reset; through pcscd and vpcd with the virtual card; median of {READS} reads",
            if profile == Profile::Applet18 {
                " + basic key and chip challenge"
            } else {
                ""
            }
        );
        println!(
            "{}",
            json!({ "name": read_name, "value": median, "unit": "ms", "budget": 150.0, "detail": detail })
        );
        println!(
            "{}",
            json!({ "name": apdu_name, "value": apdus, "unit": "APDUs", "budget": null, "detail": format!("{profile:?}: commands the card answered per read") })
        );
    }
    Ok(())
}
