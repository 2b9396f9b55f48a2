# Policy: Detect and redact PII
package axonflow.policy

import future.keywords

# PII patterns
ssn_pattern := `\b\d{3}-\d{2}-\d{4}\b`
credit_card_pattern := `\b\d{4}[\s-]?\d{4}[\s-]?\d{4}[\s-]?\d{4}\b`
email_pattern := `\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Z|a-z]{2,}\b`
phone_pattern := `\b\d{3}[-.]?\d{3}[-.]?\d{4}\b`

# Detect PII in query
pii_detected {
    regex.match(ssn_pattern, input.query)
}

pii_detected {
    regex.match(credit_card_pattern, input.query)
}

# Auto-redact PII
redacted_query := query {
    query := regex.replace(input.query, ssn_pattern, "***-**-****")
    query := regex.replace(query, credit_card_pattern, "****-****-****-****")
    query := regex.replace(query, email_pattern, "***@***.***")
    query := regex.replace(query, phone_pattern, "***-***-****")
}

# Allow if PII is redacted
default allow = false

allow {
    redacted_query != input.query
    count(pii_violations) == 0
}

allow {
    redacted_query == input.query
}

# Log PII detection
log_pii_detection {
    pii_detected
    metadata := {
        "severity": "HIGH",
        "action": "PII_REDACTED",
        "user_id": input.context.user_id,
        "timestamp": time.now_ns()
    }
}
