use std::process::Stdio;

use crate::support::{binary, feed};

fn detect(args: &[&str], input: &str) -> (Option<i32>, String) {
    let mut child = binary()
        .arg("detect")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    feed(&mut child, input);
    let output = child.wait_with_output().expect("output");
    (output.status.code(), String::from_utf8(output.stdout).expect("utf-8"))
}

#[test]
fn findings_are_printed_with_offsets_and_never_the_text() {
    let (code, out) = detect(&["--lines"], "Get data for SSN 123-45-6789\nnothing here\nadmin' OR 1=1--\n");
    assert_eq!(code, Some(0));
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["1: ssn 17 28 0.95 ssn_rules", "3: boolean_blind 5 13 0.90 tautology"]
    );
    assert!(!out.contains("6789"));
}

#[test]
fn redaction_uses_the_guides_formats() {
    for (input, expected) in [
        ("Get data for SSN 123-45-6789", "Get data for SSN ***-**-****"),
        ("pay with 4532015112830366", "pay with ****-****-****-****"),
        ("mail jane.doe@example.com", "mail ***@***.***"),
        ("no pii at all", "no pii at all"),
    ] {
        assert_eq!(detect(&["--redact"], input), (Some(0), expected.to_owned()), "{input}");
    }
}

#[test]
fn json_output_is_one_object_per_document() {
    let (code, out) = detect(&["--json", "--lines", "--redact"], "SSN 123-45-6789\nclean\n");
    assert_eq!(code, Some(0));
    let docs: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["findings"][0]["kind"], "ssn");
    assert_eq!(docs[0]["findings"][0]["category"], "pii");
    assert_eq!(docs[0]["redacted"], "SSN ***-**-****");
    assert_eq!(docs[1]["findings"], serde_json::json!([]));
}

#[test]
fn a_bad_threshold_is_an_error() {
    let (code, _) = detect(&["--threshold", "7"], "x");
    assert_eq!(code, Some(1));
}
