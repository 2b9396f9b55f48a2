# Slack connector: messages to channels shared with other organisations must not carry PII or secrets, even
# redacted (the recipient is outside the tenant's control).
package axonflow.policy.connectors.slack

import rego.v1

applies if input.context.connector == "slack"

sensitive := {d.category | some d in input.detections; d.category in {"pii", "secret"}}

deny contains sprintf("slack: %s in a message to an external channel", [category]) if {
	applies
	input.context.operation == "post_message"
	input.context.channel_external == true
	some category in sensitive
}
