//! Rate limits: requests per client per minute (from the key's tier), and failed authentications per source
//! address and per client id (brute-force protection). Fixed one-minute windows, counted in this process's
//! memory or, for a deployment of several nodes, in Redis (see [`crate::shared`]); both count the same way.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use license::Tier;
use types::UnixMillis;

use crate::shared::{RedisState, SharedStateUnavailable, StateBackend};

const WINDOW_MS: i64 = 60_000;
/// Keys counted exactly in one window, in memory; more are counted in an [`Overflow`].
const MAX_TRACKED: usize = 200_000;

/// Where a client stands in its current window; the SDKs read these as `rate_limit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitStatus {
    pub limit: u32,
    pub remaining: u32,
    pub reset_at: UnixMillis,
}

impl RateLimitStatus {
    /// Whole seconds until the window resets (at least 1), for `Retry-After`.
    pub fn retry_after_seconds(&self, now: UnixMillis) -> u64 {
        u64::try_from((self.reset_at.0 - now.0 + 999) / 1000).unwrap_or(1).max(1)
    }
}

/// Why a request is not let through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitError {
    /// Over the limit until the window ends.
    Limited(RateLimitStatus),
    /// The shared counters cannot be read: the request is refused rather than let through uncounted.
    Unavailable,
}

impl From<SharedStateUnavailable> for LimitError {
    fn from(_: SharedStateUnavailable) -> Self {
        LimitError::Unavailable
    }
}

/// Counters in fixed one-minute windows, by key.
#[derive(Debug)]
enum Counters {
    Memory(Mutex<MemoryCounts>),
    /// `kind` keeps the counters of different limiters apart in Redis.
    Redis {
        redis: RedisState,
        kind: &'static str,
    },
}

impl Counters {
    fn new(backend: &StateBackend, kind: &'static str) -> Counters {
        match backend {
            StateBackend::Memory => Counters::Memory(Mutex::new(MemoryCounts::new(MAX_TRACKED))),
            StateBackend::Redis(redis) => Counters::Redis { redis: redis.clone(), kind },
        }
    }

    /// Adds one to each key's count in the current window and returns the new counts, one per key.
    async fn hit(&self, keys: &[String], now: UnixMillis) -> Result<Vec<u32>, SharedStateUnavailable> {
        let window = now.0.div_euclid(WINDOW_MS);
        match self {
            Counters::Memory(counts) => {
                let mut counts = counts.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(keys.iter().map(|key| counts.hit(key, window)).collect())
            }
            Counters::Redis { redis, kind } => {
                let ttl = window_end(now).0 - now.0 + WINDOW_MS;
                let counts = redis.hit(&redis_keys(redis, kind, keys, window), ttl).await?;
                same_length(counts, keys)
            }
        }
    }

    /// Each key's count in the current window.
    async fn counts(&self, keys: &[String], now: UnixMillis) -> Result<Vec<u32>, SharedStateUnavailable> {
        let window = now.0.div_euclid(WINDOW_MS);
        match self {
            Counters::Memory(counts) => {
                let counts = counts.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(keys.iter().map(|key| counts.count(key, window)).collect())
            }
            Counters::Redis { redis, kind } => {
                let counts = redis.counts(&redis_keys(redis, kind, keys, window)).await?;
                same_length(counts, keys)
            }
        }
    }
}

/// The counts of the current window, in this process's memory. A new window starts from nothing, so the work
/// per hit is constant whatever the number of keys; and the memory is bounded whatever keys come, as failed
/// authentications name any client id they like.
///
/// Keys are held as 64-bit digests keyed with this process's random key ([`RandomState`]): a fixed size
/// whatever the key's length, and two keys that happen to share a digest share a count, which can only count
/// too much. The first `capacity` keys of a window are counted exactly; past that, more keys are counted in
/// an [`Overflow`], which may also count too much but never too little: under a flood of new keys, limits and
/// lockouts can come early for a key that came late, never late.
#[derive(Debug)]
struct MemoryCounts {
    window: i64,
    exact: HashMap<u64, u32>,
    overflow: Option<Overflow>,
    capacity: usize,
    digest: RandomState,
}

impl MemoryCounts {
    fn new(capacity: usize) -> MemoryCounts {
        MemoryCounts {
            window: i64::MIN,
            exact: HashMap::new(),
            overflow: None,
            capacity,
            digest: RandomState::new(),
        }
    }

    fn hit(&mut self, key: &str, window: i64) -> u32 {
        if self.window != window {
            self.window = window;
            self.exact.clear();
            self.overflow = None;
        }
        let digest = self.digest.hash_one(key);
        if let Some(count) = self.exact.get_mut(&digest) {
            *count = count.saturating_add(1);
            return *count;
        }
        if self.exact.len() < self.capacity {
            self.exact.insert(digest, 1);
            return 1;
        }
        self.overflow.get_or_insert_with(Overflow::new).hit(digest)
    }

    fn count(&self, key: &str, window: i64) -> u32 {
        if self.window != window {
            return 0;
        }
        let digest = self.digest.hash_one(key);
        match (self.exact.get(&digest), &self.overflow) {
            (Some(&count), _) => count,
            (None, Some(overflow)) => overflow.count(digest),
            (None, None) => 0,
        }
    }
}

const OVERFLOW_ROWS: usize = 4;
const OVERFLOW_WIDTH: usize = 1 << 16;

/// A count-min sketch (1 MiB, made only when a window overflows): each key adds to one counter per row, at
/// places given by its digest, and its count is the smallest of its counters. Other keys can only add to a
/// key's counters, so a count is never too small. Updates are conservative (only the counters at the minimum
/// grow), which keeps counts close.
struct Overflow {
    /// `OVERFLOW_ROWS` rows of `OVERFLOW_WIDTH` counters, one after the other (allocated on the heap
    /// directly).
    counters: Box<[u32]>,
}

impl std::fmt::Debug for Overflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overflow").finish_non_exhaustive()
    }
}

impl Overflow {
    fn new() -> Overflow {
        Overflow { counters: vec![0; OVERFLOW_ROWS * OVERFLOW_WIDTH].into_boxed_slice() }
    }

    /// Where a digest counts, one place per row: double hashing from its two halves.
    fn places(digest: u64) -> impl Iterator<Item = usize> {
        let (low, high) = (digest as u32 as usize, (digest >> 32) as usize | 1);
        (0..OVERFLOW_ROWS)
            .map(move |row| row * OVERFLOW_WIDTH + low.wrapping_add(row.wrapping_mul(high)) % OVERFLOW_WIDTH)
    }

    fn hit(&mut self, digest: u64) -> u32 {
        let count = self.count(digest).saturating_add(1);
        for place in Self::places(digest) {
            let counter = &mut self.counters[place];
            *counter = (*counter).max(count);
        }
        count
    }

    fn count(&self, digest: u64) -> u32 {
        Self::places(digest).map(|place| self.counters[place]).min().unwrap_or(0)
    }
}

/// `{prefix}:{kind}:{sha256(key)}:{window}`: the window number in the name, so a new window is a new counter.
fn redis_keys(redis: &RedisState, kind: &str, keys: &[String], window: i64) -> Vec<String> {
    keys.iter().map(|key| format!("{}:{window}", redis.key(kind, key))).collect()
}

/// Redis answered with one count per key, or the answer is not trusted.
fn same_length(counts: Vec<u32>, keys: &[String]) -> Result<Vec<u32>, SharedStateUnavailable> {
    if counts.len() == keys.len() {
        Ok(counts)
    } else {
        tracing::error!(
            expected = keys.len(),
            got = counts.len(),
            "redis returned the wrong number of counters"
        );
        Err(SharedStateUnavailable)
    }
}

fn window_end(now: UnixMillis) -> UnixMillis {
    UnixMillis((now.0.div_euclid(WINDOW_MS) + 1) * WINDOW_MS)
}

/// Requests per minute per client, with limits by tier.
#[derive(Debug)]
pub struct RequestLimiter {
    limits: HashMap<Tier, u32>,
    counters: Counters,
}

impl RequestLimiter {
    /// `overrides` replace the tier defaults (PRO 100, ENT 500, PLUS 1000 per minute).
    pub fn new(overrides: &[(Tier, u32)], backend: &StateBackend) -> RequestLimiter {
        let mut limits: HashMap<Tier, u32> = [Tier::Pro, Tier::Ent, Tier::Plus]
            .into_iter()
            .map(|t| (t, t.default_rate_limit_per_minute()))
            .collect();
        limits.extend(overrides.iter().copied());
        RequestLimiter { limits, counters: Counters::new(backend, "rl") }
    }

    /// Counts one request of `client`; an error when it is over its limit or cannot be counted.
    pub async fn check(
        &self,
        client: &str,
        tier: Tier,
        now: UnixMillis,
    ) -> Result<RateLimitStatus, LimitError> {
        let limit = self.limits.get(&tier).copied().unwrap_or_else(|| tier.default_rate_limit_per_minute());
        let counts = self.counters.hit(&[client.to_owned()], now).await?;
        let count = counts.first().copied().ok_or(LimitError::Unavailable)?;
        let status =
            RateLimitStatus { limit, remaining: limit.saturating_sub(count), reset_at: window_end(now) };
        if count > limit { Err(LimitError::Limited(status)) } else { Ok(status) }
    }
}

/// Failed authentications per source address and per client id. Once either is over its limit, further
/// attempts from it are refused (429) until the window ends, whether or not they carry valid credentials.
#[derive(Debug)]
pub struct FailureLimiter {
    max_per_window: u32,
    counters: Counters,
}

impl FailureLimiter {
    pub fn new(max_per_window: u32, backend: &StateBackend) -> FailureLimiter {
        FailureLimiter { max_per_window, counters: Counters::new(backend, "fail") }
    }

    /// When attempts from here are blocked: the time the block ends.
    pub async fn blocked_until(
        &self,
        address: IpAddr,
        client_id: Option<&str>,
        now: UnixMillis,
    ) -> Result<Option<UnixMillis>, SharedStateUnavailable> {
        let counts = self.counters.counts(&failure_keys(address, client_id), now).await?;
        Ok(counts.iter().any(|&count| count >= self.max_per_window).then_some(window_end(now)))
    }

    pub async fn record_failure(
        &self,
        address: IpAddr,
        client_id: Option<&str>,
        now: UnixMillis,
    ) -> Result<(), SharedStateUnavailable> {
        self.counters.hit(&failure_keys(address, client_id), now).await.map(drop)
    }
}

/// The counters a failure counts against. The prefixes keep an address and a client id spelled like one
/// apart.
fn failure_keys(address: IpAddr, client_id: Option<&str>) -> Vec<String> {
    let mut keys = vec![format!("addr:{address}")];
    keys.extend(client_id.map(|id| format!("client:{id}")));
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{redis_nodes, test_backends};

    #[test]
    fn in_memory_a_new_window_starts_from_nothing() {
        let mut counts = MemoryCounts::new(10);
        assert_eq!((counts.hit("a", 7), counts.hit("a", 7), counts.hit("b", 7)), (1, 2, 1));
        assert_eq!((counts.count("a", 7), counts.count("c", 7), counts.count("a", 8)), (2, 0, 0));
        assert_eq!(counts.hit("a", 8), 1);
        assert_eq!((counts.count("a", 7), counts.count("b", 8), counts.exact.len()), (0, 0, 1));
    }

    #[test]
    fn in_memory_keys_past_the_capacity_are_never_counted_too_little() {
        let mut counts = MemoryCounts::new(100);
        for i in 0..100 {
            counts.hit(&format!("early{i}"), 1);
        }
        assert!(counts.overflow.is_none());
        // A flood of 50,000 new keys, one failure each, then a late key five times: the late key's count is
        // at least its own, and the keys counted exactly keep their exact counts.
        for i in 0..50_000 {
            assert!(counts.hit(&format!("flood{i}"), 1) >= 1);
        }
        let late: Vec<u32> = (0..5).map(|_| counts.hit("late", 1)).collect();
        assert!(late.windows(2).all(|w| w[1] == w[0] + 1) && late[0] >= 1, "{late:?}");
        assert!(counts.count("late", 1) >= 5);
        assert_eq!((counts.exact.len(), counts.count("early7", 1)), (100, 1));
        // Most flood keys still read 1, even the last ones: the sketch stays close at this load (4 rows of
        // 65,536).
        let exact = (49_000..50_000).filter(|i| counts.count(&format!("flood{i}"), 1) == 1).count();
        assert!(exact > 850, "{exact} of the last 1,000 exact");
        assert_eq!(counts.hit("late", 2), 1, "the next window starts afresh");
        assert!(counts.overflow.is_none());
    }

    #[test]
    fn a_long_key_costs_no_more_memory_than_a_short_one() {
        let mut counts = MemoryCounts::new(10);
        let long = "x".repeat(1 << 20);
        assert_eq!((counts.hit(&long, 1), counts.hit(&long, 1)), (1, 2));
        assert_eq!(counts.count(&long[1..], 1), 0);
        assert_eq!(std::mem::size_of_val(counts.exact.keys().next().expect("one key")), 8);
    }

    #[tokio::test]
    async fn requests_over_the_tier_limit_are_refused_until_the_window_ends() {
        for backend in test_backends() {
            let limiter = RequestLimiter::new(&[(Tier::Pro, 3)], &backend);
            let now = UnixMillis(120_500);
            let mut statuses = Vec::new();
            for _ in 0..4 {
                statuses.push(limiter.check("svc", Tier::Pro, now).await);
            }
            assert_eq!(statuses[0].map(|s| s.remaining), Ok(2), "{backend:?}");
            assert_eq!(statuses[2].map(|s| s.remaining), Ok(0), "{backend:?}");
            let Err(LimitError::Limited(refused)) = statuses[3] else {
                panic!("fourth is over: {backend:?}")
            };
            assert_eq!((refused.limit, refused.remaining, refused.reset_at), (3, 0, UnixMillis(180_000)));
            assert_eq!(refused.retry_after_seconds(now), 60);
            assert!(limiter.check("other", Tier::Pro, now).await.is_ok(), "limits are per client");
            assert!(
                limiter.check("svc", Tier::Pro, UnixMillis(180_000)).await.is_ok(),
                "a new window starts afresh"
            );
        }
    }

    #[tokio::test]
    async fn tier_defaults() {
        for backend in test_backends() {
            let limiter = RequestLimiter::new(&[], &backend);
            let now = UnixMillis(0);
            assert_eq!(limiter.check("a", Tier::Pro, now).await.map(|s| s.limit), Ok(100));
            assert_eq!(limiter.check("b", Tier::Ent, now).await.map(|s| s.limit), Ok(500));
            assert_eq!(limiter.check("c", Tier::Plus, now).await.map(|s| s.limit), Ok(1000));
        }
    }

    #[tokio::test]
    async fn failures_block_the_address_and_the_client_id() {
        for backend in test_backends() {
            let limiter = FailureLimiter::new(2, &backend);
            let (a, b) = ("10.0.0.1".parse().expect("ip"), "10.0.0.2".parse().expect("ip"));
            let now = UnixMillis(1_000);
            assert_eq!(limiter.blocked_until(a, Some("svc"), now).await, Ok(None));
            limiter.record_failure(a, Some("svc"), now).await.expect("recorded");
            limiter.record_failure(a, Some("svc"), now).await.expect("recorded");
            assert_eq!(
                limiter.blocked_until(a, None, now).await,
                Ok(Some(UnixMillis(60_000))),
                "{backend:?}"
            );
            assert_eq!(
                limiter.blocked_until(b, Some("svc"), now).await,
                Ok(Some(UnixMillis(60_000))),
                "same client elsewhere"
            );
            assert_eq!(limiter.blocked_until(b, Some("other"), now).await, Ok(None));
            assert_eq!(
                limiter.blocked_until(b, Some("10.0.0.1"), now).await,
                Ok(None),
                "a client id spelled like a blocked address is another counter"
            );
            assert_eq!(
                limiter.blocked_until(a, None, UnixMillis(60_000)).await,
                Ok(None),
                "the block ends with the window"
            );
        }
    }

    #[tokio::test]
    async fn nodes_on_one_redis_share_the_rate_limit() {
        let Some((node_a, node_b)) = redis_nodes() else { return };
        let (a, b) = (
            RequestLimiter::new(&[(Tier::Pro, 3)], &node_a),
            RequestLimiter::new(&[(Tier::Pro, 3)], &node_b),
        );
        let now = UnixMillis(120_500);
        assert_eq!(a.check("svc", Tier::Pro, now).await.map(|s| s.remaining), Ok(2));
        assert_eq!(b.check("svc", Tier::Pro, now).await.map(|s| s.remaining), Ok(1));
        assert_eq!(a.check("svc", Tier::Pro, now).await.map(|s| s.remaining), Ok(0));
        assert!(
            matches!(b.check("svc", Tier::Pro, now).await, Err(LimitError::Limited(_))),
            "the fourth, on B"
        );
        assert!(matches!(a.check("svc", Tier::Pro, now).await, Err(LimitError::Limited(_))));
        assert_eq!(
            b.check("svc", Tier::Pro, UnixMillis(180_000)).await.map(|s| s.remaining),
            Ok(2),
            "the next window starts afresh on every node"
        );
    }

    #[tokio::test]
    async fn nodes_on_one_redis_share_the_lockout() {
        let Some((node_a, node_b)) = redis_nodes() else { return };
        let (a, b) = (FailureLimiter::new(2, &node_a), FailureLimiter::new(2, &node_b));
        let address = "10.0.0.1".parse().expect("ip");
        let now = UnixMillis(1_000);
        a.record_failure(address, Some("svc"), now).await.expect("recorded");
        assert_eq!(b.blocked_until(address, None, now).await, Ok(None));
        b.record_failure(address, None, now).await.expect("recorded");
        assert_eq!(a.blocked_until(address, None, now).await, Ok(Some(UnixMillis(60_000))));
        assert_eq!(b.blocked_until(address, None, now).await, Ok(Some(UnixMillis(60_000))));
        let elsewhere = "10.0.0.2".parse().expect("ip");
        assert_eq!(b.blocked_until(elsewhere, Some("svc"), now).await, Ok(None), "one failure of svc so far");
        b.record_failure(elsewhere, Some("svc"), now).await.expect("recorded");
        assert_eq!(a.blocked_until(elsewhere, Some("svc"), now).await, Ok(Some(UnixMillis(60_000))));
    }
}
