//! The `busloket-provision` command line: what it prints for good input and how it refuses bad
//! input.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn provision(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_busloket-provision"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn staff_eid_prints_the_binding_of_a_valid_number_only() {
    let good = provision(&["staff", "eid"], "86.04.17-086.74\n");
    assert!(good.status.success());
    let binding = String::from_utf8(good.stdout).unwrap();
    assert_eq!(
        binding.trim(),
        busloket_sync::staff::eid_binding(&"86041708674".parse().unwrap())
    );
    assert!(!binding.contains("86041708674"));

    let slip = provision(&["staff", "eid"], "86.04.17-086.75\n");
    assert!(!slip.status.success());
    assert!(slip.stdout.is_empty());
    let message = String::from_utf8(slip.stderr).unwrap();
    assert!(message.contains("not a valid national number"), "{message}");
}

#[test]
fn staff_hash_prints_an_argon2_hash() {
    let output = provision(&["staff", "hash"], "bus-demo-2026\n");
    assert!(output.status.success());
    assert!(
        String::from_utf8(output.stdout)
            .unwrap()
            .starts_with("$argon2id$")
    );
}

#[test]
fn unknown_commands_print_the_usage() {
    let output = provision(&["staff", "nothing"], "");
    assert!(!output.status.success());
    assert!(String::from_utf8(output.stderr).unwrap().contains("usage:"));
}

#[test]
fn the_city_enrols_a_bus_end_to_end() {
    let root = tempfile::tempdir().unwrap();
    let path = |name: &str| root.path().join(name).to_str().unwrap().to_owned();
    let (ca, keys, bundle) = (path("ca"), path("keys"), path("bundle"));

    let init = provision(
        &[
            "ca",
            "init",
            "--dir",
            &ca,
            "--name",
            "City of Kortrijk",
            "--hub-host",
            "hub.kortrijk.be",
            "--hub-host",
            "10.20.0.1",
        ],
        "",
    );
    assert!(init.status.success(), "{init:?}");
    let request = provision(
        &[
            "device",
            "request",
            "--dir",
            &keys,
            "--device",
            "bus-1",
            "--wifi-host",
            "bus.local",
        ],
        "",
    );
    assert!(request.status.success(), "{request:?}");
    let enroll = provision(
        &[
            "device",
            "enroll",
            "--ca",
            &ca,
            "--request",
            &keys,
            "--hub-url",
            "https://hub.kortrijk.be:8443",
            "--out",
            &bundle,
        ],
        "",
    );
    assert!(enroll.status.success(), "{enroll:?}");
    let said = String::from_utf8(enroll.stderr).unwrap();
    assert!(said.contains("device \"bus-1\" enrolled until"), "{said}");

    let loaded = busloket_provisioning::load_bundle(
        std::path::Path::new(&bundle),
        std::path::Path::new(&keys),
        std::time::SystemTime::now(),
    )
    .unwrap();
    assert_eq!(loaded.device_id().as_str(), "bus-1");

    // Running a step again overwrites nothing and says why.
    let again = provision(
        &[
            "ca",
            "init",
            "--dir",
            &ca,
            "--name",
            "City of Kortrijk",
            "--hub-host",
            "hub",
        ],
        "",
    );
    assert!(!again.status.success());
    let message = String::from_utf8(again.stderr).unwrap();
    assert!(message.contains("ca.key: already exists"), "{message}");

    let revoke = provision(&["device", "revoke", "--ca", &ca, "--device", "bus-1"], "");
    assert!(revoke.status.success(), "{revoke:?}");
    let said = String::from_utf8(revoke.stderr).unwrap();
    assert!(said.contains("now number 2"), "{said}");
    let crl = busloket_provisioning::load_crl(
        &root.path().join("ca/revoked.crl.pem"),
        loaded.ca_certificate(),
    )
    .unwrap();
    assert!(loaded.check_not_revoked(&crl).is_err());

    let missing = provision(&["device", "request", "--dir", &keys], "");
    assert!(!missing.status.success());
    let message = String::from_utf8(missing.stderr).unwrap();
    assert!(message.contains("--device is missing"), "{message}");
}
