# Snowflake connector: statements that change schema or destroy data need the connector:admin permission;
# writes need query:write; exports of whole tables wait for approval.
package axonflow.policy.connectors.snowflake

import rego.v1

applies if input.context.connector == "snowflake"

destructive_statements := {"drop", "truncate", "alter", "grant", "revoke", "delete"}

write_statements := {"insert", "update", "merge", "copy"}

# The first word of the statement, lower-cased. (`words[0]` rather than `split(...)[0]`: see hipaa.rego.)
statement := lower(words[0]) if words := split(trim_space(input.query), " ")

deny contains sprintf("snowflake: %s needs the connector:admin permission", [upper(statement)]) if {
	applies
	destructive_statements[statement]
	not "connector:admin" in data.axonflow.policy.rbac.permissions
}

deny contains sprintf("snowflake: %s needs the query:write permission", [upper(statement)]) if {
	applies
	write_statements[statement]
	not "query:write" in data.axonflow.policy.rbac.permissions
}

require_approval contains "snowflake: unloading data needs approval" if {
	applies
	input.context.operation == "unload"
}
