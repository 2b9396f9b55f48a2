//! The `axonflow` command: parses the command line, loads and validates the configuration, wires the crates
//! together and maps the outcome to an exit code. The only crate that knows clap.

mod audit_cmd;
mod bundle;
mod cli;
mod config;
mod detect_cmd;
mod identity;
mod license_cmd;
mod logging;
mod policy_cmd;
mod protect_cmd;
mod serve;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, ConfigCommand, ConfigSource, ServeArgs, StoreArgs};
use crate::config::{Config, KEYS, Layers, Problem};

/// Exit code for a configuration or usage error.
const EXIT_CONFIG: u8 = 2;

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args, serve::Mode::Both),
        Command::Agent(args) => serve(args, serve::Mode::AgentOnly),
        Command::Orchestrator(args) => serve(args, serve::Mode::OrchestratorOnly),
        Command::Config(ConfigCommand::Check { source, json }) => config_check(&source, json),
        Command::Config(ConfigCommand::Keys { json }) => config_keys(json),
        Command::License(command) => license_cmd::run(command),
        Command::EmergencyAccess(command) => license_cmd::run_emergency(command),
        Command::Audit(command) => audit_cmd::run(command),
        Command::Detect(args) => detect_cmd::run(&args),
        Command::Policy(command) => policy_cmd::run(command),
        Command::Keys(command) => protect_cmd::keys(command),
        Command::Retention(command) => protect_cmd::retention(command),
        Command::Subject(command) => protect_cmd::subject(command),
    }
}

/// Loads the configuration for a command that works on a deployment's store (`license`, …).
pub(crate) fn load_for_store(args: &StoreArgs) -> Result<Config, Vec<Problem>> {
    let mut layers = layers(&args.source);
    layers.flag("data_dir", "--data-dir", args.data_dir.clone());
    layers.validate()
}

/// Prints configuration problems to stderr and returns the exit code for them.
#[allow(clippy::print_stderr)]
pub(crate) fn report_problems(problems: &[Problem]) -> ExitCode {
    eprintln!("error: the configuration is invalid:");
    for problem in problems {
        eprintln!("  {problem}");
    }
    ExitCode::from(EXIT_CONFIG)
}

fn layers(source: &ConfigSource) -> Layers {
    let mut layers = Layers::default();
    if let Some(path) = &source.config {
        layers.file(path);
    }
    layers.env(|name| std::env::var(name).ok());
    layers
}

fn load(source: &ConfigSource, args: Option<&ServeArgs>) -> Result<Config, Vec<Problem>> {
    let mut layers = layers(source);
    if let Some(args) = args {
        layers.flag("data_dir", "--data-dir", args.data_dir.clone());
        layers.flag("agent.listen", "--agent-listen", args.agent_listen.clone());
        layers.flag("orchestrator.listen", "--orchestrator-listen", args.orchestrator_listen.clone());
        layers.flag("orchestrator.url", "--orchestrator-url", args.orchestrator_url.clone());
        layers.flag("tls.min_version", "--tls-min-version", args.tls_min_version.clone());
        layers.flag("tls.cert_file", "--tls-cert", args.tls_cert.clone());
        layers.flag("tls.key_file", "--tls-key", args.tls_key.clone());
        layers.flag("http.redirect_listen", "--redirect-listen", args.redirect_listen.clone());
        layers.flag("log.format", "--log-format", args.log_format.clone());
        layers.flag("log.level", "--log-level", args.log_level.clone());
    }
    layers.validate()
}

#[allow(clippy::print_stderr)]
fn serve(args: ServeArgs, mode: serve::Mode) -> ExitCode {
    let config = match load(&args.source, Some(&args)) {
        Ok(config) => config,
        Err(problems) => return report_problems(&problems),
    };
    logging::init(config.log_format, &config.log_level);
    without_transparent_huge_pages();
    let runtime = match runtime_builder(config.worker_threads).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve::run(config, mode)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "axonflow stopped on an error");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Turns transparent huge pages off for this process. The allocator asks for them on its arenas, and the
/// kernel then zeroes 2 MiB at the first touch of each: 3.6-4.6 ms with the request worker stalled, and 4-5% of
/// the server's CPU at pre-check saturation (the arenas' partly purged huge pages are split and faulted in
/// again), against 0.3% in 4 KiB faults without them (BENCHMARKS.md, seventeenth run). Databases and caches
/// that care about latency (Redis, MongoDB) ask the same of their hosts.
fn without_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(error) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::warn!(error = %error, "cannot turn transparent huge pages off for this process");
    }
}

/// The runtime that serves requests. On one core (or with `runtime.worker_threads = 1`) it is the single-threaded
/// scheduler: the multi-threaded one with a single worker does the same work with more overhead per wake-up (a
/// lock-free queue shared with the other threads, its LIFO slot, parking through the I/O driver), and measured
/// slower for pre-check at saturation (BENCHMARKS.md, fourteenth run).
fn runtime_builder(worker_threads: usize) -> tokio::runtime::Builder {
    let threads = match worker_threads {
        0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        n => n,
    };
    if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    }
}

#[allow(clippy::print_stdout)]
fn config_check(source: &ConfigSource, json: bool) -> ExitCode {
    let problems = load(source, None).err().unwrap_or_default();
    if json {
        let problems: Vec<_> = problems
            .iter()
            .map(|p| serde_json::json!({"location": p.location, "message": p.message}))
            .collect();
        println!("{}", serde_json::json!({"ok": problems.is_empty(), "problems": problems}));
    } else if problems.is_empty() {
        println!("configuration ok");
    } else {
        for problem in &problems {
            println!("{problem}");
        }
        println!("{} problem{} found", problems.len(), if problems.len() == 1 { "" } else { "s" });
    }
    if problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_CONFIG) }
}

#[allow(clippy::print_stdout)]
fn config_keys(json: bool) -> ExitCode {
    if json {
        let keys: Vec<_> =
            KEYS.iter().map(|k| serde_json::json!({"key": k.path, "env": k.env, "help": k.help})).collect();
        println!("{}", serde_json::Value::Array(keys));
    } else {
        for key in KEYS {
            println!("{:<26} {:<36} {}", key.path, key.env, key.help);
        }
    }
    ExitCode::SUCCESS
}
