package axonflow.policy.hipaa

import rego.v1

test_assigned_from_context if {
	allow with input as {
		"query": "Labs for patient P-1042.",
		"context": {"user_role": "nurse", "user_id": "n1", "assigned_patients": ["P-1042"]}
	}
}

test_assigned_from_data if {
	allow with input as {"query": "Labs for patient P-9", "context": {"user_role": "doctor", "user_id": "d1"}}
		with data.axonflow.hipaa.assignments as {"d1": ["P-9"]}
}

test_not_assigned if {
	not allow with input as {"query": "Labs for patient P-9", "context": {"user_role": "doctor", "user_id": "d1"}}
	not allow with input as {"query": "Labs for patient P-9", "context": {"user_role": "admin", "user_id": "d1", "assigned_patients": ["P-9"]}}
}

test_patient_id_from_context if {
	extract_patient_id("anything") == "P-1" with input.context.patient_id as "P-1"
	not extract_patient_id("no id here") with input.context as {}
	not extract_patient_id("ends with patient") with input.context as {}
	not extract_patient_id("for patient ") with input.context as {}
	extract_patient_id("Show labs for patient P-7, urgently please") == "P-7" with input.context as {}
	extract_patient_id("PATIENT Q-8") == "Q-8" with input.context as {}
}

test_broad_query_denied if {
	deny["HIPAA violation: minimum necessary rule"] with input as {"query": "List all patients", "context": {"user_role": "nurse"}}
	count(deny) == 0 with input as {"query": "List all patients", "context": {"user_role": "admin"}}
}

test_phi_request if {
	phi_request with input as {"query": "", "context": {}, "detections": [{"kind": "medical_record_number", "category": "pii", "start": 0, "end": 1, "confidence": 1.0}]}
	not phi_request with input as {"query": "", "context": {}, "detections": []}
}

test_log_phi_access if {
	log := log_phi_access with input as {"query": "patient P-3", "context": {"data_classification": "phi", "user_id": "u1", "access_reason": "treatment"}}
	log.patient_id == "P-3"
	log.access_reason == "treatment"
	log.hipaa_compliance
	log2 := log_phi_access with input as {"query": "no id", "context": {"data_classification": "phi"}}
	log2.patient_id == null
	not log_phi_access with input as {"query": "patient P-3", "context": {}}
}
