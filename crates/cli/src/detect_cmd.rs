//! `axonflow detect`: the native detectors on files and pipes — the way people try them and the way the
//! accuracy report drives them.

use std::io::{BufRead, BufWriter, Read, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use detect::{DetectorConfig, DetectorSet, Finding};
use serde_json::json;

use crate::cli::DetectArgs;

pub fn run(args: &DetectArgs) -> ExitCode {
    match scan(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            report(&format!("error: {error:#}"));
            ExitCode::FAILURE
        }
    }
}

fn scan(args: &DetectArgs) -> Result<()> {
    let config = DetectorConfig { threshold: args.threshold, ..DetectorConfig::default() };
    let detectors = DetectorSet::new(config).context("invalid detector settings")?;
    let input: Box<dyn Read> = match args.file.as_deref() {
        None => Box::new(std::io::stdin().lock()),
        Some(path) if path.as_os_str() == "-" => Box::new(std::io::stdin().lock()),
        Some(path) => {
            Box::new(std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?)
        }
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut findings = Vec::new();
    if args.lines {
        for (number, line) in std::io::BufReader::new(input).lines().enumerate() {
            let line = line.context("cannot read the input (is it UTF-8?)")?;
            findings.clear();
            detectors.scan_into(&line, &mut findings);
            emit(&mut out, args, &detectors, &line, &findings, Some(number + 1))?;
        }
    } else {
        let mut text = String::new();
        std::io::BufReader::new(input)
            .read_to_string(&mut text)
            .context("cannot read the input (is it UTF-8?)")?;
        detectors.scan_into(&text, &mut findings);
        emit(&mut out, args, &detectors, &text, &findings, None)?;
    }
    out.flush().context("cannot write the output")
}

fn emit(
    out: &mut impl Write,
    args: &DetectArgs,
    detectors: &DetectorSet,
    text: &str,
    findings: &[Finding],
    line: Option<usize>,
) -> Result<()> {
    if args.json {
        let mut object = json!({"findings": findings.iter().map(finding_json).collect::<Vec<_>>()});
        if let Some(line) = line {
            object["line"] = line.into();
        }
        if args.redact {
            object["redacted"] = detectors.redact(text, findings).into_owned().into();
        }
        writeln!(out, "{object}")?;
    } else if args.redact {
        let redacted = detectors.redact(text, findings);
        if line.is_some() { writeln!(out, "{redacted}")? } else { write!(out, "{redacted}")? }
    } else {
        for finding in findings {
            let prefix = line.map(|l| format!("{l}: ")).unwrap_or_default();
            let validator = finding.validator.map(|v| format!(" {}", v.as_str())).unwrap_or_default();
            writeln!(
                out,
                "{prefix}{} {} {} {:.2}{validator}",
                finding.kind.as_str(),
                finding.start,
                finding.end,
                finding.confidence
            )?;
        }
    }
    Ok(())
}

fn finding_json(finding: &Finding) -> serde_json::Value {
    json!({
        "kind": finding.kind.as_str(),
        "category": finding.category().as_str(),
        "start": finding.start,
        "end": finding.end,
        "confidence": (f64::from(finding.confidence) * 1000.0).round() / 1000.0,
        "validator": finding.validator.map(|v| v.as_str()),
    })
}

#[allow(clippy::print_stderr)]
fn report(line: &str) {
    eprintln!("{line}");
}
