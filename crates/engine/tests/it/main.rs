//! Engine integration tests, on both store backends.

mod audit;
mod auth;
mod protection;
