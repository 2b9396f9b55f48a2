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

# `broad_query` joins the phrases into one regex: it matches exactly the queries containing a phrase only
# while there is at least one phrase (an empty pattern matches everything) and every phrase is plain
# lowercase words (no regex syntax).
test_broad_phrases_are_plain_words if {
	count(broad_phrases) > 0
	every phrase in broad_phrases {
		regex.match(`^[a-z ]+$`, phrase)
	}
}
