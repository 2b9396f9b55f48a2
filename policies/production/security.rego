# Attacks and credentials found by the native detectors (`input.detections`): SQL injection, prompt injection,
# secrets. Not in the guide's examples; the guide's product promises them (section 3.2's "auto-detect").
#
# A finding at or above `block_confidence` denies; a weaker one warns, so a reviewer sees it without the
# request failing on a guess. Reasons name the kind, never the matched text.
package axonflow.policy.security

import rego.v1

block_confidence := 0.7

blocking_categories := {
	"sqli": "SQL injection",
	"prompt_injection": "prompt injection",
	"secret": "secret",
}

findings := [d | some d in input.detections; blocking_categories[d.category]]

deny contains sprintf("security: %s detected (%s)", [blocking_categories[d.category], d.kind]) if {
	some d in findings
	d.confidence >= block_confidence
}

warn contains sprintf("security: possible %s (%s)", [blocking_categories[d.category], d.kind]) if {
	some d in findings
	d.confidence < block_confidence
}

log_security_event := {
	"severity": "HIGH",
	"categories": {d.category | some d in findings},
	"kinds": {d.kind | some d in findings},
} if count(findings) > 0
