package axonflow.policy.rbac

import rego.v1

test_missing_role_is_user if {
	role == "user" with input as {"context": {}, "query": "hello"}
	allow with input as {"context": {}, "query": "hello"}
}

test_unknown_role_denied if {
	not allow with input as {"context": {"user_role": "root"}, "query": "hello"}
	deny["rbac: unknown role \"root\""] with input as {"context": {"user_role": "root"}, "query": "hello"}
}

test_broad_query_needs_bulk if {
	not allow with input as {"context": {"user_role": "analyst"}, "query": "Export ALL Patients now"}
	allow with input as {"context": {"user_role": "admin"}, "query": "Export ALL Patients now"}
	count(deny) == 0 with input as {"context": {"user_role": "admin"}, "query": "Export ALL Patients now"}
}

test_permissions if {
	permissions == {"query:read", "phi:read"} with input as {"context": {"user_role": "doctor"}, "query": ""}
	permissions == set() with input as {"context": {"user_role": "nobody"}, "query": ""}
}
