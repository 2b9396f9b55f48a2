package axonflow.policy.connectors_test

import rego.v1

import data.axonflow.policy.connectors.salesforce
import data.axonflow.policy.connectors.slack
import data.axonflow.policy.connectors.snowflake

test_salesforce if {
	count(salesforce.deny) == 0 with input as {"query": "", "context": {"user_role": "admin", "connector": "salesforce", "operation": "delete"}}
	count(salesforce.deny) == 1 with input as {"query": "", "context": {"user_role": "user", "connector": "salesforce", "operation": "mass_delete"}}
	count(salesforce.deny) == 0 with input as {"query": "", "context": {"user_role": "user", "connector": "snowflake", "operation": "delete"}}
	salesforce.require_approval == {"salesforce: mass_update needs approval"} with input as {"query": "", "context": {"connector": "salesforce", "operation": "mass_update"}}
}

test_snowflake if {
	snowflake.deny == {"snowflake: INSERT needs the query:write permission"} with input as {"query": "  insert into t values (1)", "context": {"user_role": "user", "connector": "snowflake"}}
	count(snowflake.deny) == 0 with input as {"query": "insert into t values (1)", "context": {"user_role": "analyst", "connector": "snowflake"}}
	count(snowflake.deny) == 0 with input as {"query": "truncate t", "context": {"user_role": "admin", "connector": "snowflake"}}
	count(snowflake.deny) == 0 with input as {"query": "select 1", "context": {"user_role": "user", "connector": "snowflake"}}
}

test_slack if {
	slack.deny == {"slack: secret in a message to an external channel"} with input as {
		"query": "k", "context": {"connector": "slack", "operation": "post_message", "channel_external": true},
		"detections": [{"kind": "jwt", "category": "secret", "start": 0, "end": 1, "confidence": 1.0}]
	}
	count(slack.deny) == 0 with input as {
		"query": "k", "context": {"connector": "slack", "operation": "post_message", "channel_external": false},
		"detections": [{"kind": "jwt", "category": "secret", "start": 0, "end": 1, "confidence": 1.0}]
	}
}
