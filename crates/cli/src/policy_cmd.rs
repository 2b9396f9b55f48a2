//! `axonflow policy test | check | eval`.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use detect::{DetectorConfig, DetectorSet};
use policy::{Bundle, CompiledPolicy, Limits, TestOptions};

use crate::bundle::{compile_options, default_bundle, load_paths, parse_stage};
use crate::cli::{BundleArgs, PolicyCommand};

pub fn run(command: PolicyCommand) -> ExitCode {
    match execute(command) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            report(&format!("error: {error:#}"));
            ExitCode::FAILURE
        }
    }
}

fn execute(command: PolicyCommand) -> Result<bool> {
    let detectors =
        Arc::new(DetectorSet::new(DetectorConfig::default()).context("cannot build the detectors")?);
    let options = compile_options(&detectors);
    match command {
        PolicyCommand::Test { bundle, coverage, fail_under } => {
            let bundle = load(&bundle)?;
            let report = policy::run_tests(
                &bundle,
                &options,
                &TestOptions { coverage: coverage || fail_under.is_some(), fail_under },
            );
            out(report.render().trim_end());
            Ok(report.success())
        }
        PolicyCommand::Check { bundle, json, max_compile_ms } => {
            let bundle = load(&bundle)?;
            let limits = Limits {
                max_compile_time: std::time::Duration::from_millis(max_compile_ms),
                ..Limits::default()
            };
            let report = policy::check(&bundle, &options, &limits);
            if json {
                let problems: Vec<_> = report
                    .problems
                    .iter()
                    .map(|p| serde_json::json!({"path": p.path, "message": p.message}))
                    .collect();
                out(&serde_json::json!({
                    "ok": report.problems.is_empty(),
                    "files": report.files,
                    "bytes": report.bytes,
                    "compile_ms": report.compile_time.map(|d| d.as_secs_f64() * 1000.0),
                    "evaluator": report.evaluator.as_ref().map(|e| if e.is_ok() { "compiled" } else { "interpreter" }),
                    "interpreter_reason": report.evaluator.as_ref().and_then(|e| e.as_ref().err()),
                    "problems": problems,
                })
                .to_string());
            } else {
                for problem in &report.problems {
                    out(&format!("{}: {}", problem.path.as_deref().unwrap_or("bundle"), problem.message));
                }
                let compile = report
                    .compile_time
                    .map_or_else(|| "did not compile".to_owned(), |d| format!("compiled in {d:.2?}"));
                out(&format!("{} files, {} bytes of policy, {compile}", report.files, report.bytes));
                match &report.evaluator {
                    Some(Ok(())) => out("decisions: compiled evaluator"),
                    Some(Err(reason)) => out(&format!("decisions: regorus interpreter ({reason})")),
                    None => {}
                }
                out(if report.problems.is_empty() { "ok" } else { "FAILED" });
            }
            Ok(report.problems.is_empty())
        }
        PolicyCommand::Eval { bundle, input, detect } => {
            let bundle = load(&bundle)?;
            let text = if input.as_os_str() == "-" {
                let mut text = String::new();
                std::io::stdin().read_to_string(&mut text).context("cannot read standard input")?;
                text
            } else {
                std::fs::read_to_string(&input).with_context(|| format!("cannot read {}", input.display()))?
            };
            let mut document: serde_json::Value =
                serde_json::from_str(&text).context("the input is not JSON")?;
            if detect {
                let query = document.get("query").and_then(|q| q.as_str()).unwrap_or_default().to_owned();
                let findings = engine::builtins::policy_extensions(&detectors)
                    .into_iter()
                    .find(|e| e.name == "axonflow.detect")
                    .map(|e| (e.function)(&[serde_json::Value::String(query)]))
                    .transpose()
                    .map_err(|e| anyhow!(e))?
                    .unwrap_or_default();
                document["detections"] = findings;
            }
            let policy = CompiledPolicy::compile(&bundle, &options).map_err(|e| anyhow!("{e}"))?;
            let decision = policy.evaluate_json(&document, Duration::from_millis(100));
            out(policy::render_decision(&decision).trim_end());
            Ok(true)
        }
    }
}

fn load(args: &BundleArgs) -> Result<Bundle> {
    let stage = parse_stage(&args.stage).ok_or_else(|| anyhow!("--stage must be production or staging"))?;
    if args.paths.is_empty() { Ok(default_bundle(stage)) } else { load_paths(&args.paths, stage) }
}

#[allow(clippy::print_stdout)]
fn out(text: &str) {
    println!("{text}");
}

#[allow(clippy::print_stderr)]
fn report(text: &str) {
    eprintln!("{text}");
}
