//! The parser takes any string and never panics; no string but the issued one verifies.

use std::time::Duration;

use license::{Environment, inspect_unverified};
use proptest::prelude::*;

use crate::{EXPIRES, ISSUED, fixture, service_claims};

/// Runs everything that parses a key over `input`. Returning at all is the "never panics" half of the property.
fn parse_everything(verifier: &license::Verifier, input: &str) -> bool {
    let verified = verifier.verify(input, Environment::Prod, ISSUED, Duration::from_secs(3600)).is_ok();
    let _ = inspect_unverified(input);
    let _ = license::Fingerprint::of(
        &license::FingerprintKey::new(types::Secret::new(vec![7; 32])).unwrap(),
        input,
    );
    verified
}

/// Key-shaped noise: prefixes, base64url and hex runs, separators and the odd multi-byte character.
fn key_shaped() -> impl Strategy<Value = String> {
    let prefix = prop_oneof![Just("AXON-V2-"), Just("AXON-V1-"), Just("AXON-PRO-"), Just("AXON-"), Just("")];
    (prefix, "[A-Za-z0-9_=+/.é -]{0,300}", prop_oneof![Just("-"), Just(""), Just("--")], "[0-9a-fA-F]{0,140}")
        .prop_map(|(prefix, payload, separator, signature)| {
            format!("{prefix}{payload}{separator}{signature}")
        })
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, char),
    Insert(usize, char),
    Remove(usize),
    Truncate(usize),
    Swap(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let character = prop_oneof![
        proptest::char::range('0', '9'),
        proptest::char::range('a', 'z'),
        proptest::char::range('A', 'Z'),
        Just('-'),
        Just('_'),
        Just('='),
        Just('é'),
        Just('\0'),
        any::<char>(),
    ];
    let position = any::<prop::sample::Index>();
    prop_oneof![
        (position.clone(), character.clone()).prop_map(|(i, c)| Mutation::Replace(i.index(1 << 16), c)),
        (position.clone(), character).prop_map(|(i, c)| Mutation::Insert(i.index(1 << 16), c)),
        position.clone().prop_map(|i| Mutation::Remove(i.index(1 << 16))),
        position.clone().prop_map(|i| Mutation::Truncate(i.index(1 << 16))),
        (position.clone(), position).prop_map(|(i, j)| Mutation::Swap(i.index(1 << 16), j.index(1 << 16))),
    ]
}

fn apply(key: &str, mutations: &[Mutation]) -> String {
    let mut chars: Vec<char> = key.chars().collect();
    for mutation in mutations {
        let len = chars.len().max(1);
        match *mutation {
            Mutation::Replace(i, c) if !chars.is_empty() => chars[i % len] = c,
            Mutation::Insert(i, c) => chars.insert(i % (chars.len() + 1), c),
            Mutation::Remove(i) if !chars.is_empty() => drop(chars.remove(i % len)),
            Mutation::Truncate(i) => chars.truncate(i % (chars.len() + 1)),
            Mutation::Swap(i, j) if !chars.is_empty() => chars.swap(i % len, j % len),
            _ => {}
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_are_refused(input in any::<String>()) {
        let (_, verifier) = fixture();
        prop_assert!(!parse_everything(&verifier, &input));
    }

    #[test]
    fn key_shaped_strings_are_refused(input in key_shaped()) {
        let (_, verifier) = fixture();
        prop_assert!(!parse_everything(&verifier, &input));
    }

    #[test]
    fn mutated_keys_are_refused(mutations in prop::collection::vec(mutation(), 1..4)) {
        let (issuer, verifier) = fixture();
        let key = issuer.issue(&service_claims()).unwrap();
        let mutated = apply(key.expose(), &mutations);
        let verified = parse_everything(&verifier, &mutated);
        prop_assert_eq!(verified, mutated == *key.expose(), "mutated: {:?}", mutated);
        if mutated != *key.expose() {
            let error = verifier.verify(&mutated, Environment::Prod, ISSUED, Duration::ZERO).unwrap_err();
            crate::assert_no_part_of(key.expose(), &error.to_string());
        }
    }

    #[test]
    fn every_instant_is_decided_without_panic(now in any::<i64>(), grace_secs in any::<u64>()) {
        let (issuer, verifier) = fixture();
        let key = issuer.issue(&service_claims()).unwrap();
        let grace = Duration::from_secs(grace_secs);
        let result = verifier.verify(key.expose(), Environment::Prod, types::UnixMillis(now), grace);
        let before_expiry = (ISSUED.0 - 60_000..EXPIRES.0).contains(&now);
        prop_assert!(!before_expiry || result.is_ok());
    }
}
