//! Integration tests of the policy crate: the shipped bundle, the guide's examples, decisions, fail-closed.

mod bundle;
mod decisions;
mod fail_closed;
mod guide;
mod program;
mod support;
