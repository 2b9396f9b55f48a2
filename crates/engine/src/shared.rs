//! Where rate-limit counters, failed-authentication counters and admin sessions live: this process's memory
//! (the default, one node), or Redis, so that several nodes behind a load balancer enforce one limit per client
//! and a session opened on one node is usable, and revocable, on every other.
//!
//! **Fail closed.** When Redis is configured but does not answer within the timeout, every call here returns
//! [`SharedStateUnavailable`] and the caller refuses the request (the server answers 503): a dead Redis must
//! never mean "no limits". There is no silent fallback to per-process memory, which would multiply every limit
//! by the number of nodes.
//!
//! Keys are `{prefix}:rl:{hash}:{window}`, `{prefix}:fail:{hash}:{window}` and `{prefix}:session:{hash}`, with
//! SHA-256 hex of the client id, address or session token: no caller-chosen text reaches a key (so one client id
//! cannot name another's key) and Redis holds no client ids, addresses or tokens in clear.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::{Digest, Sha256};
use types::{Secret, UnixMillis};

/// Redis (or the timeout in front of it) failed; the cause is logged where it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the shared state store (Redis) is unavailable")]
pub struct SharedStateUnavailable;

/// Where limits and sessions are kept.
#[derive(Clone, Debug)]
pub enum StateBackend {
    /// This process's memory: limits and sessions are per node, and a restart forgets them.
    Memory,
    /// Redis, shared by every node that names the same server and key prefix.
    Redis(RedisState),
}

impl StateBackend {
    /// Whether the backend answers (always, for memory): for readiness checks.
    pub async fn ping(&self) -> Result<(), SharedStateUnavailable> {
        match self {
            StateBackend::Memory => Ok(()),
            StateBackend::Redis(redis) => redis.ping().await,
        }
    }
}

/// How to use a Redis server.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// The first part of every key, so that deployments (or tests) can share one server without seeing each
    /// other's keys.
    pub key_prefix: String,
    /// The longest any one Redis call may take, connecting included. Keep it short: every authenticated request
    /// waits for the rate limiter.
    pub timeout: Duration,
}

/// The Redis URL could not be used; the message never contains the URL (it may hold a password).
#[derive(Debug, thiserror::Error)]
#[error("redis.url is not a usable Redis URL")]
pub struct InvalidRedisUrl;

/// A connection to Redis, shared by the limiters and sessions of this process. Connects on first use and
/// reconnects by itself; cheap to clone.
#[derive(Clone)]
pub struct RedisState {
    connection: ConnectionManager,
    prefix: Arc<str>,
    timeout: Duration,
    scripts: Arc<Scripts>,
}

impl fmt::Debug for RedisState {
    /// Without the URL, which may hold a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisState").field("prefix", &self.prefix).field("timeout", &self.timeout).finish()
    }
}

/// The Lua scripts, each one round trip that Redis runs atomically.
struct Scripts {
    hit: redis::Script,
    touch_session: redis::Script,
}

/// Adds one to each counter in KEYS and returns the new counts. ARGV[1] is how long the counters live, in
/// milliseconds: the rest of the window plus one more, so a node whose clock runs behind never sees its counter
/// expire early. Counter and expiry are set in one script, so no counter is ever left without an expiry.
const HIT_SCRIPT: &str = r"
local counts = {}
for i, key in ipairs(KEYS) do
  counts[i] = redis.call('INCR', key)
  redis.call('PEXPIRE', key, ARGV[1])
end
return counts
";

/// Resumes the session KEYS[1] at ARGV[1] (now) with idle time ARGV[2], lifetime ARGV[3] and TTL slack ARGV[4],
/// all in milliseconds. Returns nil when there is no such session, {'expired'} after deleting a lapsed one, and
/// {'live', principal} after recording the activity. Checking and touching in one script means a log-off on
/// another node can never be undone by a concurrent resume here.
const TOUCH_SESSION_SCRIPT: &str = r"
local s = redis.call('HMGET', KEYS[1], 'principal', 'created', 'last_seen')
if not s[1] then return nil end
local now, idle, lifetime = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local created, last_seen = tonumber(s[2]), tonumber(s[3])
if now - last_seen >= idle or now - created >= lifetime then
  redis.call('DEL', KEYS[1])
  return {'expired'}
end
if now > last_seen then
  redis.call('HSET', KEYS[1], 'last_seen', ARGV[1])
  last_seen = now
end
redis.call('PEXPIRE', KEYS[1], math.min(last_seen + idle, created + lifetime) - now + tonumber(ARGV[4]))
return {'live', s[1]}
";

/// Session keys outlive their expiry by this much: Redis's TTL only reclaims memory, the stored timestamps
/// decide, so a node's clock slightly ahead of Redis's never logs a session off early.
const SESSION_TTL_SLACK_MS: i64 = 60_000;

/// A stored session as Redis returns it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StoredSession {
    Live(String),
    Expired,
    Unknown,
}

impl RedisState {
    /// Prepares the connection; nothing is sent until the first call (a node starts while Redis is down, and
    /// answers 503 until it is back).
    pub fn connect(url: &Secret<String>, options: RedisOptions) -> Result<RedisState, InvalidRedisUrl> {
        let client = redis::Client::open(url.expose().as_str()).map_err(|_| InvalidRedisUrl)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.timeout))
            .set_response_timeout(Some(options.timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        let connection =
            ConnectionManager::new_lazy_with_config(client, config).map_err(|_| InvalidRedisUrl)?;
        Ok(RedisState {
            connection,
            prefix: options.key_prefix.into(),
            timeout: options.timeout,
            scripts: Arc::new(Scripts {
                hit: redis::Script::new(HIT_SCRIPT),
                touch_session: redis::Script::new(TOUCH_SESSION_SCRIPT),
            }),
        })
    }

    pub async fn ping(&self) -> Result<(), SharedStateUnavailable> {
        let mut connection = self.connection.clone();
        self.call("ping", async move { redis::cmd("PING").query_async::<String>(&mut connection).await })
            .await
            .map(drop)
    }

    /// `{prefix}:{kind}:{sha256(id)}`, the key of any caller-named thing.
    pub(crate) fn key(&self, kind: &str, id: &str) -> String {
        format!("{}:{kind}:{}", self.prefix, hex::encode(Sha256::digest(id.as_bytes())))
    }

    pub(crate) fn session_key(&self, token_hash: &[u8; 32]) -> String {
        format!("{}:session:{}", self.prefix, hex::encode(token_hash))
    }

    /// Adds one to each counter and returns the new counts; the counters live for `ttl_ms`.
    pub(crate) async fn hit(&self, keys: &[String], ttl_ms: i64) -> Result<Vec<u32>, SharedStateUnavailable> {
        let mut invocation = self.scripts.hit.prepare_invoke();
        for key in keys {
            invocation.key(key);
        }
        invocation.arg(ttl_ms.max(1));
        let mut connection = self.connection.clone();
        self.call("count", async move { invocation.invoke_async::<Vec<u32>>(&mut connection).await }).await
    }

    /// The counters' current values (0 for those that do not exist).
    pub(crate) async fn counts(&self, keys: &[String]) -> Result<Vec<u32>, SharedStateUnavailable> {
        let mut connection = self.connection.clone();
        let command = redis::cmd("MGET").arg(keys).clone();
        let counts =
            self.call("read counters", async move {
                command.query_async::<Vec<Option<u32>>>(&mut connection).await
            })
            .await?;
        Ok(counts.into_iter().map(Option::unwrap_or_default).collect())
    }

    pub(crate) async fn put_session(
        &self,
        key: &str,
        principal: &str,
        now: UnixMillis,
        ttl_ms: i64,
    ) -> Result<(), SharedStateUnavailable> {
        let mut pipeline = redis::pipe();
        pipeline
            .atomic()
            .cmd("HSET")
            .arg(key)
            .arg("principal")
            .arg(principal)
            .arg("created")
            .arg(now.0)
            .arg("last_seen")
            .arg(now.0)
            .ignore()
            .cmd("PEXPIRE")
            .arg(key)
            .arg(ttl_ms.saturating_add(SESSION_TTL_SLACK_MS))
            .ignore();
        let mut connection = self.connection.clone();
        self.call("store session", async move { pipeline.query_async::<()>(&mut connection).await }).await
    }

    /// The session's principal if it is live at `now` (which then counts as activity); a lapsed session is
    /// deleted.
    pub(crate) async fn touch_session(
        &self,
        key: &str,
        now: UnixMillis,
        idle_ms: i64,
        lifetime_ms: i64,
    ) -> Result<StoredSession, SharedStateUnavailable> {
        let mut invocation = self.scripts.touch_session.prepare_invoke();
        invocation.key(key).arg(now.0).arg(idle_ms).arg(lifetime_ms).arg(SESSION_TTL_SLACK_MS);
        let mut connection = self.connection.clone();
        let reply = self
            .call("resume session", async move {
                invocation.invoke_async::<Option<Vec<String>>>(&mut connection).await
            })
            .await?;
        Ok(match reply.as_deref() {
            Some([state, principal]) if state == "live" => StoredSession::Live(principal.clone()),
            Some([state]) if state == "expired" => StoredSession::Expired,
            _ => StoredSession::Unknown,
        })
    }

    /// Deletes the session; whether there was one.
    pub(crate) async fn delete_session(&self, key: &str) -> Result<bool, SharedStateUnavailable> {
        let mut connection = self.connection.clone();
        let command = redis::cmd("DEL").arg(key).clone();
        let deleted = self
            .call("end session", async move { command.query_async::<u32>(&mut connection).await })
            .await?;
        Ok(deleted > 0)
    }

    /// Runs one Redis call under the timeout; failures are logged here (without the URL) and become
    /// [`SharedStateUnavailable`].
    async fn call<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, SharedStateUnavailable> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                tracing::warn!(operation, error = %error, "redis call failed");
                Err(SharedStateUnavailable)
            }
            Err(_) => {
                tracing::warn!(
                    operation,
                    timeout_ms = self.timeout.as_millis() as u64,
                    "redis call timed out"
                );
                Err(SharedStateUnavailable)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_are_hashed_and_the_url_never_shows() {
        let url = Secret::new("redis://:hunter2@127.0.0.1:1/0".to_owned());
        let options = RedisOptions { key_prefix: "p".to_owned(), timeout: Duration::from_millis(100) };
        let redis = RedisState::connect(&url, options).expect("valid url");
        assert!(!format!("{redis:?}").contains("hunter2"), "{redis:?}");
        let key = redis.key("rl", "svc:1:2");
        assert!(key.starts_with("p:rl:") && key.len() == "p:rl:".len() + 64, "{key}");
        assert_ne!(redis.key("rl", "a"), redis.key("fail", "a"));
        let invalid = RedisState::connect(
            &Secret::new("http://:hunter2@x".to_owned()),
            RedisOptions { key_prefix: "p".to_owned(), timeout: Duration::from_millis(100) },
        );
        assert!(!invalid.expect_err("not redis").to_string().contains("hunter2"));
    }

    /// A Redis that refuses connections, and one that accepts them and never answers: either way every limiter
    /// and session call fails closed within the timeout instead of letting the request through or hanging.
    #[tokio::test]
    async fn an_unreachable_redis_fails_closed_within_the_timeout() {
        use crate::limits::{FailureLimiter, LimitError, RequestLimiter};
        use crate::sessions::{SessionError, Sessions};

        let refused = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let refused_url = format!("redis://{}", refused.local_addr().expect("addr"));
        drop(refused);
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let silent_url = format!("redis://{}", silent.local_addr().expect("addr"));
        let accept = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = silent.accept().await {
                held.push(stream);
            }
        });
        for url in [refused_url, silent_url] {
            let options = RedisOptions { key_prefix: "p".to_owned(), timeout: Duration::from_millis(300) };
            let backend =
                StateBackend::Redis(RedisState::connect(&Secret::new(url.clone()), options).expect("url"));
            let started = std::time::Instant::now();
            let now = UnixMillis(0);
            let requests = RequestLimiter::new(&[], &backend);
            assert_eq!(
                requests.check("svc", license::Tier::Pro, now).await,
                Err(LimitError::Unavailable),
                "{url}"
            );
            let failures = FailureLimiter::new(1, &backend);
            let address = "10.0.0.1".parse().expect("ip");
            assert_eq!(failures.blocked_until(address, Some("svc"), now).await, Err(SharedStateUnavailable));
            assert_eq!(failures.record_failure(address, None, now).await, Err(SharedStateUnavailable));
            let clock = Arc::new(types::ManualClock::new(now));
            let sessions = Sessions::new(Duration::from_secs(60), Duration::from_secs(600), clock, &backend);
            assert_eq!(sessions.resume("axs_x").await, Err(SessionError::Unavailable));
            assert_eq!(sessions.end("axs_x").await, Err(SessionError::Unavailable));
            assert_eq!(backend.ping().await, Err(SharedStateUnavailable));
            let elapsed = started.elapsed();
            assert!(elapsed < Duration::from_secs(5), "{url}: {elapsed:?} for seven calls");
        }
        accept.abort();
    }
}
