//! JSON written on the request path: a pre-check's response, its audit record's details and the record's line
//! in the audit journal.
//!
//! serde_json escapes strings one byte at a time, about 19 instructions a byte (callgrind), and a 1 KiB prompt
//! is written three times a request (the redacted query in the response and in the details, the details again
//! inside the journal line, escaped a second time). sonic-rs serializes the same `Serialize` types with SIMD
//! string escaping and gives the same text as serde_json (tested below on arbitrary strings), so records and
//! responses read as they did. Parsing stays with serde_json (`serde_json::from_slice` already skips through
//! strings a word at a time).

use serde::Serialize;

pub use sonic_rs::Error;

/// `value` as JSON text, as serde_json would write it.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    sonic_rs::to_string(value)
}

/// `value` as JSON, as serde_json would write it.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    sonic_rs::to_vec(value)
}

/// Appends `value` as JSON to `buf`, as serde_json would write it.
pub fn append<T: Serialize + ?Sized>(buf: &mut Vec<u8>, value: &T) -> Result<(), Error> {
    sonic_rs::to_writer(buf, value)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    #[derive(serde::Serialize)]
    struct Record<'a> {
        text: &'a str,
        optional: Option<&'a str>,
        skipped: Option<&'a str>,
        number: i64,
        unsigned: u64,
        fraction: f64,
        flag: bool,
        list: Vec<&'a str>,
        counts: BTreeMap<&'a str, usize>,
        value: serde_json::Value,
        tag: Tag,
    }

    #[derive(serde::Serialize)]
    enum Tag {
        #[serde(rename = "r")]
        Record { seq: i64 },
    }

    fn same(text: &str, number: i64, fraction: f64) {
        let record = Record {
            text,
            optional: Some(text),
            skipped: None,
            number,
            unsigned: number.unsigned_abs(),
            fraction,
            flag: number % 2 == 0,
            list: vec![text, "", text],
            counts: BTreeMap::from([(text, 1), ("email", 2)]),
            value: serde_json::json!({"user_role": text, "n": number, "nested": [fraction, null, {"k": text}]}),
            tag: Tag::Record { seq: number },
        };
        let ours = super::to_string(&record).expect("sonic");
        assert_eq!(ours, serde_json::to_string(&record).expect("serde_json"));
        assert_eq!(super::to_vec(&record).expect("vec"), ours.as_bytes());
        let mut buf = b"x".to_vec();
        super::append(&mut buf, &record).expect("append");
        assert_eq!(&buf[1..], ours.as_bytes());
    }

    #[test]
    fn what_is_written_is_what_serde_json_writes() {
        let prompt = "Please summarise the report for jane@example.com. ".repeat(20);
        same(&prompt, 7, 0.25);
        same(
            &format!("{prompt}\"quoted\" \\ back\tslash\n\r\u{8}\u{c}\u{0}\u{1f}\u{7f} é 漢字 😀 \u{2028}"),
            -3,
            1e300,
        );
        same(&"\u{1}".repeat(100), i64::MIN, -0.0);
        same("", i64::MAX, 123.456);
        same("x", 0, f64::NAN);
        same("x", 0, f64::INFINITY);
        same("x", 0, 5e-324);
    }

    /// Any JSON document: nulls, booleans, integers, floats, strings with anything in them, arrays and objects,
    /// nested.
    fn document() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            "\\PC{0,40}".prop_map(serde_json::Value::from),
            "[\u{0}-\u{7f}]{0,80}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::from),
                prop::collection::btree_map(".{0,12}", inner, 0..8)
                    .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_document_is_written_as_serde_json_writes_it(value in document()) {
            prop_assert_eq!(super::to_string(&value).expect("sonic"), serde_json::to_string(&value).expect("serde_json"));
        }

        #[test]
        fn any_text_is_written_as_serde_json_writes_it(
            text in ".{0,300}",
            control in "[\u{0}-\u{1f}\"\\\\/\u{7f}]{0,40}",
            number in any::<i64>(),
            fraction in -1e12f64..1e12,
        ) {
            same(&text, number, fraction);
            same(&format!("{text}{control}{text}"), number, fraction);
        }
    }
}
