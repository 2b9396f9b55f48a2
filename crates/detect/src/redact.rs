//! Redaction: replace each finding's span by what its kind's strategy says. The guide's formats are the
//! default (`***-**-****` SSN, `****-****-****-****` card, `***@***.***` email, `***-***-****` phone).

use std::borrow::Cow;
use std::fmt::Write as _;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::finding::Finding;
use crate::kind::{Category, Kind};

/// How a finding of one kind is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Redaction {
    /// The kind's fixed mask: the guide's formats for SSN, card, email and phone, `[REDACTED_PASSWORD]`-style
    /// labels for secrets and attacks, every letter and digit replaced by `*` for other personal data.
    Mask,
    /// Every letter and digit but the last four replaced by `*` (`***-**-6789`); fully masked when the value has
    /// four or fewer.
    KeepLast4,
    /// A stable pseudonym, `[ssn:<16 hex>]`: HMAC-SHA256 with the configured key over the kind and the value's
    /// letters and digits, so the same value gives the same pseudonym whatever its separators.
    KeyedHash,
    /// Deleted.
    Remove,
    /// Left as it is (the default for SQL injection and prompt injection, which policies block, not redact).
    Keep,
}

impl Redaction {
    /// The default strategy for a kind.
    pub fn default_for(kind: Kind) -> Redaction {
        match kind.category() {
            Category::Pii | Category::Secret => Redaction::Mask,
            Category::PromptInjection if kind == Kind::UnicodeSmuggling => Redaction::Remove,
            Category::Sqli | Category::PromptInjection => Redaction::Keep,
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

/// Replace the spans of `findings` in `text`. Overlapping spans are merged and replaced once, using the
/// strategy of the finding that starts first (the longest, on a tie). Findings that do not fit `text` (out of
/// range or off a char boundary) are ignored rather than trusted.
pub(crate) fn redact<'t>(
    text: &'t str,
    findings: &[Finding],
    strategy: impl Fn(Kind) -> Redaction,
    key: Option<&[u8]>,
) -> Cow<'t, str> {
    let mut spans: Vec<(usize, usize, Kind, Redaction)> = findings
        .iter()
        .filter(|f| {
            f.start < f.end
                && f.end <= text.len()
                && text.is_char_boundary(f.start)
                && text.is_char_boundary(f.end)
        })
        .map(|f| (f.start, f.end, f.kind, strategy(f.kind)))
        .filter(|s| s.3 != Redaction::Keep)
        .collect();
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    spans.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < spans.len() {
        let (start, mut end, kind, how) = spans[i];
        i += 1;
        while i < spans.len() && spans[i].0 < end {
            end = end.max(spans[i].1);
            i += 1;
        }
        out.push_str(&text[copied..start]);
        replace(&mut out, &text[start..end], kind, how, key);
        copied = end;
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

fn replace(out: &mut String, value: &str, kind: Kind, how: Redaction, key: Option<&[u8]>) {
    match how {
        Redaction::Keep => out.push_str(value),
        Redaction::Remove => {}
        Redaction::Mask => mask(out, value, kind),
        Redaction::KeepLast4 => {
            let alnum = value.chars().filter(|c| c.is_alphanumeric()).count();
            let keep_from = if alnum > 4 { alnum - 4 } else { usize::MAX };
            let mut seen = 0;
            for c in value.chars() {
                if c.is_alphanumeric() {
                    out.push(if seen >= keep_from { c } else { '*' });
                    seen += 1;
                } else {
                    out.push(c);
                }
            }
        }
        Redaction::KeyedHash => match key.and_then(|k| HmacSha256::new_from_slice(k).ok()) {
            Some(mut mac) => {
                mac.update(kind.as_str().as_bytes());
                mac.update(&[0]);
                if kind == Kind::Email {
                    mac.update(value.to_lowercase().as_bytes());
                } else {
                    for c in value.chars().filter(|c| c.is_alphanumeric()) {
                        let mut buf = [0u8; 4];
                        for l in c.to_lowercase() {
                            mac.update(l.encode_utf8(&mut buf).as_bytes());
                        }
                    }
                }
                let digest = mac.finalize().into_bytes();
                let _ = write!(out, "[{}:", kind.as_str());
                for b in &digest[..8] {
                    let _ = write!(out, "{b:02x}");
                }
                out.push(']');
            }
            // Unreachable through `DetectorSet` (a keyed hash without a key is refused when it is built); fail
            // closed all the same.
            None => mask(out, value, kind),
        },
    }
}

fn mask(out: &mut String, value: &str, kind: Kind) {
    match kind {
        Kind::Ssn => out.push_str("***-**-****"),
        Kind::CreditCard => out.push_str("****-****-****-****"),
        Kind::Email => out.push_str("***@***.***"),
        Kind::Phone => out.push_str("***-***-****"),
        Kind::PasswordAssignment => out.push_str("[REDACTED_PASSWORD]"),
        Kind::ApiKeyAssignment => out.push_str("[REDACTED_KEY]"),
        Kind::TokenAssignment => out.push_str("[REDACTED_TOKEN]"),
        _ if kind.category() == Category::Pii => {
            out.extend(value.chars().map(|c| if c.is_alphanumeric() { '*' } else { c }));
        }
        _ => {
            out.push_str("[REDACTED_");
            out.extend(kind.as_str().chars().map(|c| c.to_ascii_uppercase()));
            out.push(']');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, spans: &[(Kind, &str)], how: Redaction, expected: &str) {
        let findings: Vec<Finding> = spans
            .iter()
            .map(|(kind, part)| {
                let start = text.find(part).unwrap();
                Finding::new(*kind, start, start + part.len(), 1.0, None)
            })
            .collect();
        let got = redact(text, &findings, |_| how, Some(b"0123456789abcdef0123456789abcdef"));
        assert_eq!(got, expected, "{text}");
    }

    #[test]
    fn masks() {
        check(
            "Get data for SSN 123-45-6789",
            &[(Kind::Ssn, "123-45-6789")],
            Redaction::Mask,
            "Get data for SSN ***-**-****",
        );
        check(
            "card 4532 0151 1283 0366",
            &[(Kind::CreditCard, "4532 0151 1283 0366")],
            Redaction::Mask,
            "card ****-****-****-****",
        );
        check("mail a.b@c.io", &[(Kind::Email, "a.b@c.io")], Redaction::Mask, "mail ***@***.***");
        check("tel (415) 555-2671", &[(Kind::Phone, "(415) 555-2671")], Redaction::Mask, "tel ***-***-****");
        check(
            "password='secret123'",
            &[(Kind::PasswordAssignment, "secret123")],
            Redaction::Mask,
            "password='[REDACTED_PASSWORD]'",
        );
        check(
            "api_key=sk-12345678",
            &[(Kind::ApiKeyAssignment, "sk-12345678")],
            Redaction::Mask,
            "api_key=[REDACTED_KEY]",
        );
        check("IBAN DE89 3704", &[(Kind::Iban, "DE89 3704")], Redaction::Mask, "IBAN **** ****");
        check(
            "AKIAIOSFODNN7EXAMPLE",
            &[(Kind::AwsAccessKeyId, "AKIAIOSFODNN7EXAMPLE")],
            Redaction::Mask,
            "[REDACTED_AWS_ACCESS_KEY_ID]",
        );
    }

    #[test]
    fn other_strategies() {
        check("SSN 123-45-6789", &[(Kind::Ssn, "123-45-6789")], Redaction::KeepLast4, "SSN ***-**-6789");
        check("pin 1234", &[(Kind::Ssn, "1234")], Redaction::KeepLast4, "pin ****");
        check("SSN 123-45-6789.", &[(Kind::Ssn, "123-45-6789")], Redaction::Remove, "SSN .");
        check("SSN 123-45-6789", &[(Kind::Ssn, "123-45-6789")], Redaction::Keep, "SSN 123-45-6789");
        check(
            "SSN 123-45-6789",
            &[(Kind::Ssn, "123-45-6789")],
            Redaction::KeyedHash,
            "SSN [ssn:2f3c69d74df9910d]",
        );
    }

    #[test]
    fn keyed_hash_is_stable_across_separators() {
        let key = Some(b"0123456789abcdef0123456789abcdef".as_slice());
        let pseudonym = |text: &str| {
            let f = Finding::new(Kind::Ssn, 0, text.len(), 1.0, None);
            redact(text, &[f], |_| Redaction::KeyedHash, key).into_owned()
        };
        assert_eq!(pseudonym("123-45-6789"), pseudonym("123 45 6789"));
        assert_ne!(pseudonym("123-45-6789"), pseudonym("123-45-6780"));
    }

    #[test]
    fn overlaps_merge_and_bad_spans_are_ignored() {
        check(
            "x 123-45-6789 y",
            &[(Kind::Ssn, "123-45-6789"), (Kind::Phone, "45-6789")],
            Redaction::Mask,
            "x ***-**-**** y",
        );
        let text = "héllo";
        let bad = [Finding::new(Kind::Ssn, 1, 2, 1.0, None), Finding::new(Kind::Ssn, 3, 99, 1.0, None)];
        assert!(matches!(redact(text, &bad, |_| Redaction::Mask, None), Cow::Borrowed("héllo")));
    }
}
