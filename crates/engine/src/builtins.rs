//! The native detectors as Rego builtins, so policies can call the fast path:
//! `axonflow.pii.detect(s)`, `axonflow.pii.redact(s)`, `axonflow.sqli.detect(s)`,
//! `axonflow.injection.detect(s)`, `axonflow.secrets.detect(s)` and `axonflow.detect(s)` (everything).
//! Each `detect` returns a list of `{kind, category, start, end, confidence}` with character offsets.

use std::sync::Arc;

use detect::{Category, DetectorSet, Finding};
use policy::Extension;

/// The builtins, backed by `detectors`.
pub fn policy_extensions(detectors: &Arc<DetectorSet>) -> Vec<Extension> {
    let mut extensions = Vec::new();
    for (name, category) in [
        ("axonflow.detect", None),
        ("axonflow.pii.detect", Some(Category::Pii)),
        ("axonflow.sqli.detect", Some(Category::Sqli)),
        ("axonflow.injection.detect", Some(Category::PromptInjection)),
        ("axonflow.secrets.detect", Some(Category::Secret)),
    ] {
        let detectors = detectors.clone();
        extensions.push(Extension::new(name, 1, move |args| {
            let text = text_argument(args)?;
            let findings: Vec<serde_json::Value> = detectors
                .scan(text)
                .iter()
                .filter(|f| category.is_none_or(|c| f.category() == c))
                .map(|f| finding_value(text, f))
                .collect();
            Ok(serde_json::Value::Array(findings))
        }));
    }
    let redactor = detectors.clone();
    extensions.push(Extension::new("axonflow.pii.redact", 1, move |args| {
        let text = text_argument(args)?;
        let findings: Vec<Finding> =
            redactor.scan(text).into_iter().filter(|f| f.category() == Category::Pii).collect();
        Ok(serde_json::Value::String(redactor.redact(text, &findings).into_owned()))
    }));
    extensions
}

fn text_argument(args: &[serde_json::Value]) -> Result<&str, String> {
    args.first().and_then(serde_json::Value::as_str).ok_or_else(|| "expects one string argument".to_owned())
}

fn finding_value(text: &str, finding: &Finding) -> serde_json::Value {
    let chars = |byte: usize| text.get(..byte).map_or(0, |prefix| prefix.chars().count());
    serde_json::json!({
        "kind": finding.kind.as_str(),
        "category": finding.category().as_str(),
        "start": chars(finding.start),
        "end": chars(finding.end),
        "confidence": finding.confidence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, text: &str) -> serde_json::Value {
        let detectors = Arc::new(DetectorSet::new(detect::DetectorConfig::default()).expect("detectors"));
        let extensions = policy_extensions(&detectors);
        let extension = extensions.iter().find(|e| e.name == name).expect("registered");
        (extension.function)(&[serde_json::Value::String(text.to_owned())]).expect("call")
    }

    #[test]
    fn builtins_return_findings_and_redactions() {
        assert_eq!(
            call("axonflow.pii.redact", "Get data for SSN 123-45-6789"),
            "Get data for SSN ***-**-****"
        );
        let found = call("axonflow.pii.detect", "é SSN 123-45-6789");
        assert_eq!(found[0]["kind"], "ssn");
        assert_eq!(found[0]["start"], 6, "character offsets");
        assert_eq!(call("axonflow.sqli.detect", "SSN 123-45-6789"), serde_json::json!([]));
        assert_eq!(call("axonflow.sqli.detect", "admin' OR 1=1--")[0]["category"], "sqli");
        assert_eq!(call("axonflow.detect", "plain words"), serde_json::json!([]));
    }
}
