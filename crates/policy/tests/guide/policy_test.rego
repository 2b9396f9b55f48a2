# policy_test.rego
package axonflow.policy

test_allow_admin {
    allow with input as {
        "context": {"user_role": "admin"},
        "query": "Get all customer data"
    }
}

test_deny_regular_user {
    not allow with input as {
        "context": {"user_role": "user"},
        "query": "Get all customer data"
    }
}

test_pii_redaction {
    query := redacted_query with input.query as "Get data for SSN 123-45-6789"
    query == "Get data for SSN ***-**-****"
}
