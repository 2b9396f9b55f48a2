//! Static policies (the SDKs' `/api/v1/static-policies`): a tenant's pattern rules, kept as generated Rego in the
//! tenant's own bundle. Every change is a new version of that bundle, validated with its tests and promoted at
//! once, so static policies are versioned, audited and rolled back like any other policy.
//!
//! The generated file, `production/static_policies.rego`, is in the entry package: it holds the list as a
//! Rego literal between two marker lines (read back from there) and the rules that apply it: an enabled
//! policy whose pattern matches the query denies (`block`), holds for approval (`require_approval`), warns
//! (`warn`) or is only logged (`log`). Its tests, `tests/static_policies_test.rego`, check those rules on
//! example policies. A tenant without a bundle gets a `production/main.rego` with `default allow := true`.

use serde::{Deserialize, Serialize};

/// Where the generated files go in the tenant's bundle.
pub const RULES_FILE: &str = "production/static_policies.rego";
pub const TESTS_FILE: &str = "tests/static_policies_test.rego";
pub const MAIN_FILE: &str = "production/main.rego";

const BEGIN: &str = "# BEGIN static policies (generated from /api/v1/static-policies; do not edit)";
const END: &str = "# END static policies";

/// What an enabled policy that matches does.
pub const ACTIONS: [&str; 5] = ["block", "require_approval", "warn", "log", "allow"];
pub const SEVERITIES: [&str; 4] = ["critical", "high", "medium", "low"];

/// One static policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticPolicy {
    pub id: String,
    pub name: String,
    /// A regular expression (RE2-like syntax) matched against the query.
    pub pattern: String,
    pub category: String,
    pub severity: String,
    pub action: String,
    pub enabled: bool,
    pub priority: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
    /// Counts the changes made to this policy.
    pub version: u64,
}

impl StaticPolicy {
    /// Checks the fields a caller sets; the message names the field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err(("name", "must be 1-200 bytes".to_owned()));
        }
        if self.pattern.is_empty() || self.pattern.len() > 2000 {
            return Err(("pattern", "must be 1-2000 bytes".to_owned()));
        }
        if let Err(error) = regex::RegexBuilder::new(&self.pattern).size_limit(1 << 20).build() {
            let message = error.to_string().lines().last().unwrap_or("invalid").trim().to_owned();
            return Err(("pattern", format!("is not a valid regular expression: {message}")));
        }
        if !ACTIONS.contains(&self.action.as_str()) {
            return Err(("action", format!("must be one of {}", ACTIONS.join(", "))));
        }
        if !SEVERITIES.contains(&self.severity.as_str()) {
            return Err(("severity", format!("must be one of {}", SEVERITIES.join(", "))));
        }
        if self.category.len() > 100 || self.tags.len() > 50 || self.tags.iter().any(|t| t.len() > 100) {
            return Err(("category", "category and tags are at most 100 bytes (and 50 tags)".to_owned()));
        }
        Ok(())
    }
}

/// The static policies held in a bundle's files (none when the bundle has no generated file).
pub fn read(files: &[(String, String)]) -> Result<Vec<StaticPolicy>, String> {
    let Some((_, text)) = files.iter().find(|(path, _)| path == RULES_FILE) else { return Ok(Vec::new()) };
    let start = text.find(BEGIN).ok_or("the static policy file has lost its markers")? + BEGIN.len();
    let end = text[start..].find(END).ok_or("the static policy file has lost its markers")? + start;
    let literal =
        text[start..end].trim().strip_prefix("static_policies :=").ok_or("unexpected static policy file")?;
    serde_json::from_str(literal.trim()).map_err(|e| format!("the static policy list does not parse: {e}"))
}

/// `files` with the generated static policy files replaced by ones for `policies` (and a main file added when
/// the bundle has none).
pub fn write(mut files: Vec<(String, String)>, policies: &[StaticPolicy]) -> Vec<(String, String)> {
    files.retain(|(path, _)| path != RULES_FILE && path != TESTS_FILE);
    if !files.iter().any(|(path, _)| path == MAIN_FILE) {
        files.push((MAIN_FILE.to_owned(), MAIN.to_owned()));
    }
    // JSON is a Rego literal; one policy a line keeps diffs readable.
    let list: Vec<String> =
        policies.iter().map(|p| serde_json::to_string(p).unwrap_or_else(|_| "null".to_owned())).collect();
    let literal = if list.is_empty() { "[]".to_owned() } else { format!("[\n\t{}\n]", list.join(",\n\t")) };
    files.push((
        RULES_FILE.to_owned(),
        format!("{HEADER}{BEGIN}\nstatic_policies := {literal}\n{END}\n{RULES}"),
    ));
    files.push((TESTS_FILE.to_owned(), TESTS.to_owned()));
    files
}

const MAIN: &str =
    "# Generated with the first static policy: this tenant's bundle allows what the system bundle allows,
# and adds its own rules.
package axonflow.policy

import rego.v1

default allow := true
";

const HEADER: &str =
    "# The tenant's static policies, managed through /api/v1/static-policies. Changes made here by hand are
# replaced by the next change made through the API.
package axonflow.policy

import rego.v1

";

const RULES: &str = "
static_policy_matches contains p if {
	some p in static_policies
	p.enabled
	regex.match(p.pattern, input.query)
}

static_policy_reason(p) := sprintf(\"static policy %s (%s, %s severity)\", [p.name, p.id, p.severity])

deny contains static_policy_reason(p) if {
	some p in static_policy_matches
	p.action == \"block\"
}

require_approval contains static_policy_reason(p) if {
	some p in static_policy_matches
	p.action == \"require_approval\"
}

warn contains static_policy_reason(p) if {
	some p in static_policy_matches
	p.action == \"warn\"
}

log_static_policies := ids if {
	ids := [p.id | some p in static_policy_matches]
	count(ids) > 0
}
";

const TESTS: &str = "# Tests of the generated static policy rules, on example policies.
package axonflow.policy

import rego.v1

static_policy_examples := [
	{\"id\": \"t1\", \"name\": \"no secrets\", \"pattern\": \"(?i)secret\", \"action\": \"block\", \"enabled\": true, \"severity\": \"high\"},
	{\"id\": \"t2\", \"name\": \"review\", \"pattern\": \"(?i)wire transfer\", \"action\": \"require_approval\", \"enabled\": true, \"severity\": \"medium\"},
	{\"id\": \"t3\", \"name\": \"note\", \"pattern\": \"(?i)budget\", \"action\": \"warn\", \"enabled\": true, \"severity\": \"low\"},
	{\"id\": \"t4\", \"name\": \"off\", \"pattern\": \"(?i)anything\", \"action\": \"block\", \"enabled\": false, \"severity\": \"low\"},
]

test_static_policy_blocks if {
	\"static policy no secrets (t1, high severity)\" in deny with data.axonflow.policy.static_policies as static_policy_examples
		with input as {\"query\": \"the Secret plan\"}
}

test_static_policy_requires_approval if {
	count(require_approval) > 0 with data.axonflow.policy.static_policies as static_policy_examples
		with input as {\"query\": \"a wire transfer please\"}
}

test_static_policy_warns if {
	count(warn) > 0 with data.axonflow.policy.static_policies as static_policy_examples
		with input as {\"query\": \"the budget\"}
}

test_static_policy_logs_matches if {
	log_static_policies == [\"t3\"] with data.axonflow.policy.static_policies as static_policy_examples
		with input as {\"query\": \"the budget\"}
}

test_disabled_static_policy_does_nothing if {
	not static_policy_reason({\"name\": \"off\", \"id\": \"t4\", \"severity\": \"low\"}) in deny with data.axonflow.policy.static_policies as static_policy_examples
		with input as {\"query\": \"anything goes\"}
}
";

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(id: &str, pattern: &str, action: &str) -> StaticPolicy {
        StaticPolicy {
            id: id.to_owned(),
            name: format!("policy \"{id}\""),
            pattern: pattern.to_owned(),
            category: "custom".to_owned(),
            severity: "high".to_owned(),
            action: action.to_owned(),
            enabled: true,
            priority: 10,
            description: Some("line one\nline two \\ backslash".to_owned()),
            tags: vec!["a".to_owned()],
            created_at: "2026-11-23T00:00:00Z".to_owned(),
            updated_at: "2026-11-23T00:00:00Z".to_owned(),
            version: 1,
        }
    }

    #[test]
    fn written_policies_read_back_and_other_files_stay() {
        let custom = ("production/extra.rego".to_owned(), "package axonflow.policy.extra\n".to_owned());
        let policies = vec![policy("sp_1", r"(?i)\bfalcon\b", "block"), policy("sp_2", "wire", "warn")];
        let files = write(vec![custom.clone()], &policies);
        assert!(files.contains(&custom));
        assert!(files.iter().any(|(p, _)| p == MAIN_FILE), "a tenant without a bundle gets a main file");
        assert_eq!(read(&files).expect("read"), policies);
        let again = write(files, &[]);
        assert_eq!(read(&again).expect("read"), Vec::new());
        assert_eq!(again.iter().filter(|(p, _)| p == RULES_FILE).count(), 1);
        assert_eq!(read(&[custom]).expect("none"), Vec::new());
    }

    #[test]
    fn the_generated_bundle_compiles_passes_its_tests_and_decides() {
        let files =
            write(Vec::new(), &[policy("sp_1", r"(?i)\bfalcon\b", "block"), policy("sp_2", "wire", "warn")]);
        let bundle = policy::Bundle::from_layout(files, policy::Stage::Production);
        let options = policy::CompileOptions::default();
        let problems = policy::validate(&bundle, &options, &policy::Limits::default());
        assert!(problems.is_empty(), "{problems:?}");
        let compiled = policy::CompiledPolicy::compile(&bundle, &options).expect("compile");
        let decide = |query: &str| {
            let input = policy::Input { query: query.to_owned(), ..policy::Input::default() };
            compiled.evaluate(&input, std::time::Duration::from_secs(1))
        };
        let denied = decide("the Falcon plan");
        assert_eq!(denied.deny_reasons(), ["static policy policy \"sp_1\" (sp_1, high severity)"]);
        assert!(decide("falconry").proceeds(), "word boundaries are honoured");
        let warned = decide("a wire transfer");
        assert!(warned.proceeds() && warned.warnings.len() == 1, "{warned:?}");
    }

    #[test]
    fn invalid_fields_are_named() {
        let check = |p: StaticPolicy| p.validate().err().map(|(field, _)| field);
        assert_eq!(check(policy("a", "ok", "block")), None);
        assert_eq!(check(policy("a", "(unclosed", "block")), Some("pattern"));
        assert_eq!(check(policy("a", "ok", "explode")), Some("action"));
        assert_eq!(
            check(StaticPolicy { severity: "extreme".into(), ..policy("a", "ok", "block") }),
            Some("severity")
        );
        assert_eq!(check(StaticPolicy { name: " ".into(), ..policy("a", "ok", "block") }), Some("name"));
    }
}
