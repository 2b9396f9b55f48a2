//! Admin sessions: an admin credential is exchanged for a session token that logs off by itself after an idle
//! time (default 15 minutes; HIPAA's automatic log-off) and after an absolute lifetime. Only a hash of the token
//! is kept, in memory: a restart logs every session off.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use types::{Clock, Secret, UnixMillis};

use crate::auth::Principal;

/// Session tokens start with this, so they are told apart from license keys.
pub const SESSION_PREFIX: &str = "axs_";

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("sessions are for admin credentials")]
    NotAdmin,
    #[error("the session has expired: sign in again")]
    Expired,
    #[error("no such session")]
    Unknown,
}

#[derive(Debug)]
struct Session {
    principal: Principal,
    created: UnixMillis,
    last_seen: UnixMillis,
    /// The full hash again, compared in constant time after the map lookup.
    hash: [u8; 32],
}

/// A new session: the token (shown once) and when it lapses if unused.
#[derive(Debug)]
pub struct NewSession {
    pub token: Secret<String>,
    pub idle_expires_at: UnixMillis,
    pub expires_at: UnixMillis,
}

/// The sessions of this process.
#[derive(Debug)]
pub struct Sessions {
    idle: Duration,
    lifetime: Duration,
    clock: Arc<dyn Clock>,
    sessions: Mutex<HashMap<[u8; 32], Session>>,
}

const MAX_SESSIONS: usize = 10_000;

impl Sessions {
    pub fn new(idle: Duration, lifetime: Duration, clock: Arc<dyn Clock>) -> Sessions {
        Sessions { idle, lifetime, clock, sessions: Mutex::new(HashMap::new()) }
    }

    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// Opens a session for an admin (or emergency) principal.
    pub fn create(&self, principal: &Principal) -> Result<NewSession, SessionError> {
        if !matches!(principal.kind, license::KeyKind::Admin | license::KeyKind::Emergency) {
            return Err(SessionError::NotAdmin);
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|_| SessionError::Unknown)?;
        let token = Secret::new(format!("{SESSION_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)));
        let hash = hash(token.expose());
        let now = self.clock.now();
        let mut sessions = self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if sessions.len() >= MAX_SESSIONS {
            let (idle, lifetime) = (self.idle_ms(), self.lifetime_ms());
            sessions.retain(|_, s| now.0 - s.last_seen.0 < idle && now.0 - s.created.0 < lifetime);
        }
        sessions.insert(hash, Session { principal: principal.clone(), created: now, last_seen: now, hash });
        Ok(NewSession {
            token,
            idle_expires_at: now.plus_millis(self.idle_ms()),
            expires_at: now.plus_millis(self.lifetime_ms()),
        })
    }

    /// The principal of a live session, which counts as activity.
    pub fn resume(&self, token: &str) -> Result<Principal, SessionError> {
        let hash = hash(token);
        let now = self.clock.now();
        let mut sessions = self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let session = sessions.get_mut(&hash).ok_or(SessionError::Unknown)?;
        if !bool::from(session.hash.ct_eq(&hash)) {
            return Err(SessionError::Unknown);
        }
        if now.0 - session.last_seen.0 >= self.idle_ms() || now.0 - session.created.0 >= self.lifetime_ms() {
            sessions.remove(&hash);
            return Err(SessionError::Expired);
        }
        session.last_seen = now;
        Ok(session.principal.clone())
    }

    /// Logs a session off.
    pub fn end(&self, token: &str) -> bool {
        self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&hash(token)).is_some()
    }

    fn idle_ms(&self) -> i64 {
        i64::try_from(self.idle.as_millis()).unwrap_or(i64::MAX)
    }

    fn lifetime_ms(&self) -> i64 {
        i64::try_from(self.lifetime.as_millis()).unwrap_or(i64::MAX)
    }
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use types::ManualClock;

    use super::*;

    fn principal(kind: license::KeyKind) -> Principal {
        Principal {
            key_id: "k".to_owned(),
            tenant: license::TenantId::new("acme").expect("tenant"),
            kind,
            tier: license::Tier::Pro,
            service: None,
            permissions: license::PermissionSet::new(),
            grace_remaining: None,
        }
    }

    #[test]
    fn idle_sessions_log_off_and_activity_keeps_them_alive() {
        let clock = Arc::new(ManualClock::new(UnixMillis(0)));
        let sessions = Sessions::new(Duration::from_secs(900), Duration::from_secs(12 * 3600), clock.clone());
        let session = sessions.create(&principal(license::KeyKind::Admin)).expect("create");
        let token = session.token.expose().clone();
        assert!(token.starts_with(SESSION_PREFIX));
        assert_eq!(session.idle_expires_at, UnixMillis(900_000));
        clock.advance_millis(899_000);
        assert!(sessions.resume(&token).is_ok(), "activity just before the idle limit");
        clock.advance_millis(899_000);
        assert!(sessions.resume(&token).is_ok(), "the idle clock restarted");
        clock.advance_millis(900_000);
        assert_eq!(sessions.resume(&token), Err(SessionError::Expired));
        assert_eq!(sessions.resume(&token), Err(SessionError::Unknown), "an expired session is gone");
    }

    #[test]
    fn sessions_have_an_absolute_lifetime_and_can_be_ended() {
        let clock = Arc::new(ManualClock::new(UnixMillis(0)));
        let sessions = Sessions::new(Duration::from_secs(900), Duration::from_secs(1800), clock.clone());
        let token =
            sessions.create(&principal(license::KeyKind::Admin)).expect("create").token.expose().clone();
        for _ in 0..3 {
            clock.advance_millis(600_000);
            let _ = sessions.resume(&token);
        }
        assert_eq!(sessions.resume(&token), Err(SessionError::Unknown));
        let token =
            sessions.create(&principal(license::KeyKind::Emergency)).expect("create").token.expose().clone();
        assert!(sessions.end(&token));
        assert_eq!(sessions.resume(&token), Err(SessionError::Unknown));
        assert_eq!(
            sessions.create(&principal(license::KeyKind::Service)).err(),
            Some(SessionError::NotAdmin)
        );
    }
}
