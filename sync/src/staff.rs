//! Staff accounts' link to their own eID: a clerk signs in with their card and PIN, and the
//! account names the card's holder by a binding rather than by the national number itself.
//!
//! The binding is SHA-256 over a domain tag and the 11 digits. It keeps the number out of sight
//! in configuration files and their copies; it is not a secret — national numbers are few
//! enough to try them all — so a binding is treated like the number it stands for.
//!
//! The staff file itself (accounts, password hashes, roles), as the hub keeps it and syncs it to
//! the buses, is parsed by [`parse_staff_file`] (`staff/file.rs`).

mod file;

use sha2::{Digest, Sha256};

use crate::national_number::NationalNumber;

pub use self::file::{Role, StaffEntry, StaffFileError, parse_staff_file};

const DOMAIN: &[u8] = b"busloket staff eid v1\n";

/// The binding of a staff account to the holder of this national number: 64 lowercase hex.
pub fn eid_binding(national_number: &NationalNumber) -> String {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    hasher.update(national_number.digits().as_bytes());
    hex::encode(hasher.finalize())
}

/// Whether `text` has the shape of a binding (64 lowercase hex digits).
pub fn is_eid_binding(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binding_is_stable_and_names_one_number() {
        let an: NationalNumber = "86.04.17-086.74".parse().unwrap();
        let tom: NationalNumber = "78.03.12-037.01".parse().unwrap();
        let binding = eid_binding(&an);
        assert!(is_eid_binding(&binding));
        assert_eq!(binding, eid_binding(&"86041708674".parse().unwrap()));
        assert_ne!(binding, eid_binding(&tom));
        assert!(!binding.contains("86041708674"));
        assert!(!is_eid_binding(&binding.to_uppercase()));
        assert!(!is_eid_binding(&binding[1..]));
    }
}
