//! Checking a staff member's password against the argon2 hash [`crate::hash_staff_password`]
//! made, shared by the node's and the hub's sign-in. An unknown username costs the same time as a
//! known one, so the time of a refusal does not tell which accounts exist.

use argon2::{Argon2, PasswordHash, PasswordVerifier};

/// The argon2 hash of a random password nobody knows, with the parameters
/// [`crate::hash_staff_password`] uses (a test holds them equal): checking a password against it
/// costs what checking a real account's does.
const UNKNOWN_ACCOUNT_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Y1rjXf0c6Tq9BOKBSsl2gxKGbVPf2yzjHTmrt0gDVmE";

/// Whether `password` is the one `hash` (an account's PHC string) was made from. Without an
/// account (`None`) it is checked against a hash nobody knows and never matches; a hash that does
/// not parse never matches. Blocking: argon2 takes tens of milliseconds.
pub fn verify_staff_password(hash: Option<&str>, password: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash.unwrap_or(UNKNOWN_ACCOUNT_HASH)) else {
        return false;
    };
    let valid = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    valid && hash.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash_staff_password;

    #[test]
    fn the_right_password_of_an_account_matches_and_nothing_else() {
        let hash = hash_staff_password("correct horse").unwrap();
        assert!(verify_staff_password(Some(&hash), "correct horse"));
        assert!(!verify_staff_password(Some(&hash), "wrong horse"));
        assert!(!verify_staff_password(None, "correct horse"));
        assert!(!verify_staff_password(Some("not a hash"), "correct horse"));
    }

    #[test]
    fn an_unknown_account_costs_what_a_known_one_does() {
        let unknown = PasswordHash::new(UNKNOWN_ACCOUNT_HASH).unwrap();
        let made = hash_staff_password("correct horse").unwrap();
        let known = PasswordHash::new(&made).unwrap();
        assert_eq!(
            (unknown.algorithm, unknown.version, &unknown.params),
            (known.algorithm, known.version, &known.params)
        );
    }
}
