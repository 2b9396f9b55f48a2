package axonflow.policy.hipaa

# HIPAA minimum necessary rule
allow {
    input.context.user_role in ["doctor", "nurse"]
    is_patient_assigned_to_user(input.query, input.context.user_id)
}

# Deny broad queries
deny["HIPAA violation: minimum necessary rule"] {
    contains(lower(input.query), "all patients")
    input.context.user_role != "admin"
}

# Audit all PHI access
log_phi_access {
    metadata := {
        "hipaa_compliance": true,
        "phi_accessed": true,
        "user_id": input.context.user_id,
        "patient_id": extract_patient_id(input.query),
        "access_reason": input.context.access_reason,
        "timestamp": time.now_ns()
    }
}
