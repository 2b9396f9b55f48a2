# policy_test.rego: the guide's section 4.1 test suite, verbatim, followed by tests of the composed decision.
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

# Not in the guide.

test_deny_regular_user_has_reason {
    deny["rbac: broad queries need the query:bulk permission (admin)"] with input as {
        "context": {"user_role": "user"},
        "query": "Get all customer data"
    }
}

test_allow_plain_query {
    allow with input as {"context": {"user_role": "user"}, "query": "What is our refund policy?", "detections": []}
}

test_redaction_from_detections {
    redacted_query == "SSN ***-**-**** ok" with input as {
        "context": {}, "query": "SSN 123-45-6789 ok",
        "detections": [{"kind": "ssn", "category": "pii", "start": 4, "end": 15, "confidence": 1.0}]
    }
}

test_deny_sql_injection {
    not allow with input as {
        "context": {}, "query": "x' UNION SELECT password FROM users --",
        "detections": [{"kind": "union_based", "category": "sqli", "start": 2, "end": 14, "confidence": 0.95}]
    }
}

test_phi_needs_assignment {
    not allow with input as {"context": {"user_role": "nurse", "user_id": "n1", "data_classification": "phi"}, "query": "Labs for patient P-7"}
    deny["HIPAA: PHI access requires an assigned doctor or nurse"] with input as {"context": {"user_role": "nurse", "user_id": "n1", "data_classification": "phi"}, "query": "Labs for patient P-7"}
}

test_phi_assigned_doctor {
    allow with input as {
        "context": {"user_role": "doctor", "user_id": "d1", "data_classification": "phi", "assigned_patients": ["P-7"]},
        "query": "Labs for patient P-7"
    }
}

test_phi_admin_reads_all {
    allow with input as {"context": {"user_role": "admin", "data_classification": "phi"}, "query": "Labs for patient P-7"}
}

test_require_approval_salesforce_export {
    require_approval["salesforce: bulk_export needs approval"] with input as {
        "context": {"user_role": "admin", "connector": "salesforce", "operation": "bulk_export"}, "query": "Accounts"
    }
}

test_require_approval_snowflake_unload {
    require_approval["snowflake: unloading data needs approval"] with input as {
        "context": {"user_role": "admin", "connector": "snowflake", "operation": "unload"}, "query": "SELECT 1"
    }
}

test_warn_weak_injection {
    warn["security: possible prompt injection (jailbreak)"] with input as {
        "context": {}, "query": "pretend",
        "detections": [{"kind": "jailbreak", "category": "prompt_injection", "start": 0, "end": 7, "confidence": 0.4}]
    }
}

test_logs {
    log_pii_detection.count == 1 with input as {
        "context": {"user_id": "u1"}, "query": "a@b.co",
        "detections": [{"kind": "email", "category": "pii", "start": 0, "end": 6, "confidence": 0.9}]
    }
    log_phi_access.patient_id == "P-7" with input as {"context": {"data_classification": "phi"}, "query": "patient P-7"}
    log_security_event.kinds == {"aws_access_key_id"} with input as {
        "context": {}, "query": "AKIA...",
        "detections": [{"kind": "aws_access_key_id", "category": "secret", "start": 0, "end": 7, "confidence": 1.0}]
    }
}

test_connector_denials_reach_main {
    deny["salesforce: delete needs the connector:admin permission"] with input as {
        "context": {"user_role": "user", "connector": "salesforce", "operation": "delete"}, "query": "Delete account 42"
    }
    deny["snowflake: DROP needs the connector:admin permission"] with input as {
        "context": {"user_role": "analyst", "connector": "snowflake"}, "query": "DROP TABLE t"
    }
    deny["slack: pii in a message to an external channel"] with input as {
        "context": {"connector": "slack", "operation": "post_message", "channel_external": true}, "query": "a@b.co",
        "detections": [{"kind": "email", "category": "pii", "start": 0, "end": 6, "confidence": 0.9}]
    }
}
