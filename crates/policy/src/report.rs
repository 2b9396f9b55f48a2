//! Text renderings for the CLI.

use std::fmt::Write;

use crate::decision::{Decision, Outcome};

/// The decision as `axonflow policy eval` prints it: outcome, reasons, warnings, matches, logs, timings.
pub fn render_decision(decision: &Decision) -> String {
    let mut out = String::new();
    let _ = match &decision.outcome {
        Outcome::Allow => writeln!(out, "decision: allow"),
        Outcome::Redact { text } => writeln!(out, "decision: redact\nredacted_query: {text}"),
        Outcome::RequireApproval { reasons, redacted } => {
            let _ = writeln!(out, "decision: require_approval");
            for reason in reasons {
                let _ = writeln!(out, "  reason: {reason}");
            }
            match redacted {
                Some(text) => writeln!(out, "redacted_query: {text}"),
                None => Ok(()),
            }
        }
        Outcome::Deny { reasons } => {
            let _ = writeln!(out, "decision: deny");
            for reason in reasons {
                let _ = writeln!(out, "  reason: {reason}");
            }
            Ok(())
        }
    };
    for warning in &decision.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    for matched in &decision.matched {
        let _ = writeln!(out, "matched: {} ({})", matched.package, matched.rules.join(", "));
    }
    for log in &decision.logs {
        let _ = writeln!(out, "log: {} {}", log.name, log.value);
    }
    let t = decision.timings;
    let _ = writeln!(out, "timings: input {:?}, evaluation {:?}, total {:?}", t.input, t.evaluation, t.total);
    out
}
