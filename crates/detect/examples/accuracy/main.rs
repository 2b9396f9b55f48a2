//! Per-kind precision, recall and F1 of the default detector set on a labelled corpus, and its speed.
//!
//! `cargo run -p detect --release --example accuracy -- crates/detect/corpus/corpus.jsonl`
//!
//! `--predictions FILE` also writes every document's findings as JSONL (`[[start, end, kind], ...]` a line),
//! which `corpus/compare_presidio.py` scores next to Presidio's.

#![allow(clippy::print_stdout)]

mod score;

use std::time::Instant;

use detect::{DetectorConfig, DetectorSet};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "crates/detect/corpus/corpus.jsonl".to_owned());
    // `--errors KIND` lists the documents where KIND was missed or wrongly found.
    let errors_for = std::env::args().skip_while(|a| a != "--errors").nth(1);
    let predictions = std::env::args().skip_while(|a| a != "--predictions").nth(1);
    let docs = score::parse(&std::fs::read_to_string(&path)?);
    let set = DetectorSet::new(DetectorConfig::default())?;
    let report = score::evaluate(&set, &docs);
    print!("{}", report.render());
    let checksum_ok = score::CHECKSUM_KINDS.iter().all(|k| {
        let c = report.per_kind.get(k).copied().unwrap_or_default();
        c.precision() >= 0.99 && c.recall() >= 0.98
    });
    println!(
        "bars: checksum kinds precision >= 0.99 and recall >= 0.98: {}; overall F1 >= 0.95: {}",
        if checksum_ok { "met" } else { "NOT met" },
        if report.total().f1() >= 0.95 { "met" } else { "NOT met" }
    );
    // Speed: scanning only, every document once after a warm-up pass.
    let mut findings = Vec::new();
    for doc in &docs {
        set.scan_into(&doc.text, &mut findings);
    }
    let started = Instant::now();
    for doc in &docs {
        set.scan_into(&doc.text, &mut findings);
    }
    let elapsed = started.elapsed();
    let bytes: usize = docs.iter().map(|d| d.text.len()).sum();
    println!(
        "scan only: {:.1} ms for {} docs, {:.0} docs/s, {:.1} MB/s (one thread)",
        elapsed.as_secs_f64() * 1e3,
        docs.len(),
        docs.len() as f64 / elapsed.as_secs_f64(),
        bytes as f64 / elapsed.as_secs_f64() / 1e6
    );
    if let Some(path) = predictions {
        let mut out = String::new();
        for doc in &docs {
            let spans: Vec<String> = set
                .scan(&doc.text)
                .iter()
                .map(|f| format!("[{},{},\"{}\"]", f.start, f.end, f.kind))
                .collect();
            out.push_str(&format!("[{}]\n", spans.join(",")));
        }
        std::fs::write(path, out)?;
    }
    if let Some(kind) = errors_for {
        let kind: detect::Kind = kind.parse()?;
        for doc in &docs {
            let findings = set.scan(&doc.text);
            let overlaps = |a: (usize, usize), b: (usize, usize)| a.0 < b.1 && b.0 < a.1;
            let gold: Vec<_> = doc.spans.iter().filter(|s| s.2 == kind).collect();
            let got: Vec<_> = findings.iter().filter(|f| f.kind == kind).collect();
            let missed = gold.iter().any(|g| !got.iter().any(|f| overlaps((f.start, f.end), (g.0, g.1))));
            let wrong = got
                .iter()
                .any(|f| !doc.spans.iter().any(|g| g.2 == kind && overlaps((f.start, f.end), (g.0, g.1))));
            if missed || wrong {
                let gold: Vec<_> = gold.iter().map(|s| &doc.text[s.0..s.1]).collect();
                let got: Vec<_> = got.iter().map(|f| f.text(&doc.text)).collect();
                let all: Vec<String> = findings
                    .iter()
                    .map(|f| format!("{}:{:.2}:{:?}", f.kind, f.confidence, f.text(&doc.text)))
                    .collect();
                println!("gold {gold:?} got {got:?} in {:?} all {all:?}", doc.text);
            }
        }
    }
    Ok(())
}
