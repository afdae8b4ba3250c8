//! `busloket-provision`: the city's enrolment tool.
//!
//! - `busloket-provision key generate <path>`: a node's at-rest key (mode 0600).
//! - `busloket-provision staff hash`: reads a password from stdin, prints its argon2 hash for the
//!   `[[staff]]` table of the node's configuration.
//! - `busloket-provision staff eid`: reads the clerk's national number from stdin, prints the
//!   `eid` binding that lets them sign in with their own eID and PIN.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

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
        _ => bail!(
            "usage:\n  busloket-provision key generate <path>\n  busloket-provision staff hash   (password on stdin)\n  busloket-provision staff eid    (national number on stdin)"
        ),
    }
}
