//! `axonflow audit …`: verification of the audit trail.

use std::process::ExitCode;

use anyhow::{Context, Result};
use engine::audit::{self, ChainReport};
use serde_json::json;

use crate::cli::AuditCommand;
use crate::{identity, load_for_store, report_problems};

pub fn run(command: AuditCommand) -> ExitCode {
    let AuditCommand::Verify { store: args, trusted_keys } = command;
    let config = match load_for_store(&args) {
        Ok(config) => config,
        Err(problems) => return report_problems(&problems),
    };
    crate::logging::init(config.log_format, "warn");
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")
        .and_then(|runtime| runtime.block_on(verify(&config, &trusted_keys, args.json)));
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            report(&format!("error: {error:#}"));
            ExitCode::FAILURE
        }
    }
}

async fn verify(config: &crate::config::Config, extra: &[std::path::PathBuf], json: bool) -> Result<bool> {
    let trusted = identity::trusted_audit_keys(&config.data_dir, extra)?;
    let store = store::open(config.database_url.expose(), &store::OpenOptions::default())
        .await
        .context("cannot open the database")?;
    let total =
        store.count_audit(&store::AuditQuery::default()).await.context("cannot count audit records")?;
    let bar = progress_bar(total, json);
    let reports = audit::verify(store.as_ref(), &trusted, |checked| bar.set_position(checked))
        .await
        .context("cannot read the audit trail")?;
    bar.finish_and_clear();
    store.close().await;
    let ok = reports.iter().all(|r| r.problem.is_none());
    if json {
        let chains: Vec<_> = reports.iter().map(report_json).collect();
        out(&json!({"ok": ok, "trusted_keys": trusted.len(), "chains": chains}).to_string());
    } else {
        for report in &reports {
            let status = report.problem.as_ref().map_or_else(|| "ok".to_owned(), |p| format!("FAILED: {p}"));
            out(&format!(
                "chain {}: {} records, {} checkpoints, {} not yet signed: {status}",
                report.chain_id, report.records, report.checkpoints, report.unsigned_tail
            ));
        }
        if reports.is_empty() {
            out("no audit records yet");
        }
        out(if ok { "audit trail verified" } else { "audit trail FAILED verification" });
    }
    Ok(ok)
}

fn report_json(report: &ChainReport) -> serde_json::Value {
    json!({
        "chain_id": report.chain_id,
        "records": report.records,
        "checkpoints": report.checkpoints,
        "unsigned_tail": report.unsigned_tail,
        "ok": report.problem.is_none(),
        "problem": report.problem.as_ref().map(ToString::to_string),
    })
}

/// A progress bar on stderr for people; nothing for scripts (`--json`) or when stderr is not a terminal.
fn progress_bar(total: u64, json: bool) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if json || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("verifying {bar:40} {pos}/{len} records ({eta})")
    {
        bar.set_style(style);
    }
    bar
}

#[allow(clippy::print_stdout)]
fn out(line: &str) {
    println!("{line}");
}

#[allow(clippy::print_stderr)]
fn report(line: &str) {
    eprintln!("{line}");
}
