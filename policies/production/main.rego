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

import data.axonflow.policy.connectors.salesforce
import data.axonflow.policy.connectors.slack
import data.axonflow.policy.connectors.snowflake
import data.axonflow.policy.hipaa
import data.axonflow.policy.pii
import data.axonflow.policy.rbac
import data.axonflow.policy.security

default allow := false

allow if {
	rbac.allow
	pii.allow
	hipaa_permits
	count(deny) == 0
}

# PHI requests need the HIPAA policy's own allow (an assigned doctor or nurse) or a role that may read all PHI.
hipaa_permits if not hipaa.phi_request

hipaa_permits if hipaa.allow

hipaa_permits if "phi:read_all" in rbac.permissions

deny contains reason if some reason in rbac.deny

deny contains reason if some reason in pii.pii_violations

deny contains reason if some reason in hipaa.deny

deny contains "HIPAA: PHI access requires an assigned doctor or nurse" if not hipaa_permits

deny contains reason if some reason in security.deny

deny contains reason if some reason in salesforce.deny

deny contains reason if some reason in snowflake.deny

deny contains reason if some reason in slack.deny

# The guide's redaction, computed by the PII policy.
redacted_query := pii.redacted_query

require_approval contains reason if some reason in salesforce.require_approval

require_approval contains reason if some reason in snowflake.require_approval

warn contains reason if some reason in security.warn

log_pii_detection := pii.log_pii_detection

log_phi_access := hipaa.log_phi_access

log_security_event := security.log_security_event
