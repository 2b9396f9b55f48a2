# Role-based access control (the guide's section 4.1 test suite is its specification).
#
# The role comes from the caller's context (`input.context.user_role`); a request without one gets the least
# privileged role, `user`. A role not in the table below has no permissions and is denied. Broad queries
# ("Get all customer data") need `query:bulk`, which only `admin` has: this is the guide's minimum-necessary
# rule (section 5.1) applied to every kind of record, and what makes `test_deny_regular_user` hold.
package axonflow.policy.rbac

import rego.v1

role_permissions := {
	"admin": {"query:read", "query:bulk", "query:write", "connector:admin", "phi:read_all"},
	"doctor": {"query:read", "phi:read"},
	"nurse": {"query:read", "phi:read"},
	"analyst": {"query:read", "query:write"},
	"user": {"query:read"},
	"service": {"query:read", "query:write"},
}

# Phrases that ask for whole populations of records rather than the records a task needs.
broad_phrases := [
	"all customer", "all patient", "all user", "all employee", "all record", "all account",
	"every customer", "every patient", "every user", "entire database", "entire table", "full dump",
]

default role := "user"

role := input.context.user_role

default permissions := set()

permissions := role_permissions[role]

known_role if role_permissions[role]

# One regex over the phrases rather than a `contains` per phrase: the interpreter spends about a microsecond
# resolving each builtin call, and the regex (compiled once, cached) finds any of them in one pass. The
# phrases are plain words and spaces (rbac_test.rego checks it), so the alternation matches exactly the
# queries that contain one of them.
broad_pattern := concat("|", broad_phrases)

broad_query if regex.match(broad_pattern, lower(input.query))

default allow := false

allow if {
	known_role
	"query:read" in permissions
	not broad_query
}

allow if {
	known_role
	"query:bulk" in permissions
}

deny contains sprintf("rbac: unknown role %q", [role]) if not known_role

deny contains "rbac: broad queries need the query:bulk permission (admin)" if {
	known_role
	broad_query
	not "query:bulk" in permissions
}
