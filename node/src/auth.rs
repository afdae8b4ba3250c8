//! Staff sign-in: with the clerk's own eID and PIN in the desk reader (the account names the card
//! by its binding, see `busloket_sync::staff`), or with a local account's argon2 password when no
//! reader works; and the sessions that follow.
//!
//! A session is a random token in an `HttpOnly`, `SameSite=Strict` cookie (which also keeps other
//! sites from posting the console's forms) or in an `Authorization: Bearer` header for API clients.
//! Sessions live in memory: a node restart signs everyone out, which is what a clerk expects of a
//! rebooted bus.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use rand::Rng;

use busloket_provisioning::verify_staff_password;
use busloket_sync::national_number::NationalNumber;
use busloket_sync::staff::eid_binding;
use busloket_sync::terms::DeviceId;
use chrono::{DateTime, Utc};

use crate::config::StaffAccount;
use crate::error::ApiError;
use crate::state::AppState;

pub const COOKIE: &str = "busloket_staff";
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// A signed-in clerk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    pub username: String,
    pub display_name: String,
}

impl Staff {
    /// How the clerk appears in events and in the access log.
    pub fn actor(&self) -> String {
        format!("staff:{}", self.username)
    }
}

#[derive(Debug, Default)]
pub struct StaffSessions {
    // A std mutex: only map operations under it, never an `.await`.
    sessions: Mutex<HashMap<String, (Staff, Instant)>>,
}

impl StaffSessions {
    /// Checks the password against the configured hash; a new session token on success.
    pub fn sign_in(
        &self,
        accounts: &[StaffAccount],
        username: &str,
        password: &str,
    ) -> Option<String> {
        let account = accounts.iter().find(|account| account.username == username);
        // An unknown username costs the same time as a known one.
        let hash = account.map(|account| account.password_hash.as_str());
        let valid = verify_staff_password(hash, password);
        let account = account.filter(|_| valid)?;
        Some(self.open(Staff {
            username: account.username.clone(),
            display_name: account.display_name.clone(),
        }))
    }

    /// Opens a session for the account bound to the holder of this national number, whose card
    /// has just signed a sign-in statement with its PIN.
    pub fn sign_in_with_eid(
        &self,
        accounts: &[StaffAccount],
        national_number: &NationalNumber,
    ) -> Option<(String, Staff)> {
        let binding = eid_binding(national_number);
        let account = accounts
            .iter()
            .find(|account| account.eid.as_deref() == Some(binding.as_str()))?;
        let staff = Staff {
            username: account.username.clone(),
            display_name: account.display_name.clone(),
        };
        Some((self.open(staff.clone()), staff))
    }

    fn open(&self, staff: Staff) -> String {
        let token = hex::encode(rand::thread_rng().r#gen::<[u8; 32]>());
        self.lock().insert(token.clone(), (staff, Instant::now()));
        token
    }

    pub fn sign_out(&self, token: &str) {
        self.lock().remove(token);
    }

    pub fn staff(&self, token: &str) -> Option<Staff> {
        let mut sessions = self.lock();
        let (staff, started) = sessions.get(token)?;
        if started.elapsed() > SESSION_LIFETIME {
            sessions.remove(token);
            return None;
        }
        Some(staff.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Staff, Instant)>> {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What a clerk's card signs to sign in: fresh each time, bound to this node and the moment.
pub fn sign_in_statement(device: &DeviceId, now: DateTime<Utc>) -> Vec<u8> {
    let nonce = hex::encode(rand::thread_rng().r#gen::<[u8; 32]>());
    format!(
        "busloket staff sign-in v1\ndevice: {device}\nnonce: {nonce}\nat: {}\n",
        now.timestamp_millis()
    )
    .into_bytes()
}

/// The session token from the cookie or the bearer header.
pub fn token(parts: &Parts) -> Option<String> {
    if let Some(bearer) = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
    {
        return Some(bearer.trim().to_owned());
    }
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

pub fn session_cookie(token: &str) -> String {
    format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/")
}

pub fn clear_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

/// Extracts the signed-in clerk or answers 401 (for the API; pages redirect instead).
impl FromRequestParts<AppState> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Staff, ApiError> {
        token(parts)
            .and_then(|token| state.staff_sessions.staff(&token))
            .ok_or_else(ApiError::unauthorized)
    }
}

/// The clerk if signed in, for pages that redirect to the sign-in page otherwise.
#[derive(Debug)]
pub struct MaybeStaff(pub Option<Staff>);

impl FromRequestParts<AppState> for MaybeStaff {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<MaybeStaff, Self::Rejection> {
        Ok(MaybeStaff(
            token(parts).and_then(|token| state.staff_sessions.staff(&token)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(password: &str) -> StaffAccount {
        StaffAccount {
            username: "an".into(),
            display_name: "An Clerk".into(),
            password_hash: busloket_provisioning::hash_staff_password(password).unwrap(),
            eid: Some(eid_binding(&"86.04.17-086.74".parse().unwrap())),
        }
    }

    #[test]
    fn sign_in_checks_the_password() {
        let sessions = StaffSessions::default();
        let accounts = [account("correct horse")];
        assert_eq!(sessions.sign_in(&accounts, "an", "wrong"), None);
        assert_eq!(sessions.sign_in(&accounts, "nobody", "correct horse"), None);
        let token = sessions.sign_in(&accounts, "an", "correct horse").unwrap();
        assert_eq!(sessions.staff(&token).unwrap().username, "an");
        sessions.sign_out(&token);
        assert_eq!(sessions.staff(&token), None);
    }

    #[test]
    fn eid_sign_in_finds_the_bound_account_only() {
        let sessions = StaffSessions::default();
        let accounts = [account("correct horse")];
        let other: NationalNumber = "78.03.12-037.01".parse().unwrap();
        assert!(sessions.sign_in_with_eid(&accounts, &other).is_none());
        let (token, staff) = sessions
            .sign_in_with_eid(&accounts, &"86041708674".parse().unwrap())
            .unwrap();
        assert_eq!(staff.username, "an");
        assert_eq!(sessions.staff(&token), Some(staff));
    }

    #[test]
    fn sign_in_statements_are_fresh() {
        let device: DeviceId = "bus-1".parse().unwrap();
        let now = Utc::now();
        let first = sign_in_statement(&device, now);
        assert_ne!(first, sign_in_statement(&device, now));
        assert!(
            String::from_utf8(first)
                .unwrap()
                .contains("device: bus-1\n")
        );
    }
}
