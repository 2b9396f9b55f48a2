//! Admin sessions: an admin credential is exchanged for a session token that logs off by itself after an idle
//! time (default 15 minutes; HIPAA's automatic log-off) and after an absolute lifetime. Only a hash of the token
//! is kept: in this process's memory (a restart logs every session off), or in Redis, where every node sees the
//! same sessions, so a session opened on one node works, and logs off, on all of them (see [`crate::shared`]).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use types::{Clock, Secret, UnixMillis};

use crate::auth::Principal;
use crate::shared::{RedisState, SharedStateUnavailable, StateBackend, StoredSession};

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
    #[error("sessions cannot be checked right now")]
    Unavailable,
}

impl From<SharedStateUnavailable> for SessionError {
    fn from(_: SharedStateUnavailable) -> Self {
        SessionError::Unavailable
    }
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

/// The admin sessions of this process, or of every node sharing its Redis.
#[derive(Debug)]
pub struct Sessions {
    idle: Duration,
    lifetime: Duration,
    clock: Arc<dyn Clock>,
    store: SessionStore,
}

#[derive(Debug)]
enum SessionStore {
    Memory(Mutex<HashMap<[u8; 32], Session>>),
    /// Keyed by the token's hash. The lookup is Redis's own (not constant-time), which gives nothing away: the
    /// key is the SHA-256 of 256 random bits, and learning a prefix of a hash brings no one closer to a token.
    Redis(RedisState),
}

/// The most sessions one process holds in memory. Past it, lapsed sessions are swept, and if that is not
/// enough the least recently used session is logged off: an admin credential opening sessions in a loop
/// cannot grow the process without bound. (Admin sessions are few; ten thousand live ones is a runaway
/// script, and the sweep then runs once per new session, not once per request.)
const MAX_SESSIONS: usize = 10_000;

impl Sessions {
    pub fn new(
        idle: Duration,
        lifetime: Duration,
        clock: Arc<dyn Clock>,
        backend: &StateBackend,
    ) -> Sessions {
        let store = match backend {
            StateBackend::Memory => SessionStore::Memory(Mutex::new(HashMap::new())),
            StateBackend::Redis(redis) => SessionStore::Redis(redis.clone()),
        };
        Sessions { idle, lifetime, clock, store }
    }

    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// Opens a session for an admin (or emergency) principal.
    pub async fn create(&self, principal: &Principal) -> Result<NewSession, SessionError> {
        if !matches!(principal.kind, license::KeyKind::Admin | license::KeyKind::Emergency) {
            return Err(SessionError::NotAdmin);
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|_| SessionError::Unknown)?;
        let token = Secret::new(format!("{SESSION_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)));
        let hash = hash(token.expose());
        let now = self.clock.now();
        match &self.store {
            SessionStore::Memory(sessions) => {
                let mut sessions = sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if sessions.len() >= MAX_SESSIONS {
                    sessions.retain(|_, s| !self.lapsed(s.created, s.last_seen, now));
                }
                if sessions.len() >= MAX_SESSIONS
                    && let Some(oldest) = sessions.values().min_by_key(|s| s.last_seen).map(|s| s.hash)
                {
                    sessions.remove(&oldest);
                    tracing::warn!(
                        held = MAX_SESSIONS,
                        "admin sessions at their limit: the least recently used was logged off"
                    );
                }
                let session = Session { principal: principal.clone(), created: now, last_seen: now, hash };
                sessions.insert(hash, session);
            }
            SessionStore::Redis(redis) => {
                let record = PrincipalRecord::of(principal);
                let ttl = self.idle_ms().min(self.lifetime_ms());
                redis.put_session(&redis.session_key(&hash), &record, now, ttl).await?;
            }
        }
        Ok(NewSession {
            token,
            idle_expires_at: now.plus_millis(self.idle_ms()),
            expires_at: now.plus_millis(self.lifetime_ms()),
        })
    }

    /// The principal of a live session, which counts as activity.
    pub async fn resume(&self, token: &str) -> Result<Principal, SessionError> {
        let hash = hash(token);
        let now = self.clock.now();
        match &self.store {
            SessionStore::Memory(sessions) => {
                let mut sessions = sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let session = sessions.get_mut(&hash).ok_or(SessionError::Unknown)?;
                if !bool::from(session.hash.ct_eq(&hash)) {
                    return Err(SessionError::Unknown);
                }
                if self.lapsed(session.created, session.last_seen, now) {
                    sessions.remove(&hash);
                    return Err(SessionError::Expired);
                }
                session.last_seen = session.last_seen.max(now);
                Ok(session.principal.clone())
            }
            SessionStore::Redis(redis) => {
                let key = redis.session_key(&hash);
                match redis.touch_session(&key, now, self.idle_ms(), self.lifetime_ms()).await? {
                    StoredSession::Live(record) => PrincipalRecord::parse(&record).ok_or_else(|| {
                        tracing::error!("a stored session is malformed; it is refused");
                        SessionError::Unknown
                    }),
                    StoredSession::Expired => Err(SessionError::Expired),
                    StoredSession::Unknown => Err(SessionError::Unknown),
                }
            }
        }
    }

    /// Logs a session off (on every node, with Redis); whether there was one.
    pub async fn end(&self, token: &str) -> Result<bool, SessionError> {
        let hash = hash(token);
        match &self.store {
            SessionStore::Memory(sessions) => {
                Ok(sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&hash).is_some())
            }
            SessionStore::Redis(redis) => Ok(redis.delete_session(&redis.session_key(&hash)).await?),
        }
    }

    /// Idle too long, or past the absolute lifetime. (The Redis backend checks the same in its Lua script.)
    fn lapsed(&self, created: UnixMillis, last_seen: UnixMillis, now: UnixMillis) -> bool {
        now.0 - last_seen.0 >= self.idle_ms() || now.0 - created.0 >= self.lifetime_ms()
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

/// A session's principal as stored in Redis. Unknown fields are refused, like the license claims it comes from.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrincipalRecord {
    key_id: String,
    tenant: String,
    kind: String,
    tier: String,
    service: Option<(String, String)>,
    permissions: Vec<String>,
    grace_remaining_ms: Option<u64>,
}

impl PrincipalRecord {
    fn of(principal: &Principal) -> String {
        let record = PrincipalRecord {
            key_id: principal.key_id.clone(),
            tenant: principal.tenant.to_string(),
            kind: principal.kind.to_string(),
            tier: principal.tier.to_string(),
            service: principal.service.as_ref().map(|s| (s.name.to_string(), s.service_type.to_string())),
            permissions: principal.permissions.iter().map(ToString::to_string).collect(),
            grace_remaining_ms: principal
                .grace_remaining
                .map(|grace| u64::try_from(grace.as_millis()).unwrap_or(u64::MAX)),
        };
        // Strings and numbers only: serialising cannot fail.
        serde_json::to_string(&record).unwrap_or_default()
    }

    fn parse(text: &str) -> Option<Principal> {
        let record: PrincipalRecord = serde_json::from_str(text).ok()?;
        let service = match record.service {
            Some((name, service_type)) => Some(license::ServiceIdentity {
                name: license::ServiceName::new(&name).ok()?,
                service_type: license::ServiceType::new(&service_type).ok()?,
            }),
            None => None,
        };
        Some(Principal {
            key_id: record.key_id,
            tenant: license::TenantId::new(&record.tenant).ok()?,
            kind: license::KeyKind::from_str(&record.kind).ok()?,
            tier: license::Tier::from_str(&record.tier).ok()?,
            service,
            permissions: license::PermissionSet::parse(record.permissions.iter().map(String::as_str)).ok()?,
            grace_remaining: record.grace_remaining_ms.map(Duration::from_millis),
        })
    }
}

#[cfg(test)]
mod tests {
    use license::Permission;
    use types::ManualClock;

    use super::*;
    use crate::testing::{redis_nodes, test_backends};

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

    #[tokio::test]
    async fn idle_sessions_log_off_and_activity_keeps_them_alive() {
        for backend in test_backends() {
            let clock = Arc::new(ManualClock::new(UnixMillis(0)));
            let sessions = Sessions::new(
                Duration::from_secs(900),
                Duration::from_secs(12 * 3600),
                clock.clone(),
                &backend,
            );
            let session = sessions.create(&principal(license::KeyKind::Admin)).await.expect("create");
            let token = session.token.expose().clone();
            assert!(token.starts_with(SESSION_PREFIX));
            assert_eq!(session.idle_expires_at, UnixMillis(900_000));
            clock.advance_millis(899_000);
            assert!(
                sessions.resume(&token).await.is_ok(),
                "activity just before the idle limit: {backend:?}"
            );
            clock.advance_millis(899_000);
            assert!(sessions.resume(&token).await.is_ok(), "the idle clock restarted: {backend:?}");
            clock.advance_millis(900_000);
            assert_eq!(sessions.resume(&token).await, Err(SessionError::Expired), "{backend:?}");
            assert_eq!(
                sessions.resume(&token).await,
                Err(SessionError::Unknown),
                "an expired session is gone"
            );
        }
    }

    #[tokio::test]
    async fn sessions_have_an_absolute_lifetime_and_can_be_ended() {
        for backend in test_backends() {
            let clock = Arc::new(ManualClock::new(UnixMillis(0)));
            let sessions =
                Sessions::new(Duration::from_secs(900), Duration::from_secs(1800), clock.clone(), &backend);
            let admin = principal(license::KeyKind::Admin);
            let token = sessions.create(&admin).await.expect("create").token.expose().clone();
            for _ in 0..3 {
                clock.advance_millis(600_000);
                let _ = sessions.resume(&token).await;
            }
            assert_eq!(sessions.resume(&token).await, Err(SessionError::Unknown), "{backend:?}");
            let emergency = principal(license::KeyKind::Emergency);
            let token = sessions.create(&emergency).await.expect("create").token.expose().clone();
            assert_eq!(sessions.end(&token).await, Ok(true));
            assert_eq!(sessions.end(&token).await, Ok(false), "already ended");
            assert_eq!(sessions.resume(&token).await, Err(SessionError::Unknown));
            assert_eq!(
                sessions.create(&principal(license::KeyKind::Service)).await.err(),
                Some(SessionError::NotAdmin)
            );
        }
    }

    #[tokio::test]
    async fn a_session_opened_on_one_node_works_and_logs_off_on_another() {
        let Some((node_a, node_b)) = redis_nodes() else { return };
        let clock = Arc::new(ManualClock::new(UnixMillis(1_000_000)));
        let (idle, lifetime) = (Duration::from_secs(900), Duration::from_secs(12 * 3600));
        let a = Sessions::new(idle, lifetime, clock.clone(), &node_a);
        let b = Sessions::new(idle, lifetime, clock.clone(), &node_b);
        let mut admin = principal(license::KeyKind::Admin);
        admin.service = Some(license::ServiceIdentity {
            name: license::ServiceName::new("portal").expect("name"),
            service_type: license::ServiceType::new("web").expect("type"),
        });
        admin.permissions =
            [Permission::AdminKeys, Permission::mcp("db", "read").expect("mcp")].into_iter().collect();
        admin.grace_remaining = Some(Duration::from_secs(60));
        let token = a.create(&admin).await.expect("create").token.expose().clone();
        assert_eq!(b.resume(&token).await, Ok(admin.clone()), "the whole principal comes back on B");
        clock.advance_millis(800_000);
        assert!(a.resume(&token).await.is_ok());
        clock.advance_millis(800_000);
        assert!(b.resume(&token).await.is_ok(), "activity on A restarted the idle clock for B");
        assert_eq!(b.end(&token).await, Ok(true));
        assert_eq!(a.resume(&token).await, Err(SessionError::Unknown), "logged off on B is logged off on A");
        let token = a.create(&admin).await.expect("create").token.expose().clone();
        clock.advance_millis(900_000);
        assert_eq!(
            b.resume(&token).await,
            Err(SessionError::Expired),
            "idle expiry is the same on every node"
        );
        assert_eq!(a.resume(&token).await, Err(SessionError::Unknown));
    }

    #[test]
    fn stored_principals_round_trip_and_bad_records_are_refused() {
        let mut admin = principal(license::KeyKind::Admin);
        admin.permissions = license::KeyKind::Admin.default_permissions();
        assert_eq!(PrincipalRecord::parse(&PrincipalRecord::of(&admin)), Some(admin));
        for bad in [
            "",
            "{}",
            r#"{"key_id":"k","tenant":"a b","kind":"admin","tier":"PRO","service":null,"permissions":[],"grace_remaining_ms":null}"#,
            r#"{"key_id":"k","tenant":"a","kind":"root","tier":"PRO","service":null,"permissions":[],"grace_remaining_ms":null}"#,
            r#"{"key_id":"k","tenant":"a","kind":"admin","tier":"PRO","service":null,"permissions":["mcp:*:*"],"grace_remaining_ms":null}"#,
            r#"{"key_id":"k","tenant":"a","kind":"admin","tier":"PRO","service":null,"permissions":[],"grace_remaining_ms":null,"extra":1}"#,
        ] {
            assert_eq!(PrincipalRecord::parse(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn memory_sessions_are_bounded_and_the_least_recently_used_gives_way() {
        let clock = Arc::new(ManualClock::new(UnixMillis(0)));
        let sessions = Sessions::new(
            Duration::from_secs(900),
            Duration::from_secs(3600),
            clock.clone(),
            &StateBackend::Memory,
        );
        let admin = principal(license::KeyKind::Admin);
        let first = sessions.create(&admin).await.expect("create").token.expose().clone();
        clock.advance_millis(1);
        let second = sessions.create(&admin).await.expect("create").token.expose().clone();
        clock.advance_millis(1);
        for _ in 2..MAX_SESSIONS {
            sessions.create(&admin).await.expect("create");
        }
        clock.advance_millis(1);
        assert!(sessions.resume(&first).await.is_ok(), "the first session is now the most recently used");
        let newest = sessions.create(&admin).await.expect("create at the limit").token.expose().clone();
        let SessionStore::Memory(held) = &sessions.store else { unreachable!("memory backend") };
        assert_eq!(held.lock().expect("lock").len(), MAX_SESSIONS, "held at the limit");
        assert!(sessions.resume(&newest).await.is_ok());
        assert!(sessions.resume(&first).await.is_ok(), "recently used: kept");
        assert_eq!(
            sessions.resume(&second).await.err(),
            Some(SessionError::Unknown),
            "the least recently used was logged off"
        );
    }
}
