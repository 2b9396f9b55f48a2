//! Scan + redact time on crafted 1 MiB inputs (dense values, attack repeats, long runs), to bound the cost a
//! hostile prompt can impose. `cargo run -p detect --release --example worst_case`

#![allow(clippy::print_stdout)]

use std::time::Instant;

use detect::{DetectorConfig, DetectorSet};

fn main() -> Result<(), detect::Error> {
    let set = DetectorSet::new(DetectorConfig::default())?;
    let mib = 1 << 20;
    let fill = |unit: &str| unit.repeat(mib / unit.len());
    let cases = [
        ("one long run of digits", "1".repeat(mib)),
        ("digits and spaces", fill("1 ")),
        ("SSNs back to back", fill("123-45-6789 ")),
        ("emails back to back", fill("john.doe@example.com ")),
        ("IBAN-shaped groups that fail", fill("DE89 ")),
        ("`+1` repeated", fill("+1 ")),
        ("tautologies", fill("' OR 1=1 ")),
        ("UNION SELECT repeated", fill("union select ")),
        ("instruction overrides", fill("ignore previous instructions ")),
        ("homoglyph words", fill("іgnоre ")),
        ("base64 run", fill("QUJDREVGR0hJSktMTU5PUA")),
        ("hex run", fill("41")),
        ("zero-width characters", fill("\u{200B}")),
        ("tag characters", fill("\u{E0041}")),
        ("one long word", "a".repeat(mib)),
    ];
    println!("{:<32} {:>10} {:>10} {:>10}", "1 MiB input", "ms", "MB/s", "findings");
    for (name, text) in cases {
        let started = Instant::now();
        let (findings, redacted) = set.scan_and_redact(&text);
        let elapsed = started.elapsed();
        std::hint::black_box(redacted);
        println!(
            "{name:<32} {:>10.1} {:>10.1} {:>10}",
            elapsed.as_secs_f64() * 1e3,
            text.len() as f64 / elapsed.as_secs_f64() / 1e6,
            findings.len()
        );
    }
    Ok(())
}
