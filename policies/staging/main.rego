# AxonFlow default policy: the entry package the engine reads.
#
# The engine reads `allow`, `deny`, `redacted_query`, `require_approval`, `warn` and `log_*` from this
# package (the decision contract, docs/policies.md). Every other file in the bundle is a package of its own
# below `axonflow.policy` and is composed here, so each concern stays testable on its own:
#
#   rbac       who may ask for what (the guide's section 4.1 test suite)
#   pii        the guide's section 3.2 PII example: detection, redaction, "too much PII"
#   hipaa      the guide's section 5.1 HIPAA example: minimum necessary, PHI access audit
#   security   SQL injection, prompt injection and secrets found by the native detectors
#   connectors per-connector rules (Salesforce, Snowflake, Slack)
#
# Why the PII example lives in its own package: in the guide, the PII example (section 3.2) and the test suite
# (section 4.1) share `package axonflow.policy`, and the PII example's `allow { redacted_query == input.query }`
# allows every query without PII, including the test suite's "Get all customer data" for a plain user, which the
# test suite expects to be denied. Both cannot hold in one package. Here the PII example keeps its own `allow`
# (in `axonflow.policy.pii`, unchanged), RBAC keeps its own, and this package allows only what both allow.
package axonflow.policy

import rego.v1

# The other packages' rules are referenced by their full path (`data.axonflow.policy.rbac.allow`) rather than
# through an import (`import data.axonflow.policy.rbac`, then `rbac.allow`): regorus evaluates every rule of a
# package reached through an import alias, the full path only the rule it names.

default allow := false

allow if {
	data.axonflow.policy.rbac.allow
	data.axonflow.policy.pii.allow
	hipaa_permits
	count(deny) == 0
}

# PHI requests need the HIPAA policy's own allow (an assigned doctor or nurse) or a role that may read all PHI.
hipaa_permits if not data.axonflow.policy.hipaa.phi_request

hipaa_permits if data.axonflow.policy.hipaa.allow

hipaa_permits if "phi:read_all" in data.axonflow.policy.rbac.permissions

deny contains reason if some reason in data.axonflow.policy.rbac.deny

deny contains reason if some reason in data.axonflow.policy.pii.pii_violations

deny contains reason if some reason in data.axonflow.policy.hipaa.deny

deny contains "HIPAA: PHI access requires an assigned doctor or nurse" if not hipaa_permits

deny contains reason if some reason in data.axonflow.policy.security.deny

deny contains reason if some reason in data.axonflow.policy.connectors.salesforce.deny

deny contains reason if some reason in data.axonflow.policy.connectors.snowflake.deny

deny contains reason if some reason in data.axonflow.policy.connectors.slack.deny

# The guide's redaction, computed by the PII policy.
redacted_query := data.axonflow.policy.pii.redacted_query

require_approval contains reason if some reason in data.axonflow.policy.connectors.salesforce.require_approval

require_approval contains reason if some reason in data.axonflow.policy.connectors.snowflake.require_approval

warn contains reason if some reason in data.axonflow.policy.security.warn

log_pii_detection := data.axonflow.policy.pii.log_pii_detection

log_phi_access := data.axonflow.policy.hipaa.log_phi_access

log_security_event := data.axonflow.policy.security.log_security_event
