//! AxonFlow policies: Rego bundles, validation, compilation and evaluation to a [`Decision`], and an
//! `opa test`-style test runner with coverage.
//!
//! The crate is pure: it reads no files and keeps no global state (only per-thread copies of what it built,
//! tied to the policies they belong to). The caller gives it a [`Bundle`] (paths and texts), compiles it once
//! into a [`CompiledPolicy`] (shared behind an `Arc`, evaluated from many threads without a lock) and passes
//! every request as an [`Input`]. Native builtins (detectors) are injected as
//! [`Extension`]s, so this crate does not depend on `detect`.
//!
//! Fail closed: a policy that does not parse or compile is an error at compile time; an evaluation that
//! errors, panics, lacks the entry package or runs over its time budget is a [`Outcome::Deny`] with a reason.

mod bundle;
mod compile;
mod decision;
mod input;
mod net;
mod plan;
mod program;
mod redact;
mod report;
mod testing;
mod validate;

pub use bundle::{Bundle, FileKind, PolicyFile, Stage};
pub use compile::{CompileOptions, CompileStats, CompiledPolicy, Extension, ExtensionFn, PolicyError};
pub use decision::{Decision, LogEvent, LogValue, Match, Outcome, Timings};
pub use input::{Detection, Input, Principal};
pub use report::render_decision;
pub use testing::{CoverageReport, FileCoverage, TestCase, TestOptions, TestReport, TestStatus, run_tests};
pub use validate::{CheckReport, Limits, Problem, ProblemKind, check, validate};
