# HIPAA minimum necessary and PHI access audit (the guide's section 5.1 example, in OPA v0 syntax).
#
# Changes from the guide, marked below: the `import future.keywords` that its use of `in` needs; the PHI audit
# log fires for PHI requests only and tolerates missing context fields (the guide's version silently logs
# nothing when `access_reason` is absent); and the two functions the guide calls but never defines are
# defined at the end: `extract_patient_id`, and the guide's `is_patient_assigned_to_user(input.query, user_id)`
# as `assigned(patient_id, user_id)` with the patient id computed once per request (`request_patient_id`,
# shared with the audit log, rather than extracted once for `allow` and again for the log).
package axonflow.policy.hipaa

import future.keywords

# Not in the guide: which requests touch PHI. The caller classifies the request, or the native detectors found
# a medical record number in it.
phi_request {
	input.context.data_classification == "phi"
}

phi_request {
	some d in input.detections
	d.kind == "medical_record_number"
}

# HIPAA minimum necessary rule
allow {
	input.context.user_role in ["doctor", "nurse"]
	assigned(request_patient_id, input.context.user_id)
}

# Deny broad queries
deny["HIPAA violation: minimum necessary rule"] {
	contains(lower(input.query), "all patients")
	input.context.user_role != "admin"
}

# Audit all PHI access (changed: PHI requests only; missing fields are null instead of silencing the log)
log_phi_access := metadata {
	phi_request
	metadata := {
		"hipaa_compliance": true,
		"phi_accessed": true,
		"user_id": object.get(input, ["context", "user_id"], null),
		"patient_id": patient_id,
		"access_reason": object.get(input, ["context", "access_reason"], null),
		"timestamp": time.now_ns(),
	}
}

default patient_id := null

patient_id := request_patient_id

# The patient this request is about (undefined when none is named).
request_patient_id := extract_patient_id(input.query)

# Not in the guide: a doctor or nurse is assigned to a patient when the caller's context lists the patient
# (the guide's section 4.3: "cache permissions in context") or the data document does
# (`data.axonflow.hipaa.assignments[user_id]`, a list of patient ids). Two membership tests, rather than the
# union of both lists as sets, which built three sets per request.
assigned(patient_id, _) {
	patient_id in input.context.assigned_patients
}

assigned(patient_id, user_id) {
	patient_id in data.axonflow.hipaa.assignments[user_id]
}

# Not in the guide: the patient a query is about. The caller may name it (`input.context.patient_id`);
# otherwise it is the word after the first "patient " ("Show labs for patient P-1042." -> "P-1042"), with
# trailing punctuation removed. Written with string builtins rather than a split of the query, which costs a
# string for every word: the word is the text after "patient " up to the next space (`substring` with a
# negative length, when there is none, takes the rest), within 64 characters.
extract_patient_id(query) := input.context.patient_id

extract_patient_id(query) := id {
	not input.context.patient_id
	at := indexof(lower(query), "patient ")
	at >= 0
	after := substring(query, at + 8, 64)
	id := trim_right(substring(after, 0, indexof(after, " ")), ".,;:?!")
	id != ""
}
