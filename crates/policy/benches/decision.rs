//! Policy decision and compile benchmarks: the default bundle (native detections + RBAC + PII redaction +
//! HIPAA) against the guide's pure-Rego PII example (regex builtins), on a 1 KiB prompt.
//!
//! `cargo bench -p policy --bench decision` prints criterion's means and, after them, p50/p99 latencies of a
//! single-threaded loop and the throughput of two threads sharing one `CompiledPolicy`. With
//! `PROFILE_DECISIONS=N` in the environment it runs only N default-bundle decisions (for profilers); with
//! `POLICY_ROOT=DIR`, the bundle laid out under DIR stands in for the shipped one. Decisions are made with
//! `CompiledPolicy::decide`, as the request paths make them (log values not converted to JSON).
#![allow(clippy::print_stderr, missing_docs)]

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use policy::{Bundle, CompileOptions, CompiledPolicy, Detection, Input, Outcome, Stage};

const BUDGET: Duration = Duration::from_millis(50);

/// The allocator of the `axonflow` binary, so the figures are the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn tree(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            tree(root, &path, out);
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            out.push((path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned(), text));
        }
    }
}

/// The shipped bundle, or the bundle laid out under `$POLICY_ROOT` (a copy of `policies/` with files removed
/// or rules changed, to see what each part of the bundle costs).
fn default_bundle() -> Bundle {
    let root = std::env::var_os("POLICY_ROOT").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies"),
        std::path::PathBuf::from,
    );
    let mut files = Vec::new();
    tree(&root, &root, &mut files);
    Bundle::from_layout(files, Stage::Production)
}

/// The guide's section 3.2 example with its double assignment fixed, and `pii_violations` defined empty.
fn guide_bundle() -> Bundle {
    let fixed = include_str!("../tests/guide/pii.rego")
        .replace(
            "query := regex.replace(input.query, ssn_pattern",
            "q1 := regex.replace(input.query, ssn_pattern",
        )
        .replace(
            "query := regex.replace(query, credit_card_pattern",
            "q2 := regex.replace(q1, credit_card_pattern",
        )
        .replace("query := regex.replace(query, email_pattern", "q3 := regex.replace(q2, email_pattern")
        .replace("query := regex.replace(query, phone_pattern", "query := regex.replace(q3, phone_pattern");
    Bundle::from_sources(vec![
        ("pii.rego".into(), fixed),
        ("helpers.rego".into(), "package axonflow.policy\npii_violations := set()\n".into()),
    ])
}

/// A 1 KiB prompt with an SSN, an email and a phone number, about an assigned patient.
fn prompt() -> (String, Vec<Detection>) {
    let mut query = String::from(
        "Summarise the visit notes for patient P-1042. SSN 123-45-6789, reach them at jo.doe@example.com or 555-123-4567. ",
    );
    let filler = "The patient reported mild symptoms after the change of medication and asked about follow-up options. ";
    while query.len() < 1024 {
        query.push_str(filler);
    }
    query.truncate(1024);
    let find = |needle: &str| {
        let start = query.find(needle).unwrap_or(0);
        (start, start + needle.len())
    };
    let detection = |kind: &str, (start, end): (usize, usize)| Detection {
        kind: kind.into(),
        category: "pii".into(),
        start,
        end,
        confidence: 0.95,
    };
    let detections = vec![
        detection("ssn", find("123-45-6789")),
        detection("email", find("jo.doe@example.com")),
        detection("phone", find("555-123-4567")),
    ];
    (query, detections)
}

fn input(with_detections: bool) -> Input {
    let (query, detections) = prompt();
    let context = serde_json::json!({
        "user_role": "doctor", "user_id": "d1", "tenant_id": "t1", "client_id": "c1",
        "data_classification": "phi", "assigned_patients": ["P-1042"], "access_reason": "treatment"
    });
    Input {
        query,
        request_type: "llm_chat".into(),
        context: context.as_object().cloned().unwrap_or_default(),
        principal: None,
        detections: if with_detections { detections } else { Vec::new() },
    }
}

fn compile(bundle: &Bundle) -> CompiledPolicy {
    CompiledPolicy::compile(bundle, &CompileOptions::default()).unwrap_or_else(|e| panic!("compile: {e}"))
}

/// The same bundle with every decision in regorus' interpreter (the compiled evaluator turned off).
fn compile_interpreted(bundle: &Bundle) -> CompiledPolicy {
    let options = CompileOptions { compiled_evaluator: false, ..CompileOptions::default() };
    CompiledPolicy::compile(bundle, &options).unwrap_or_else(|e| panic!("compile: {e}"))
}

fn benches(c: &mut Criterion) {
    let default = compile(&default_bundle());
    let interpreted = compile_interpreted(&default_bundle());
    let guide = compile(&guide_bundle());
    let guide_interpreted = compile_interpreted(&guide_bundle());
    let native = input(true);
    let regex = input(false);
    let decision = default.decide(&native, BUDGET);
    assert!(matches!(decision.outcome, Outcome::Redact { .. }) && decision.timings.compiled);
    assert_eq!(interpreted.decide(&native, BUDGET).outcome, decision.outcome);
    let decision = guide.decide(&regex, BUDGET);
    assert!(matches!(decision.outcome, Outcome::Redact { .. }) && decision.timings.compiled);

    c.bench_function("decision/default_bundle_native_detections_1KiB", |b| {
        b.iter(|| black_box(default.decide(black_box(&native), BUDGET)))
    });
    c.bench_function("decision/default_bundle_native_detections_1KiB_interpreter", |b| {
        b.iter(|| black_box(interpreted.decide(black_box(&native), BUDGET)))
    });
    c.bench_function("decision/guide_pii_example_regex_1KiB", |b| {
        b.iter(|| black_box(guide.decide(black_box(&regex), BUDGET)))
    });
    c.bench_function("decision/guide_pii_example_regex_1KiB_interpreter", |b| {
        b.iter(|| black_box(guide_interpreted.decide(black_box(&regex), BUDGET)))
    });
    let bundle = default_bundle();
    c.bench_function("compile/default_bundle", |b| b.iter(|| black_box(compile(black_box(&bundle)))));
}

fn percentiles(name: &str, policy: &CompiledPolicy, input: &Input) {
    let mut samples: Vec<Duration> = (0..20_000)
        .map(|_| {
            let started = Instant::now();
            black_box(policy.decide(input, BUDGET));
            started.elapsed()
        })
        .collect();
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    eprintln!(
        "{name}: p50 {:?} p99 {:?} max {:?} (20000 single-threaded decisions)",
        at(0.5),
        at(0.99),
        at(1.0)
    );
}

fn threads(policy: &Arc<CompiledPolicy>, input: &Arc<Input>, n: usize) {
    let per_thread = 20_000;
    let started = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (policy, input) = (Arc::clone(policy), Arc::clone(input));
            std::thread::spawn(move || {
                let cpu = thread_cpu_time();
                (0..per_thread).for_each(|_| drop(black_box(policy.decide(&input, BUDGET))));
                thread_cpu_time().zip(cpu).map(|(after, before)| after.saturating_sub(before))
            })
        })
        .collect();
    let cpu: Vec<Option<Duration>> = handles.into_iter().map(|h| h.join().ok().flatten()).collect();
    let rate = (n * per_thread) as f64 / started.elapsed().as_secs_f64();
    // Decisions per CPU-second of each thread: unlike the wall-clock rate it does not depend on other load on
    // the machine, and it drops when threads contend (shared reference counts, locks, allocator).
    let per_cpu: Vec<String> = cpu
        .iter()
        .map(|c| c.map_or("?".to_owned(), |c| format!("{:.0}", per_thread as f64 / c.as_secs_f64())))
        .collect();
    eprintln!(
        "default bundle, {n} threads sharing one CompiledPolicy: {rate:.0} decisions/s (wall), per thread {} decisions per CPU-second",
        per_cpu.join(" / ")
    );
}

/// This thread's user + system CPU time, from `/proc/thread-self/stat` (Linux; clock ticks taken as 1/100 s).
fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

criterion_group!(decision, benches);

fn main() {
    // `PROFILE_DECISIONS=N target/release/deps/decision-…`: only N default-bundle decisions, for profilers
    // (`perf record`, `valgrind --tool=callgrind`).
    if let Some(n) = std::env::var("PROFILE_DECISIONS").ok().and_then(|n| n.parse::<u32>().ok()) {
        let policy = compile(&default_bundle());
        let input = input(true);
        let started = Instant::now();
        (0..n).for_each(|_| drop(black_box(policy.decide(black_box(&input), BUDGET))));
        eprintln!("{n} decisions, mean {:?}", started.elapsed() / n.max(1));
        return;
    }
    decision();
    Criterion::default().configure_from_args().final_summary();
    let default = Arc::new(compile(&default_bundle()));
    let guide = compile(&guide_bundle());
    percentiles("default bundle, native detections", &default, &input(true));
    percentiles(
        "default bundle, native detections, interpreter",
        &compile_interpreted(&default_bundle()),
        &input(true),
    );
    percentiles("guide PII example, regex builtins", &guide, &input(false));
    percentiles(
        "guide PII example, regex builtins, interpreter",
        &compile_interpreted(&guide_bundle()),
        &input(false),
    );
    let started = Instant::now();
    let compiled = compile(&default_bundle());
    eprintln!("compile default bundle: {:?} (stats: {:?})", started.elapsed(), compiled.stats());
    let native = Arc::new(input(true));
    threads(&default, &native, 1);
    threads(&default, &native, 2);
}
