//! `axonflow audit …`: verification of the audit trail.

use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use engine::audit::{self, ChainReport};
use serde_json::json;

use store::AuditRow;
use types::UnixMillis;

use crate::cli::{AuditCommand, AuditFilter};
use crate::{identity, load_for_store, report_problems};

pub fn run(command: AuditCommand) -> ExitCode {
    let args = match &command {
        AuditCommand::Verify { store, .. }
        | AuditCommand::Export { store, .. }
        | AuditCommand::Search { store, .. } => store,
    };
    let config = match load_for_store(args) {
        Ok(config) => config,
        Err(problems) => return report_problems(&problems),
    };
    crate::logging::init(config.log_format, "warn");
    let json = args.json;
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")
        .and_then(|runtime| {
            runtime.block_on(async {
                match &command {
                    AuditCommand::Verify { trusted_keys, .. } => verify(&config, trusted_keys, json).await,
                    AuditCommand::Export { filter, format, output, .. } => {
                        export(&config, filter, format, output.as_deref()).await
                    }
                    AuditCommand::Search { filter, limit, .. } => search(&config, filter, *limit, json).await,
                }
            })
        });
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
    let journal_dir = config.data_dir.join(crate::serve::AUDIT_JOURNAL_DIR);
    let journal_segments = engine::journal::segment_count(&journal_dir)
        .with_context(|| format!("cannot read the audit journal {}", journal_dir.display()))?;
    let ok = reports.iter().all(|r| r.problem.is_none());
    if json {
        let chains: Vec<_> = reports.iter().map(report_json).collect();
        let report = json!({"ok": ok, "trusted_keys": trusted.len(), "chains": chains,
                            "journal_segments": journal_segments});
        out(&report.to_string());
    } else {
        if journal_segments > 0 {
            // On stderr: the verdict stays the last line of stdout.
            report(&format!(
                "note: the audit journal ({}) holds {journal_segments} segment(s); records in them that are not \
                 in the database yet are not verified here. A running server stores them within moments, a \
                 stopped one at its next start.",
                journal_dir.display()
            ));
        }
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

/// Records matching the filter, as the CLI shows them.
struct Filter {
    tenant: Option<String>,
    kind: Option<String>,
    verdict: Option<String>,
    since: Option<UnixMillis>,
    until: Option<UnixMillis>,
}

impl Filter {
    fn parse(filter: &AuditFilter) -> Result<Filter> {
        let time = |text: &Option<String>, flag: &str| -> Result<Option<UnixMillis>> {
            text.as_deref()
                .map(|t| {
                    UnixMillis::parse_date_or_rfc3339(t)
                        .ok_or_else(|| anyhow!("{flag} must be a date or RFC 3339"))
                })
                .transpose()
        };
        Ok(Filter {
            tenant: filter.tenant.clone(),
            kind: filter.kind.clone(),
            verdict: filter.verdict.clone(),
            since: time(&filter.since, "--since")?,
            until: time(&filter.until, "--until")?,
        })
    }

    fn matches(&self, row: &AuditRow) -> bool {
        self.tenant.as_ref().is_none_or(|t| *t == row.tenant_id)
            && self.kind.as_ref().is_none_or(|k| *k == row.kind)
            && self.verdict.as_ref().is_none_or(|v| *v == row.verdict)
            && self.since.is_none_or(|s| row.ts >= s)
            && self.until.is_none_or(|u| row.ts < u)
    }
}

async fn export(
    config: &crate::config::Config,
    filter: &AuditFilter,
    format: &str,
    output: Option<&std::path::Path>,
) -> Result<bool> {
    use std::io::Write;
    let csv_format = match format {
        "jsonl" => false,
        "csv" => true,
        _ => bail!("--format must be jsonl or csv"),
    };
    let filter = Filter::parse(filter)?;
    let store = store::open(config.database_url.expose(), &store::OpenOptions::default())
        .await
        .context("cannot open the database")?;
    let total =
        store.count_audit(&store::AuditQuery::default()).await.context("cannot count audit records")?;
    let mut out: Box<dyn Write> = match output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let bar = progress_bar(total, output.is_none());
    if csv_format {
        writeln!(out, "{}", audit::EXPORT_CSV_HEADER)?;
    }
    let mut written = 0_u64;
    for chain in store.audit_chains().await.context("cannot list audit chains")? {
        let mut after = 0;
        loop {
            let page =
                store.audit_chain_page(&chain, after, 1000).await.context("cannot read the audit trail")?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            bar.inc(page.len() as u64);
            for row in page.iter().filter(|row| filter.matches(row)) {
                if csv_format {
                    writeln!(out, "{}", audit::export_csv(row))?;
                } else {
                    writeln!(out, "{}", audit::export_json(row))?;
                }
                written += 1;
            }
        }
    }
    out.flush().context("cannot write the export")?;
    bar.finish_and_clear();
    store.close().await;
    report(&format!("exported {written} audit records"));
    Ok(true)
}

async fn search(
    config: &crate::config::Config,
    filter: &AuditFilter,
    limit: u32,
    json: bool,
) -> Result<bool> {
    let parsed = Filter::parse(filter)?;
    let store = store::open(config.database_url.expose(), &store::OpenOptions::default())
        .await
        .context("cannot open the database")?;
    let query = store::AuditQuery {
        tenant_id: parsed.tenant,
        kind: parsed.kind,
        verdict: parsed.verdict,
        since: parsed.since,
        until: parsed.until,
        limit,
        ..store::AuditQuery::default()
    };
    let total = store.count_audit(&query).await.context("cannot count audit records")?;
    let rows = store.search_audit(&query).await.context("cannot search the audit trail")?;
    store.close().await;
    if json {
        out(&json!({"total": total, "entries": rows.iter().map(audit::export_json).collect::<Vec<_>>()})
            .to_string());
    } else {
        for row in &rows {
            out(&format!(
                "{}  {:<16} {:<14} {:<16} {:<24} {}",
                row.ts.to_rfc3339(),
                row.tenant_id,
                row.kind,
                row.verdict,
                row.actor,
                row.id
            ));
        }
        out(&format!("{} of {total} records", rows.len()));
    }
    Ok(true)
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
