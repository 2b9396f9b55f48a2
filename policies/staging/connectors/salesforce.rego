# Salesforce connector: deleting records needs the connector:admin permission; bulk exports and mass updates
# wait for a human approval.
package axonflow.policy.connectors.salesforce

import rego.v1

applies if input.context.connector == "salesforce"

deny contains sprintf("salesforce: %s needs the connector:admin permission", [input.context.operation]) if {
	applies
	input.context.operation in {"delete", "mass_delete"}
	not "connector:admin" in data.axonflow.policy.rbac.permissions
}

require_approval contains sprintf("salesforce: %s needs approval", [input.context.operation]) if {
	applies
	input.context.operation in {"bulk_export", "mass_update"}
}
