//! No key material in `Debug`, `Display` or error messages.

use std::time::Duration;

use license::{Environment, Fingerprint, FingerprintKey, SigningKey};

use crate::{ISSUED, assert_no_part_of, fixture, service_claims};

#[test]
fn issued_keys_print_as_redacted() {
    let (issuer, verifier) = fixture();
    let key = issuer.issue(&service_claims()).unwrap();
    assert_eq!(format!("{key:?}"), "Secret([redacted])");
    assert_eq!(format!("{key}"), "[redacted]");
    let verified = verifier.verify(key.expose(), Environment::Prod, ISSUED, Duration::ZERO).unwrap();
    assert_no_part_of(key.expose(), &format!("{verified:?} {issuer:?} {verifier:?}"));
}

#[test]
fn private_keys_print_as_redacted() {
    let signing_key = SigningKey::generate().unwrap();
    let pem = signing_key.to_pkcs8_pem().unwrap();
    let mut printed = format!("{signing_key:?} {signing_key:#?} {pem:?} {pem}");
    printed += &format!("{:?}", license::Issuer::new(signing_key));
    let der_base64: String = pem.expose().lines().filter(|line| !line.starts_with("-----")).collect();
    assert_no_part_of(&der_base64, &printed);
    let node_secret =
        FingerprintKey::new(types::Secret::new(b"0123456789abcdef0123456789abcdef".to_vec())).unwrap();
    assert_eq!(format!("{node_secret:?}"), "FingerprintKey([redacted])");
    let fingerprint = Fingerprint::of(&node_secret, "AXON-V2-x-y");
    assert_no_part_of(&fingerprint.to_hex(), &format!("{fingerprint:?}"));
}

#[test]
fn error_messages_hold_no_part_of_the_key() {
    let (issuer, verifier) = fixture();
    let key = issuer.issue(&service_claims()).unwrap();
    let key = key.expose();
    let inputs = [
        key.replace("AXON-V2-", "AXON-V3-"),
        key.replace("AXON-V2-", "AXON-PLUS-"),
        format!("{key}x"),
        format!("{}0", &key[..key.len() - 1]),
        key.to_uppercase(),
        key[..key.len() / 2].to_owned(),
        key.replacen('e', "é", 1),
    ];
    for input in &inputs {
        let error = verifier.verify(input, Environment::Dev, ISSUED, Duration::ZERO).unwrap_err();
        assert_no_part_of(key, &format!("{error} {error:?}"));
        assert_no_part_of(input, &format!("{error} {error:?}"));
    }
    let error = verifier.verify(key, Environment::Dev, ISSUED, Duration::ZERO).unwrap_err();
    assert_no_part_of(key, &format!("{error} {error:?}"));
}
