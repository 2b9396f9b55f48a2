//! Scores a `DetectorSet` against the labelled corpus written by `corpus/generate.py`; shared by the `accuracy`
//! example (the report) and the integration test (the bars).
//!
//! A labelled span is found when a finding of the same kind overlaps it; a finding is a true positive when it
//! overlaps a labelled span of its kind. A SQL or prompt-injection finding of another kind that overlaps a
//! labelled span of the same category is neither right nor wrong (a payload is often several kinds at once:
//! `'; WAITFOR DELAY '0:0:5'--` is time-based and a comment trick); every other finding is a false positive.

use std::collections::BTreeMap;

use detect::{Category, DetectorSet, Kind};

#[derive(Debug)]
pub struct Doc {
    pub text: String,
    pub spans: Vec<(usize, usize, Kind)>,
}

pub fn parse(jsonl: &str) -> Vec<Doc> {
    jsonl
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("corpus line is JSON");
            let text = v["text"].as_str().expect("text").to_owned();
            let spans = v["spans"]
                .as_array()
                .expect("spans")
                .iter()
                .map(|s| {
                    let kind = s[2].as_str().expect("kind").parse::<Kind>().expect("known kind");
                    (s[0].as_u64().expect("start") as usize, s[1].as_u64().expect("end") as usize, kind)
                })
                .collect();
            Doc { text, spans }
        })
        .collect()
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    /// Labelled spans, and how many of them were found.
    pub gold: usize,
    pub found: usize,
    /// Findings, and how many of them were right.
    pub predicted: usize,
    pub correct: usize,
}

impl Counts {
    pub fn precision(&self) -> f64 {
        if self.predicted == 0 { 1.0 } else { self.correct as f64 / self.predicted as f64 }
    }

    pub fn recall(&self) -> f64 {
        if self.gold == 0 { 1.0 } else { self.found as f64 / self.gold as f64 }
    }

    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) }
    }

    fn add(&mut self, other: &Counts) {
        self.gold += other.gold;
        self.found += other.found;
        self.predicted += other.predicted;
        self.correct += other.correct;
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub per_kind: BTreeMap<Kind, Counts>,
    pub documents: usize,
    pub negative_documents_with_findings: usize,
}

impl Report {
    pub fn total(&self) -> Counts {
        let mut total = Counts::default();
        for c in self.per_kind.values() {
            total.add(c);
        }
        total
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{:<26} {:>6} {:>9} {:>9} {:>9} {:>7}\n",
            "kind", "gold", "predicted", "precision", "recall", "f1"
        ));
        for (kind, c) in &self.per_kind {
            out.push_str(&format!(
                "{:<26} {:>6} {:>9} {:>9.4} {:>9.4} {:>7.4}\n",
                kind.as_str(),
                c.gold,
                c.predicted,
                c.precision(),
                c.recall(),
                c.f1()
            ));
        }
        let t = self.total();
        out.push_str(&format!(
            "{:<26} {:>6} {:>9} {:>9.4} {:>9.4} {:>7.4}\n",
            "overall (micro)",
            t.gold,
            t.predicted,
            t.precision(),
            t.recall(),
            t.f1()
        ));
        out.push_str(&format!(
            "documents: {}, hard-negative documents with a finding: {}\n",
            self.documents, self.negative_documents_with_findings
        ));
        out
    }
}

pub fn evaluate(set: &DetectorSet, docs: &[Doc]) -> Report {
    let mut report = Report { documents: docs.len(), ..Report::default() };
    let mut findings = Vec::new();
    for doc in docs {
        set.scan_into(&doc.text, &mut findings);
        if doc.spans.is_empty() && !findings.is_empty() {
            report.negative_documents_with_findings += 1;
        }
        let overlaps = |a: (usize, usize), b: (usize, usize)| a.0 < b.1 && b.0 < a.1;
        for &(start, end, kind) in &doc.spans {
            let c = report.per_kind.entry(kind).or_default();
            c.gold += 1;
            if findings.iter().any(|f| f.kind == kind && overlaps((f.start, f.end), (start, end))) {
                c.found += 1;
            }
        }
        for f in &findings {
            let same_kind =
                doc.spans.iter().any(|&(s, e, k)| k == f.kind && overlaps((f.start, f.end), (s, e)));
            let neutral = !same_kind
                && matches!(f.kind.category(), Category::Sqli | Category::PromptInjection)
                && doc.spans.iter().any(|&(s, e, k)| {
                    k.category() == f.kind.category() && overlaps((f.start, f.end), (s, e))
                });
            if neutral {
                continue;
            }
            let c = report.per_kind.entry(f.kind).or_default();
            c.predicted += 1;
            if same_kind {
                c.correct += 1;
            }
        }
    }
    report
}

/// Kinds confirmed by a checksum: the bars are precision >= 0.99 and recall >= 0.98 for these.
pub const CHECKSUM_KINDS: &[Kind] = &[
    Kind::CreditCard,
    Kind::Iban,
    Kind::UsBankRouting,
    Kind::UkNhs,
    Kind::CaSin,
    Kind::Aadhaar,
    Kind::Gstin,
];
