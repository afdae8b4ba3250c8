//! The staff file: the city's staff accounts and their roles, kept at the hub and synced to the
//! buses (synced file `staff`). Both the hub and the node parse it with [`parse_staff_file`].
//!
//! ```toml
//! [[staff]]
//! username = "an"
//! display_name = "An Peeters"
//! password_hash = "$argon2id$…"          # busloket-provision staff hash
//! eid = "<64 hex>"                        # optional: busloket-provision staff eid
//! roles = ["bus-clerk", "city-clerk"]
//! ```
//!
//! Pure: parses text, reads no file. Every error names the entry (its position and username).

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::is_eid_binding;

/// What a staff account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Works in a bus: the queue, the desk, the citizen's requests there.
    BusClerk,
    /// The city's IT: devices, quarantine, trust.
    CentralIt,
    /// Decides requests at the city.
    CityClerk,
}

impl Role {
    pub const ALL: &'static [Role] = &[Role::BusClerk, Role::CentralIt, Role::CityClerk];

    pub fn code(&self) -> &'static str {
        match self {
            Role::BusClerk => "bus-clerk",
            Role::CentralIt => "central-it",
            Role::CityClerk => "city-clerk",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(text: &str) -> Result<Role, String> {
        Role::ALL
            .iter()
            .copied()
            .find(|role| role.code() == text)
            .ok_or_else(|| text.to_owned())
    }
}

/// One staff account, checked.
#[derive(Clone, PartialEq, Eq)]
pub struct StaffEntry {
    pub username: String,
    pub display_name: String,
    /// An argon2 PHC string.
    pub password_hash: String,
    /// The binding of the account to its holder's eID ([`super::eid_binding`]).
    pub eid: Option<String>,
    /// At least one, no duplicates, in the file's order.
    pub roles: Vec<Role>,
}

impl StaffEntry {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

impl fmt::Debug for StaffEntry {
    /// Without the hash and the binding.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaffEntry")
            .field("username", &self.username)
            .field("display_name", &self.display_name)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

/// Why a staff file was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StaffFileError {
    #[error("the staff file is not valid TOML: {0}")]
    Syntax(String),
    #[error("staff entry {position} (`{username}`): {problem}")]
    Entry {
        /// 1-based, in the file's order.
        position: usize,
        username: String,
        problem: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    staff: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    username: String,
    display_name: String,
    password_hash: String,
    #[serde(default)]
    eid: Option<String>,
    roles: Vec<String>,
}

/// Parses and checks a staff file: usernames unique and non-empty (lowercase letters, digits,
/// `-`, `.`, `_`), display names non-empty, argon2 hashes, eID bindings of the right shape, at
/// least one known role per account and none twice.
pub fn parse_staff_file(text: &str) -> Result<Vec<StaffEntry>, StaffFileError> {
    let raw: RawFile =
        toml::from_str(text).map_err(|error| StaffFileError::Syntax(error.to_string()))?;
    let mut seen = HashSet::new();
    raw.staff
        .into_iter()
        .enumerate()
        .map(|(index, entry)| {
            let refuse = |problem: String| StaffFileError::Entry {
                position: index + 1,
                username: entry.username.clone(),
                problem,
            };
            let valid_name = !entry.username.is_empty()
                && entry.username.len() <= 64
                && entry.username.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_')
                });
            if !valid_name {
                return Err(refuse(
                    "the username must be 1 to 64 lowercase letters, digits, `-`, `.` or `_`"
                        .into(),
                ));
            }
            if !seen.insert(entry.username.clone()) {
                return Err(refuse("the username appears twice in the file".into()));
            }
            if entry.display_name.trim().is_empty() {
                return Err(refuse("display_name is empty".into()));
            }
            if !entry.password_hash.starts_with("$argon2") {
                return Err(refuse(
                    "password_hash must be an argon2 hash (make one with `busloket-provision staff hash`)"
                        .into(),
                ));
            }
            if let Some(eid) = &entry.eid
                && !is_eid_binding(eid)
            {
                return Err(refuse(
                    "eid must be 64 lowercase hex digits (make it with `busloket-provision staff eid`)"
                        .into(),
                ));
            }
            if entry.roles.is_empty() {
                return Err(refuse(
                    "roles is empty; give at least one of bus-clerk, central-it, city-clerk".into(),
                ));
            }
            let mut roles = Vec::with_capacity(entry.roles.len());
            for text in &entry.roles {
                let role: Role = text.parse().map_err(|unknown| {
                    refuse(format!(
                        "unknown role `{unknown}`; the roles are bus-clerk, central-it, city-clerk"
                    ))
                })?;
                if roles.contains(&role) {
                    return Err(refuse(format!("role `{role}` is listed twice")));
                }
                roles.push(role);
            }
            Ok(StaffEntry {
                username: entry.username,
                display_name: entry.display_name,
                password_hash: entry.password_hash,
                eid: entry.eid,
                roles,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Y1rjXf0c6Tq9BOKBSsl2gxKGbVPf2yzjHTmrt0gDVmE";

    fn entry(username: &str, roles: &str) -> String {
        format!(
            "[[staff]]\nusername = \"{username}\"\ndisplay_name = \"Some One\"\npassword_hash = \"{HASH}\"\nroles = {roles}\n"
        )
    }

    #[test]
    fn a_valid_file_parses_with_its_roles() {
        let text = format!(
            "{}{}eid = \"{}\"\n",
            entry("it", "[\"central-it\"]"),
            entry("an", "[\"bus-clerk\", \"city-clerk\"]"),
            "ab".repeat(32)
        );
        let staff = parse_staff_file(&text).unwrap();
        assert_eq!(staff.len(), 2);
        assert_eq!(staff[0].roles, vec![Role::CentralIt]);
        assert!(staff[1].has_role(Role::CityClerk) && !staff[1].has_role(Role::CentralIt));
        assert_eq!(staff[1].eid.as_deref(), Some("ab".repeat(32).as_str()));
        assert!(!format!("{:?}", staff[0]).contains("argon2"));
        assert_eq!(parse_staff_file("").unwrap(), Vec::new());
    }

    #[test]
    fn every_error_names_the_entry() {
        let cases = [
            (
                format!(
                    "{}{}",
                    entry("it", "[\"central-it\"]"),
                    entry("it", "[\"bus-clerk\"]")
                ),
                "staff entry 2 (`it`): the username appears twice",
            ),
            (
                entry("an", "[\"janitor\"]"),
                "staff entry 1 (`an`): unknown role `janitor`",
            ),
            (entry("an", "[]"), "staff entry 1 (`an`): roles is empty"),
            (
                entry("an", "[\"bus-clerk\", \"bus-clerk\"]"),
                "role `bus-clerk` is listed twice",
            ),
            (
                entry("An", "[\"bus-clerk\"]"),
                "staff entry 1 (`An`): the username must be",
            ),
            (
                entry("an", "[\"bus-clerk\"]").replace(HASH, "plain"),
                "password_hash must be an argon2 hash",
            ),
            (
                format!("{}eid = \"123\"\n", entry("an", "[\"bus-clerk\"]")),
                "eid must be 64 lowercase hex digits",
            ),
        ];
        for (text, expected) in cases {
            let error = parse_staff_file(&text).unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "{error:?} should contain {expected:?}"
            );
        }
        assert!(matches!(
            parse_staff_file("[[staff]]\nusername = 3"),
            Err(StaffFileError::Syntax(_))
        ));
    }
}
