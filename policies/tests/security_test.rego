package axonflow.policy.security

import rego.v1

finding(category, kind, confidence) := {"kind": kind, "category": category, "start": 0, "end": 1, "confidence": confidence}

test_blocking_and_warning if {
	deny == {"security: SQL injection detected (union_based)", "security: secret detected (jwt)"} with input as {
		"query": "x", "detections": [finding("sqli", "union_based", 0.9), finding("secret", "jwt", 1), finding("pii", "ssn", 1)]
	}
	warn == {"security: possible prompt injection (jailbreak)"} with input as {
		"query": "x", "detections": [finding("prompt_injection", "jailbreak", 0.5)]
	}
	not log_security_event with input as {"query": "x", "detections": []}
}
