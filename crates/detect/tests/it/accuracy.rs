//! The accuracy bars of the detectors issue, on the committed corpus (`corpus/corpus.jsonl`, written by
//! `corpus/generate.py` with a fixed seed). The full report: `cargo run -p detect --release --example accuracy`.

#[path = "../../examples/accuracy/score.rs"]
mod score;

use detect::{DetectorConfig, DetectorSet};

const CORPUS: &str = include_str!("../../corpus/corpus.jsonl");

#[test]
fn corpus_meets_the_bars() {
    let docs = score::parse(CORPUS);
    let positives: usize = docs.iter().map(|d| d.spans.len()).sum();
    let negatives = docs.iter().filter(|d| d.spans.is_empty()).count();
    assert!(positives >= 5000 && negatives >= 5000, "{positives} labelled spans, {negatives} hard negatives");

    let set = DetectorSet::new(DetectorConfig::default()).unwrap();
    let report = score::evaluate(&set, &docs);
    let table = report.render();
    for kind in score::CHECKSUM_KINDS {
        let c = report.per_kind[kind];
        assert!(c.precision() >= 0.99 && c.recall() >= 0.98, "{kind}: below the checksum bar\n{table}");
    }
    assert!(report.total().f1() >= 0.95, "overall F1 below 0.95\n{table}");
}
