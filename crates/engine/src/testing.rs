//! Test support for the Redis backend: the test server and a fresh key prefix per test, so tests never see each
//! other's keys.
//!
//! Redis comes from `AXONFLOW_TEST_REDIS_URL`. Without it the Redis runs are skipped with a printed notice,
//! except under CI (`CI` set), where a missing server is a failure.

use std::time::Duration;

use types::Secret;

use crate::shared::{RedisOptions, RedisState, StateBackend};

/// The environment variable naming the Redis server for tests.
pub const REDIS_URL_VAR: &str = "AXONFLOW_TEST_REDIS_URL";

/// The test Redis server's URL, or `None` (with a notice) when none is configured outside CI.
#[allow(clippy::print_stderr)] // the notice is for the person running the tests
pub fn redis_url() -> Option<String> {
    match std::env::var(REDIS_URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{REDIS_URL_VAR} must be set under CI: the Redis tests may not be skipped there"
            );
            eprintln!("notice: {REDIS_URL_VAR} is not set; skipping the Redis run of this test");
            None
        }
    }
}

/// A key prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("axonflow-test-{}", uuid::Uuid::new_v4().simple())
}

/// Two nodes (two connections) on the test Redis under one fresh key prefix. Needs a Tokio runtime.
pub fn redis_nodes() -> Option<(StateBackend, StateBackend)> {
    let url = Secret::new(redis_url()?);
    let options = RedisOptions { key_prefix: unique_prefix(), timeout: Duration::from_secs(2) };
    let node = || StateBackend::Redis(RedisState::connect(&url, options.clone()).expect("test redis url"));
    Some((node(), node()))
}

/// The backends a limiter or session test runs against: memory always, Redis (fresh prefix) when configured.
pub fn test_backends() -> Vec<StateBackend> {
    let mut backends = vec![StateBackend::Memory];
    backends.extend(redis_nodes().map(|(node, _)| node));
    backends
}
