//! Speed of the default detector set on one core: detect + redact on a 1 KiB prompt, and clean-text throughput.
//!
//! `cargo bench -p detect --bench detect`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use detect::{DetectorConfig, DetectorSet};

/// Ordinary prose: apostrophes, a few numbers, punctuation, nothing to find.
const PROSE: &[&str] = &[
    "Could you summarise the quarterly report for the leadership team? ",
    "We shipped 3 releases this month and the customer satisfaction score went up. ",
    "Please keep the tone friendly but concise, and don't mention internal project names. ",
    "The meeting moved to Thursday at 10 because half the team is travelling. ",
    "Our onboarding guide explains how new hires request access to the analytics dashboards. ",
    "Make sure the summary covers revenue, churn and the top 5 support themes. ",
    "If anything is unclear, ask a follow-up question rather than guessing. ",
    "The previous draft was too long; aim for about two paragraphs this time. ",
];

/// Ordinary technical prose that is full of the words SQL and prompt-injection patterns start from (select,
/// update, drop, rules, mode, instructions, `;`, `=`) without being an attack: the slow path of the gate.
const TECHNICAL: &[&str] = &[
    "To update the dashboard, select the date range and drop any filter you no longer need. ",
    "The rules for the new mode are in the instructions; follow the previous guide where it differs. ",
    "Set retries = 3 and timeout = 30 in the config, then restart the service. ",
    "Grant the reviewers access before the release and delete the draft branch afterwards. ",
    "The union of both lists is what we load into the report each morning. ",
    "Please ignore the warnings from the linter for now, they are tracked in the backlog. ",
];

fn technical(len: usize) -> String {
    let mut text = String::with_capacity(len + 128);
    let mut i = 0;
    while text.len() < len {
        text.push_str(TECHNICAL[i % TECHNICAL.len()]);
        i += 1;
    }
    text.truncate(len);
    text
}

fn prose(len: usize) -> String {
    let mut text = String::with_capacity(len + 128);
    let mut i = 0;
    while text.len() < len {
        text.push_str(PROSE[i % PROSE.len()]);
        i += 1;
    }
    text.truncate(len);
    text
}

/// A 1 KiB prompt with an SSN, an email, a phone number and a card among ordinary sentences.
fn prompt_with_pii() -> String {
    let mut text = prose(1024 - 170);
    text.push_str(
        "Customer John Smith, SSN 123-45-6789, email john.smith@example.com, phone (415) 555-2671, paid with card 4532 0151 1283 0366 on file. ",
    );
    while text.len() < 1024 {
        text.push(' ');
    }
    text.truncate(1024);
    text
}

fn benches(c: &mut Criterion) {
    let set = DetectorSet::new(DetectorConfig::default()).expect("default config builds");
    let mut findings = Vec::new();

    let pii = prompt_with_pii();
    let clean_1k = prose(1024);
    let mut group = c.benchmark_group("prompt_1kib");
    group.throughput(Throughput::Bytes(1024));
    group.bench_function("detect_and_redact_with_pii", |b| {
        b.iter(|| {
            set.scan_into(black_box(&pii), &mut findings);
            black_box(set.redact(&pii, &findings).len())
        })
    });
    group.bench_function("detect_and_redact_clean", |b| {
        b.iter(|| {
            set.scan_into(black_box(&clean_1k), &mut findings);
            black_box(set.redact(&clean_1k, &findings).len())
        })
    });
    group.finish();

    let clean = prose(64 * 1024);
    assert!(
        set.scan(&clean).is_empty() && set.scan(&technical(64 * 1024)).is_empty(),
        "bench texts must be clean"
    );
    let letters: String = clean.chars().filter(|c| c.is_ascii_alphabetic() || *c == ' ').collect();
    let mut group = c.benchmark_group("clean_text_64kib");
    group.throughput(Throughput::Bytes(clean.len() as u64));
    group.bench_function("prose_with_numbers_and_punctuation", |b| {
        b.iter(|| {
            set.scan_into(black_box(&clean), &mut findings);
            black_box(findings.len())
        })
    });
    let technical = technical(64 * 1024);
    group.bench_function("technical_prose_full_of_trigger_words", |b| {
        b.iter(|| {
            set.scan_into(black_box(&technical), &mut findings);
            black_box(findings.len())
        })
    });
    group.throughput(Throughput::Bytes(letters.len() as u64));
    group.bench_function("letters_and_spaces_only", |b| {
        b.iter(|| {
            set.scan_into(black_box(&letters), &mut findings);
            black_box(findings.len())
        })
    });
    group.finish();

    c.bench_function("build_detector_set", |b| b.iter(|| DetectorSet::new(DetectorConfig::default())));
}

criterion_group!(detect_benches, benches);
criterion_main!(detect_benches);
