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
    assert!(String::from_utf8(output.stdout).unwrap().starts_with("$argon2id$"));
}

#[test]
fn unknown_commands_print_the_usage() {
    let output = provision(&["staff", "nothing"], "");
    assert!(!output.status.success());
    assert!(String::from_utf8(output.stderr).unwrap().contains("usage:"));
}
