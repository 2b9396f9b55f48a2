//! `axonflow.redact_spans(text, spans, masks)`: the builtins this crate itself gives every policy, in the
//! compiled evaluator and in regorus' interpreter alike.
//!
//! Replacing the detectors' spans in a query with masks is the one step of the default bundle's decision that
//! costs most when written in Rego: per span a `sprintf`, an `object.get`, a `substring` of the whole query
//! and two `concat`s, about a fifth of the decision. Done natively it is one pass over the text.

use regorus::Value;

/// The builtins, by name, with their arity: this module's, and the `net.*` ones regorus leaves out without its
/// `arc` feature (`crate::net`).
pub(crate) const BUILTINS: [(&str, u8, NativeFn); 4] = [
    ("axonflow.redact_spans", 3, redact_spans),
    ("net.cidr_is_valid", 1, crate::net::cidr_is_valid),
    ("net.cidr_contains", 2, crate::net::cidr_contains),
    ("net.cidr_expand", 1, crate::net::cidr_expand),
];

/// A builtin of this crate: regorus' values in and out, an error message for bad arguments.
pub(crate) type NativeFn = fn(&[Value]) -> Result<Value, String>;

/// `text` with each span replaced by its mask. `spans` is an array of `[start, end, kind]` in characters, as
/// `input.detections` gives them (and as `substring` counts); `masks` maps a kind to its mask, and a kind it
/// does not name is masked as `[REDACTED:kind]`.
///
/// Spans may come in any order and may overlap: the text of every span is removed, and each span gives its
/// mask at its place (a span inside another, or overlapping it, adds its mask after the other's). Offsets
/// past the end of the text stop at the end. An offset that is not a non-negative integer, an end before its
/// start, a kind that is not a string or a mask that is not a string is an error (and the decision fails
/// closed).
pub(crate) fn redact_spans(args: &[Value]) -> Result<Value, String> {
    let [Value::String(text), Value::Array(spans), Value::Object(masks)] = args else {
        return Err("expects a string, an array of [start, end, kind] and an object of masks".to_owned());
    };
    let mut parsed = Vec::with_capacity(spans.len());
    for span in spans.iter() {
        let Value::Array(parts) = span else { return Err("each span must be [start, end, kind]".to_owned()) };
        let [start, end, Value::String(kind)] = parts.as_slice() else {
            return Err("each span must be [start, end, kind] with a string kind".to_owned());
        };
        let (start, end) = (offset(start)?, offset(end)?);
        if end < start {
            return Err(format!("span [{start}, {end}] ends before it starts"));
        }
        parsed.push((start, end, kind));
    }
    parsed.sort_by_key(|&(start, end, _)| (start, end));

    // Character offsets to byte offsets: the same numbers for ASCII text; otherwise each character's byte
    // offset, found in one pass over the text rather than a pass per span.
    let starts: Option<Vec<usize>> =
        (!text.is_ascii()).then(|| text.char_indices().map(|(b, _)| b).collect());
    let byte = |chars: usize| match &starts {
        None => chars.min(text.len()),
        Some(starts) => starts.get(chars).copied().unwrap_or(text.len()),
    };
    let mut out = String::with_capacity(text.len());
    let mut kept_to = 0; // in characters: the text before this is written or masked
    for (start, end, kind) in parsed {
        if start > kept_to {
            out.push_str(&text[byte(kept_to)..byte(start)]);
        }
        match masks.get(&Value::String(kind.clone())) {
            Some(Value::String(mask)) => out.push_str(mask),
            Some(_) => return Err(format!("the mask of {kind} is not a string")),
            None => {
                out.push_str("[REDACTED:");
                out.push_str(kind);
                out.push(']');
            }
        }
        kept_to = kept_to.max(end);
    }
    out.push_str(&text[byte(kept_to)..]);
    Ok(Value::String(out.into()))
}

fn offset(value: &Value) -> Result<usize, String> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| format!("span offset {value} is not a non-negative integer")),
        _ => Err(format!("span offset {value} is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(text: &str, spans: serde_json::Value) -> Result<String, String> {
        let masks = serde_json::json!({"ssn": "***-**-****", "email": "***@***.***"});
        let value = redact_spans(&[Value::from(text), Value::from(spans), Value::from(masks)])?;
        Ok(value.as_string().map_err(|e| e.to_string())?.to_string())
    }

    #[test]
    fn spans_are_replaced_by_their_masks_and_the_rest_is_kept() {
        let text = "SSN 123-45-6789 mail a@b.co end";
        assert_eq!(
            redact(text, serde_json::json!([[4, 15, "ssn"], [21, 27, "email"]])).as_deref(),
            Ok("SSN ***-**-**** mail ***@***.*** end")
        );
        assert_eq!(redact(text, serde_json::json!([])).as_deref(), Ok(text));
        assert_eq!(
            redact(text, serde_json::json!([[0, 3, "iban"]])).as_deref(),
            Ok("[REDACTED:iban] 123-45-6789 mail a@b.co end")
        );
    }

    #[test]
    fn offsets_count_characters_and_stop_at_the_end() {
        assert_eq!(
            redact("é 123-45-6789 ü", serde_json::json!([[2, 13, "ssn"]])).as_deref(),
            Ok("é ***-**-**** ü")
        );
        assert_eq!(redact("ab", serde_json::json!([[1, 50, "ssn"]])).as_deref(), Ok("a***-**-****"));
        assert_eq!(redact("ab", serde_json::json!([[9, 50, "ssn"]])).as_deref(), Ok("ab***-**-****"));
    }

    #[test]
    fn overlapping_and_unordered_spans_never_leave_text_of_a_span() {
        let text = "0123456789abcdef";
        // [0,10] holds [2,5] and [6,8]: nothing of 0..10 may come back.
        assert_eq!(
            redact(text, serde_json::json!([[6, 8, "email"], [0, 10, "ssn"], [2, 5, "email"]])).as_deref(),
            Ok("***-**-*******@***.******@***.***abcdef")
        );
        assert_eq!(
            redact(text, serde_json::json!([[0, 10, "ssn"], [5, 12, "email"]])).as_deref(),
            Ok("***-**-*******@***.***cdef")
        );
    }

    #[test]
    fn bad_spans_are_errors() {
        for spans in [
            serde_json::json!([[-1, 3, "ssn"]]),
            serde_json::json!([[1.5, 3, "ssn"]]),
            serde_json::json!([[4, 3, "ssn"]]),
            serde_json::json!([["1", 3, "ssn"]]),
            serde_json::json!([[1, 3, 7]]),
            serde_json::json!([[1, 3]]),
            serde_json::json!(["x"]),
        ] {
            assert!(redact("some text", spans.clone()).is_err(), "{spans}");
        }
        let masks = Value::from(serde_json::json!({"ssn": 1}));
        let spans = Value::from(serde_json::json!([[0, 1, "ssn"]]));
        assert!(redact_spans(&[Value::from("x"), spans.clone(), masks]).is_err());
        assert!(redact_spans(&[Value::from("x"), spans]).is_err());
    }
}
