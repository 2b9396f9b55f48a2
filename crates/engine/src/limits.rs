//! Rate limits: requests per client per minute (from the key's tier), and failed authentications per source
//! address and per client id (brute-force protection). Fixed one-minute windows kept in memory per process.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

use license::Tier;
use types::UnixMillis;

const WINDOW_MS: i64 = 60_000;
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

#[derive(Debug)]
struct Windows<K> {
    counts: Mutex<HashMap<K, (i64, u32)>>,
}

impl<K: Eq + Hash + Clone> Windows<K> {
    fn new() -> Windows<K> {
        Windows { counts: Mutex::new(HashMap::new()) }
    }

    /// Adds one to `key`'s count in the current window and returns the new count and the window's end.
    fn hit(&self, key: &K, now: UnixMillis) -> (u32, UnixMillis) {
        let window = now.0.div_euclid(WINDOW_MS);
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if counts.len() >= MAX_TRACKED {
            counts.retain(|_, (w, _)| *w == window);
        }
        let entry = counts.entry(key.clone()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        (entry.1, UnixMillis((window + 1) * WINDOW_MS))
    }

    fn count(&self, key: &K, now: UnixMillis) -> u32 {
        let window = now.0.div_euclid(WINDOW_MS);
        let counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        counts.get(key).filter(|(w, _)| *w == window).map_or(0, |(_, c)| *c)
    }
}

/// Requests per minute per client, with limits by tier.
#[derive(Debug)]
pub struct RequestLimiter {
    limits: HashMap<Tier, u32>,
    windows: Windows<String>,
}

impl RequestLimiter {
    /// `overrides` replace the tier defaults (PRO 100, ENT 500, PLUS 1000 per minute).
    pub fn new(overrides: &[(Tier, u32)]) -> RequestLimiter {
        let mut limits: HashMap<Tier, u32> = [Tier::Pro, Tier::Ent, Tier::Plus]
            .into_iter()
            .map(|t| (t, t.default_rate_limit_per_minute()))
            .collect();
        limits.extend(overrides.iter().copied());
        RequestLimiter { limits, windows: Windows::new() }
    }

    /// Counts one request of `client`; `Err` when it is over its limit.
    pub fn check(
        &self,
        client: &str,
        tier: Tier,
        now: UnixMillis,
    ) -> Result<RateLimitStatus, RateLimitStatus> {
        let limit = self.limits.get(&tier).copied().unwrap_or_else(|| tier.default_rate_limit_per_minute());
        let (count, reset_at) = self.windows.hit(&client.to_owned(), now);
        let status = RateLimitStatus { limit, remaining: limit.saturating_sub(count), reset_at };
        if count > limit { Err(status) } else { Ok(status) }
    }
}

/// Failed authentications per source address and per client id. Once either is over its limit, further
/// attempts from it are refused (429) until the window ends, whether or not they carry valid credentials.
#[derive(Debug)]
pub struct FailureLimiter {
    max_per_window: u32,
    by_address: Windows<IpAddr>,
    by_client: Windows<String>,
}

impl FailureLimiter {
    pub fn new(max_per_window: u32) -> FailureLimiter {
        FailureLimiter { max_per_window, by_address: Windows::new(), by_client: Windows::new() }
    }

    /// When attempts from here are blocked: the time the block ends.
    pub fn blocked_until(
        &self,
        address: IpAddr,
        client_id: Option<&str>,
        now: UnixMillis,
    ) -> Option<UnixMillis> {
        let window_end = UnixMillis((now.0.div_euclid(WINDOW_MS) + 1) * WINDOW_MS);
        let over_address = self.by_address.count(&address, now) >= self.max_per_window;
        let over_client =
            client_id.is_some_and(|id| self.by_client.count(&id.to_owned(), now) >= self.max_per_window);
        (over_address || over_client).then_some(window_end)
    }

    pub fn record_failure(&self, address: IpAddr, client_id: Option<&str>, now: UnixMillis) {
        self.by_address.hit(&address, now);
        if let Some(id) = client_id {
            self.by_client.hit(&id.to_owned(), now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_over_the_tier_limit_are_refused_until_the_window_ends() {
        let limiter = RequestLimiter::new(&[(Tier::Pro, 3)]);
        let now = UnixMillis(120_500);
        let statuses: Vec<_> = (0..4).map(|_| limiter.check("svc", Tier::Pro, now)).collect();
        assert_eq!(statuses[0].map(|s| s.remaining), Ok(2));
        assert_eq!(statuses[2].map(|s| s.remaining), Ok(0));
        let refused = statuses[3].expect_err("fourth is over");
        assert_eq!((refused.limit, refused.remaining, refused.reset_at), (3, 0, UnixMillis(180_000)));
        assert_eq!(refused.retry_after_seconds(now), 60);
        assert!(limiter.check("other", Tier::Pro, now).is_ok(), "limits are per client");
        assert!(limiter.check("svc", Tier::Pro, UnixMillis(180_000)).is_ok(), "a new window starts afresh");
    }

    #[test]
    fn tier_defaults() {
        let limiter = RequestLimiter::new(&[]);
        let now = UnixMillis(0);
        assert_eq!(limiter.check("a", Tier::Pro, now).map(|s| s.limit), Ok(100));
        assert_eq!(limiter.check("b", Tier::Ent, now).map(|s| s.limit), Ok(500));
        assert_eq!(limiter.check("c", Tier::Plus, now).map(|s| s.limit), Ok(1000));
    }

    #[test]
    fn failures_block_the_address_and_the_client_id() {
        let limiter = FailureLimiter::new(2);
        let (a, b) = ("10.0.0.1".parse().expect("ip"), "10.0.0.2".parse().expect("ip"));
        let now = UnixMillis(1_000);
        assert_eq!(limiter.blocked_until(a, Some("svc"), now), None);
        limiter.record_failure(a, Some("svc"), now);
        limiter.record_failure(a, Some("svc"), now);
        assert_eq!(limiter.blocked_until(a, None, now), Some(UnixMillis(60_000)));
        assert_eq!(
            limiter.blocked_until(b, Some("svc"), now),
            Some(UnixMillis(60_000)),
            "same client elsewhere"
        );
        assert_eq!(limiter.blocked_until(b, Some("other"), now), None);
        assert_eq!(
            limiter.blocked_until(a, None, UnixMillis(60_000)),
            None,
            "the block ends with the window"
        );
    }
}
