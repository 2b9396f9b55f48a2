//! Every line of `tests/data/detection-vectors.jsonl` (copied from the project's shared test data).

use detect::{Category, DetectorConfig, DetectorSet, Kind};

const VECTORS: &str = include_str!("../data/detection-vectors.jsonl");

fn category(family: &str) -> Category {
    match family {
        "sqli" => Category::Sqli,
        "pii" => Category::Pii,
        "secret" => Category::Secret,
        other => panic!("unknown vector family {other}"),
    }
}

/// One vector: `family` is the line's `kind`, `expect` a kind name, `clean`, or one of the special outcomes.
fn check(set: &DetectorSet, family: &str, text: &str, expect: &str) {
    let findings = set.scan(text);
    let kinds: Vec<&str> = findings.iter().map(|f| f.kind.as_str()).collect();
    match expect {
        "clean" => {
            let same_family: Vec<&str> = findings
                .iter()
                .filter(|f| f.category() == category(family))
                .map(|f| f.kind.as_str())
                .collect();
            assert!(same_family.is_empty(), "{text:?} should be clean, found {same_family:?}");
        }
        "ssn_low_confidence" => {
            assert!(!kinds.contains(&"ssn"), "{text:?}: below the default threshold, found {kinds:?}");
            let all =
                DetectorSet::new(DetectorConfig { threshold: 0.0, ..DetectorConfig::default() }).unwrap();
            let ssn = all.scan(text).into_iter().find(|f| f.kind == Kind::Ssn).expect("an ssn finding");
            assert!(ssn.confidence < 0.5, "{text:?}: confidence {}", ssn.confidence);
        }
        "clean_or_aadhaar" => {
            // "2345 6789 0124" has a valid Verhoeff check digit, so it is an Aadhaar number.
            assert_eq!(kinds, ["aadhaar"], "{text:?}");
        }
        kind => {
            assert!(kind.parse::<Kind>().is_ok(), "vector names unknown kind {kind}");
            assert!(kinds.contains(&kind), "{text:?}: expected {kind}, found {kinds:?}");
        }
    }
}

#[test]
fn every_vector() {
    let set = DetectorSet::new(DetectorConfig::default()).unwrap();
    let mut ran = 0;
    for line in VECTORS.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let (family, text, expect) =
            (v["kind"].as_str().unwrap(), v["text"].as_str().unwrap(), v["expect"].as_str().unwrap());
        match family {
            // Empty queries are refused by the engine, not by a detector.
            "request" => continue,
            "redact" => {
                let (_, redacted) = set.scan_and_redact(text);
                assert_eq!(redacted, expect, "{text:?}");
            }
            _ => check(&set, family, text, expect),
        }
        ran += 1;
    }
    assert_eq!(ran, 58);
}

#[test]
fn secret_vectors_redact_to_labels() {
    let set = DetectorSet::new(DetectorConfig::default()).unwrap();
    let redact = |text: &str| set.scan_and_redact(text).1.into_owned();
    assert_eq!(redact("password='secret123'"), "password='[REDACTED_PASSWORD]'");
    assert_eq!(redact("api_key=sk-12345678"), "api_key=[REDACTED_KEY]");
    assert_eq!(redact("AKIAIOSFODNN7EXAMPLE"), "[REDACTED_AWS_ACCESS_KEY_ID]");
}
