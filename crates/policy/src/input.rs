//! The input document a policy sees (`input.*`), built from typed parts.

use std::collections::BTreeMap;

use regorus::Value;

/// One native detector finding. `start..end` are **byte** offsets into the query, as the detectors report
/// them; the policy sees **character** offsets (what Rego's `substring` counts), converted by [`Input`].
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// e.g. `ssn`, `credit_card`, `union_based`, `jailbreak`, `aws_access_key_id`.
    pub kind: String,
    /// `pii`, `sqli`, `prompt_injection` or `secret`.
    pub category: String,
    pub start: usize,
    pub end: usize,
    /// 0.0 to 1.0.
    pub confidence: f32,
}

/// Who is calling, as authenticated by the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principal {
    pub key_id: String,
    /// e.g. `license_key`, `service`, `admin`.
    pub kind: String,
    pub tenant: String,
    pub service: Option<String>,
    pub permissions: Vec<String>,
}

/// The input document:
/// `{ "query", "request_type", "context": {...free-form}, "principal": {...}, "detections": [...] }`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Input {
    pub query: String,
    /// e.g. `llm_chat`, `sql`, `mcp_tool`.
    pub request_type: String,
    /// Caller-supplied context: `user_id`, `user_role`, `tenant_id`, `client_id`, `connector`, `operation`, …
    pub context: serde_json::Map<String, serde_json::Value>,
    pub principal: Option<Principal>,
    pub detections: Vec<Detection>,
}

/// The input document's fixed keys, allocated once: each `Value::from(&str)` allocates, and a decision's input
/// has about twenty of them.
struct Keys {
    query: Value,
    request_type: Value,
    context: Value,
    principal: Value,
    detections: Value,
    kind: Value,
    category: Value,
    start: Value,
    end: Value,
    confidence: Value,
    key_id: Value,
    tenant: Value,
    service: Value,
    permissions: Value,
}

impl Keys {
    fn new() -> Keys {
        Keys {
            query: Value::from("query"),
            request_type: Value::from("request_type"),
            context: Value::from("context"),
            principal: Value::from("principal"),
            detections: Value::from("detections"),
            kind: Value::from("kind"),
            category: Value::from("category"),
            start: Value::from("start"),
            end: Value::from("end"),
            confidence: Value::from("confidence"),
            key_id: Value::from("key_id"),
            tenant: Value::from("tenant"),
            service: Value::from("service"),
            permissions: Value::from("permissions"),
        }
    }
}

std::thread_local! {
    /// One set per thread: regorus' values are not shared between threads (its `arc` feature is off).
    static KEYS: Keys = Keys::new();
}

/// The input's fixed key named `name`, if it is one: the compiled program indexes with these same
/// allocations, so its lookups match a key by address before comparing bytes (`program::member`).
pub(crate) fn shared_key(name: &str) -> Option<Value> {
    KEYS.with(|keys| shared(keys, name))
}

fn shared(keys: &Keys, name: &str) -> Option<Value> {
    [
        &keys.query,
        &keys.request_type,
        &keys.context,
        &keys.principal,
        &keys.detections,
        &keys.kind,
        &keys.category,
        &keys.start,
        &keys.end,
        &keys.confidence,
        &keys.key_id,
        &keys.tenant,
        &keys.service,
        &keys.permissions,
    ]
    .into_iter()
    .find(|key| matches!(key, Value::String(s) if **s == *name))
    .cloned()
}

impl Input {
    /// The Rego value of this input.
    pub(crate) fn to_value(&self) -> Value {
        KEYS.with(|keys| self.value(keys))
    }

    fn value(&self, keys: &Keys) -> Value {
        let mut root = BTreeMap::new();
        root.insert(keys.query.clone(), Value::from(self.query.as_str()));
        root.insert(keys.request_type.clone(), Value::from(self.request_type.as_str()));
        let context: BTreeMap<Value, Value> =
            self.context.iter().map(|(k, v)| (Value::from(k.as_str()), json_value(v))).collect();
        root.insert(keys.context.clone(), Value::from(context));
        if let Some(principal) = &self.principal {
            root.insert(keys.principal.clone(), principal_value(keys, principal));
        }
        let offsets = CharOffsets::new(&self.query);
        let mut detections: Vec<&Detection> = self.detections.iter().collect();
        detections.sort_by_key(|d| (d.start, d.end));
        let detections: Vec<Value> =
            detections.into_iter().map(|d| detection_value(keys, d, &offsets)).collect();
        root.insert(keys.detections.clone(), Value::from(detections));
        Value::from(root)
    }
}

/// A JSON value as a Rego value, converted directly (`Value::from(serde_json::Value)` takes the value and runs
/// it through serde's deserializer: the same result, several times the work).
pub(crate) fn json_value(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Value::from(u),
            (None, Some(i), _) => Value::from(i),
            (None, None, Some(f)) => Value::from(f),
            (None, None, None) => Value::from(value.clone()),
        },
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => Value::from(items.iter().map(json_value).collect::<Vec<_>>()),
        serde_json::Value::Object(map) => Value::from(
            map.iter().map(|(k, v)| (Value::from(k.as_str()), json_value(v))).collect::<BTreeMap<_, _>>(),
        ),
    }
}

fn principal_value(keys: &Keys, principal: &Principal) -> Value {
    // The pairs in their keys' order (see `detection_value`).
    let mut pairs = Vec::with_capacity(5);
    pairs.push((keys.key_id.clone(), Value::from(principal.key_id.as_str())));
    pairs.push((keys.kind.clone(), Value::from(principal.kind.as_str())));
    let permissions: Vec<Value> = principal.permissions.iter().map(|p| Value::from(p.as_str())).collect();
    pairs.push((keys.permissions.clone(), Value::from(permissions)));
    if let Some(service) = &principal.service {
        pairs.push((keys.service.clone(), Value::from(service.as_str())));
    }
    pairs.push((keys.tenant.clone(), Value::from(principal.tenant.as_str())));
    Value::from(pairs.into_iter().collect::<BTreeMap<_, _>>())
}

fn detection_value(keys: &Keys, detection: &Detection, offsets: &CharOffsets<'_>) -> Value {
    // The pairs in their keys' order: `BTreeMap::from` then only checks the order and builds the map in one
    // pass, where five inserts searched it five times (1,300 instructions per decision of three detections).
    let map = BTreeMap::from([
        (keys.category.clone(), Value::from(detection.category.as_str())),
        // Round to 3 decimals so 0.9f32 reads as 0.9, not 0.8999999761581421.
        (keys.confidence.clone(), Value::from((f64::from(detection.confidence) * 1000.0).round() / 1000.0)),
        (keys.end.clone(), Value::from(offsets.chars_before(detection.end))),
        (keys.kind.clone(), Value::from(detection.kind.as_str())),
        (keys.start.clone(), Value::from(offsets.chars_before(detection.start))),
    ]);
    Value::from(map)
}

/// Byte offset to character offset; free for ASCII text.
struct CharOffsets<'t> {
    text: &'t str,
    ascii: bool,
}

impl<'t> CharOffsets<'t> {
    fn new(text: &'t str) -> Self {
        CharOffsets { text, ascii: text.is_ascii() }
    }

    /// Characters before byte offset `byte` (offsets past the end count the whole text; an offset inside a
    /// character counts that character as before it).
    fn chars_before(&self, byte: usize) -> u64 {
        if self.ascii {
            return byte.min(self.text.len()) as u64;
        }
        self.text.char_indices().take_while(|(i, _)| *i < byte).count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, byte: usize, expect: u64) {
        assert_eq!(CharOffsets::new(text).chars_before(byte), expect, "{text:?} at {byte}");
    }

    #[test]
    fn json_is_converted_as_regorus_converts_it() {
        let document = serde_json::json!({
            "s": "é", "n": [0, -1, 1.5, 1e300, 18446744073709551615u64, -9223372036854775808i64, 2.0],
            "o": {"b": true, "z": null, "a": {"deep": []}}, "empty": {}
        });
        assert_eq!(json_value(&document), Value::from(document.clone()));
    }

    #[test]
    fn values_convert_to_json_as_regorus_serializes_them() {
        let document = serde_json::json!({
            "s": "é", "n": [0, -1, 1.5, 2.0, 1e300, 18446744073709551615u64, -9223372036854775808i64],
            "o": {"b": true, "z": null, "a": {"deep": []}}, "empty": {}
        });
        let mut values = vec![json_value(&document), Value::Undefined, Value::from(1e20), Value::from(-0.5)];
        let mut set = Value::new_set();
        let mut keyed = Value::new_object();
        let items = set.as_set_mut().expect("a set");
        items.insert(Value::from("b"));
        items.insert(Value::from(3));
        let fields = keyed.as_object_mut().expect("an object");
        fields.insert(Value::from(1), Value::from("number key"));
        fields.insert(Value::from("k"), Value::Null);
        values.extend([set, keyed]);
        for value in &values {
            let expected = serde_json::to_value(value).ok();
            assert_eq!(crate::compile::to_json(value).ok(), expected, "{value:?}");
        }
    }

    #[test]
    fn char_offsets() {
        check("abc", 0, 0);
        check("abc", 2, 2);
        check("abc", 9, 3);
        check("é123", 2, 1);
        check("é123", 5, 4);
        check("日本 123-45-6789", 7, 3);
        check("日本", 1, 1);
    }

    #[test]
    fn the_principal_is_an_object_of_its_fields() {
        let principal = Principal {
            key_id: "k1".into(),
            kind: "license_key".into(),
            tenant: "t1".into(),
            service: Some("billing".into()),
            permissions: vec!["query:read".into(), "mcp:*".into()],
        };
        let json = |principal: Principal| {
            let input = Input { principal: Some(principal), ..Input::default() };
            crate::compile::to_json(&input.to_value()).map(|v| v["principal"].to_string()).unwrap_or_default()
        };
        assert_eq!(
            json(principal.clone()),
            r#"{"key_id":"k1","kind":"license_key","permissions":["query:read","mcp:*"],"service":"billing","tenant":"t1"}"#
        );
        assert_eq!(
            json(Principal { service: None, permissions: Vec::new(), ..principal }),
            r#"{"key_id":"k1","kind":"license_key","permissions":[],"tenant":"t1"}"#
        );
    }

    #[test]
    fn detections_are_sorted_and_in_characters() {
        let input = Input {
            query: "é 123-45-6789 a@b.co".to_owned(),
            detections: vec![
                Detection {
                    kind: "email".into(),
                    category: "pii".into(),
                    start: 15,
                    end: 21,
                    confidence: 0.9,
                },
                Detection { kind: "ssn".into(), category: "pii".into(), start: 3, end: 14, confidence: 1.0 },
            ],
            ..Input::default()
        };
        let json = crate::compile::to_json(&input.to_value()).map(|v| v.to_string()).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"context":{},"detections":[{"category":"pii","confidence":1,"end":13,"kind":"ssn","start":2},{"category":"pii","confidence":0.9,"end":20,"kind":"email","start":14}],"query":"é 123-45-6789 a@b.co","request_type":""}"#
        );
    }
}
