//! End-to-end tests: the real `axonflow` binary on ephemeral ports, driven over HTTPS.

mod audit;
mod auth;
mod config_cli;
mod detect_cli;
mod gateway;
mod http;
mod openapi;
mod policy_cli;
mod policy_lifecycle;
mod protection;
mod proxy;
mod redis;
mod sdk;
mod support;
mod tls;
mod upstream;
mod user_tokens;
