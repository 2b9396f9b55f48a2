//! Domain vocabulary shared by every AxonFlow crate: secrets that never print, identifiers and the clock.
//!
//! This crate does no I/O and knows nothing about HTTP, SQL or the command line.

mod secret;
mod time;

pub use secret::Secret;
pub use time::{Clock, ManualClock, SystemClock, UnixMillis};
