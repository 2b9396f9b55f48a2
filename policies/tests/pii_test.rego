package axonflow.policy.pii

import rego.v1

detection(kind, start, end) := {"kind": kind, "category": "pii", "start": start, "end": end, "confidence": 1.0}

# The guide's regexes, used when the caller passed no detections.
test_regex_fallback if {
	redacted_query == "SSN ***-**-****, card ****-****-****-****, ***@***.***, ***-***-****" with input as {
		"query": "SSN 123-45-6789, card 4111 1111 1111 1111, jo@example.com, 555-123-4567"
	}
	pii_detected with input as {"query": "card 4111-1111-1111-1111"}
	pii_detected with input as {"query": "ssn 123-45-6789"}
	not pii_detected with input as {"query": "nothing here"}
}

test_detections_redact_in_order if {
	redacted_query == "a ***@***.*** b ***-**-**** c [REDACTED:iban]" with input as {
		"query": "a jo@x.io b 123-45-6789 c DE89370400440532013000",
		"detections": [detection("ssn", 12, 23), detection("email", 2, 9), detection("iban", 26, 48)]
	}
}

# Spans that overlap (two detectors on one number) leave nothing of either behind.
test_overlapping_detections_leave_no_text if {
	redacted_query == "x ***-**-*******-***-**** y" with input as {
		"query": "x 123-45-6789 y",
		"detections": [detection("ssn", 2, 13), detection("phone", 4, 11)]
	}
}

test_detections_ignore_other_categories if {
	redacted_query == "drop table" with input as {
		"query": "drop table",
		"detections": [{"kind": "dangerous_query", "category": "sqli", "start": 0, "end": 10, "confidence": 1.0}]
	}
	not pii_detected with input as {"query": "drop table", "detections": []}
}

test_allow_redacted_and_clean if {
	allow with input as {"query": "ssn 123-45-6789", "detections": [detection("ssn", 4, 15)]}
	allow with input as {"query": "hello", "detections": []}
}

test_too_much_pii if {
	many := [detection("email", i, i + 1) | some i in numbers.range(0, 10)]
	not allow with input as {"query": "abcdefghijklmnop", "detections": many}
	pii_violations == {"pii: 11 PII items in one query (at most 10)"} with input as {"query": "abcdefghijklmnop", "detections": many}
}

test_log_pii_detection if {
	log := log_pii_detection with input as {
		"query": "jo@x.io", "context": {"user_id": "u1"},
		"detections": [detection("email", 0, 7)]
	}
	log.user_id == "u1"
	log.kinds == {"email"}
	log.action == "PII_REDACTED"
	not log_pii_detection with input as {"query": "hello", "detections": []}
}
