//! Engine integration tests, on both store backends.

mod auth;
