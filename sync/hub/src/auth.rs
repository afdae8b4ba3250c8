//! Sign-in to the hub's pages and its small JSON API: central IT accounts of the staff file,
//! argon2 passwords, and sessions that follow.
//!
//! A session is a random token in an `HttpOnly`, `SameSite=Strict`, `Secure` cookie (which also
//! keeps other sites from posting the forms) or in an `Authorization: Bearer` header for API
//! clients. Sessions live in memory: a hub restart signs everyone out.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use busloket_provisioning::verify_staff_password;
use busloket_sync::staff::{Role, StaffEntry};
use rand::Rng;

pub const COOKIE: &str = "busloket_hub";
const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// A signed-in member of staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    pub username: String,
    pub display_name: String,
    pub roles: Vec<Role>,
}

impl Staff {
    /// How they appear in the events they record.
    pub fn actor(&self) -> String {
        format!("staff:{}", self.username)
    }
}

#[derive(Debug, Default)]
pub struct Sessions {
    // A std mutex: only map operations under it, never an `.await`.
    sessions: Mutex<HashMap<String, (Staff, Instant)>>,
}

impl Sessions {
    /// Checks the password of an account holding `role`; a new session token on success.
    /// Blocking (argon2 takes tens of milliseconds): call it from `spawn_blocking`.
    pub fn sign_in(
        &self,
        accounts: &[StaffEntry],
        username: &str,
        password: &str,
        role: Role,
    ) -> Option<String> {
        let account = accounts.iter().find(|account| account.username == username);
        // An unknown username costs the same time as a known one.
        let hash = account.map(|account| account.password_hash.as_str());
        let valid = verify_staff_password(hash, password);
        let account = account.filter(|account| valid && account.has_role(role))?;
        let token = hex::encode(rand::thread_rng().r#gen::<[u8; 32]>());
        let staff = Staff {
            username: account.username.clone(),
            display_name: account.display_name.clone(),
            roles: account.roles.clone(),
        };
        self.lock().insert(token.clone(), (staff, Instant::now()));
        Some(token)
    }

    pub fn sign_out(&self, token: &str) {
        self.lock().remove(token);
    }

    /// The session's member of staff, if it is open and their account still exists with the
    /// same roles (an account removed from the staff file ends its sessions).
    pub fn staff(&self, token: &str, accounts: &[StaffEntry]) -> Option<Staff> {
        let mut sessions = self.lock();
        let (staff, started) = sessions.get(token)?;
        let current = accounts
            .iter()
            .find(|account| account.username == staff.username);
        if started.elapsed() > SESSION_LIFETIME
            || current.is_none_or(|account| account.roles != staff.roles)
        {
            sessions.remove(token);
            return None;
        }
        Some(staff.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Staff, Instant)>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The session token from the bearer header or the cookie.
pub fn token(headers: &HeaderMap) -> Option<String> {
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
    {
        return Some(bearer.trim().to_owned());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

pub fn session_cookie(token: &str) -> String {
    format!("{COOKIE}={token}; HttpOnly; Secure; SameSite=Strict; Path=/")
}

pub fn clear_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(username: &str, roles: Vec<Role>) -> StaffEntry {
        StaffEntry {
            username: username.into(),
            display_name: "Some One".into(),
            password_hash: busloket_provisioning::hash_staff_password("correct horse").unwrap(),
            eid: None,
            roles,
        }
    }

    #[test]
    fn only_central_it_with_the_right_password_signs_in() {
        let sessions = Sessions::default();
        let accounts = vec![
            account("it", vec![Role::CentralIt]),
            account("clerk", vec![Role::BusClerk]),
        ];
        assert!(
            sessions
                .sign_in(&accounts, "it", "wrong", Role::CentralIt)
                .is_none()
        );
        assert!(
            sessions
                .sign_in(&accounts, "nobody", "correct horse", Role::CentralIt)
                .is_none()
        );
        assert!(
            sessions
                .sign_in(&accounts, "clerk", "correct horse", Role::CentralIt)
                .is_none()
        );
        let token = sessions
            .sign_in(&accounts, "it", "correct horse", Role::CentralIt)
            .unwrap();
        assert_eq!(sessions.staff(&token, &accounts).unwrap().username, "it");
        assert!(
            sessions.staff(&token, &accounts[1..]).is_none(),
            "a removed account is signed out"
        );
        assert!(sessions.staff(&token, &accounts).is_none());
    }
}
