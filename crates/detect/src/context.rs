//! Context words near a candidate raise or lower its confidence ("SSN:" versus "order number"). One
//! Aho-Corasick automaton over all words, run only on the few bytes around a candidate.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// A set of context tags found near a candidate (a bit set over `Tag`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tags(u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Tag {
    Ssn = 1 << 0,
    Card = 1 << 1,
    Phone = 1 << 2,
    Routing = 1 << 3,
    Account = 1 << 4,
    Passport = 1 << 5,
    DriverLicense = 1 << 6,
    Birth = 1 << 7,
    Medical = 1 << 8,
    Nhs = 1 << 9,
    Sin = 1 << 10,
    Aadhaar = 1 << 11,
    Upi = 1 << 12,
    Iban = 1 << 13,
    Ip = 1 << 14,
    /// order, invoice, tracking, reference, ticket, serial, sku, isbn, version: the number is not personal.
    NotPersonal = 1 << 15,
    Nino = 1 << 16,
    Pan = 1 << 17,
}

impl Tags {
    pub(crate) fn has(self, tag: Tag) -> bool {
        self.0 & tag as u32 != 0
    }

    pub(crate) fn any_personal(self) -> bool {
        self.0 & !(Tag::NotPersonal as u32) != 0
    }
}

const WORDS: &[(&str, Tag)] = &[
    ("ssn", Tag::Ssn),
    ("social security", Tag::Ssn),
    ("soc sec", Tag::Ssn),
    ("ss#", Tag::Ssn),
    ("tin", Tag::Ssn),
    ("taxpayer", Tag::Ssn),
    ("card", Tag::Card),
    ("visa", Tag::Card),
    ("mastercard", Tag::Card),
    ("amex", Tag::Card),
    ("cc#", Tag::Card),
    ("credit", Tag::Card),
    ("debit", Tag::Card),
    ("pay with", Tag::Card),
    ("phone", Tag::Phone),
    ("call", Tag::Phone),
    ("tel", Tag::Phone),
    ("mobile", Tag::Phone),
    ("cell", Tag::Phone),
    ("fax", Tag::Phone),
    ("text me", Tag::Phone),
    ("whatsapp", Tag::Phone),
    ("contact", Tag::Phone),
    ("reach me", Tag::Phone),
    ("dial", Tag::Phone),
    ("routing", Tag::Routing),
    ("aba", Tag::Routing),
    ("rtn", Tag::Routing),
    ("transit number", Tag::Routing),
    ("account", Tag::Account),
    ("acct", Tag::Account),
    ("a/c", Tag::Account),
    ("bank", Tag::Account),
    ("deposit", Tag::Account),
    ("passport", Tag::Passport),
    ("driver", Tag::DriverLicense),
    ("driving licence", Tag::DriverLicense),
    ("driving license", Tag::DriverLicense),
    ("dl#", Tag::DriverLicense),
    ("dl no", Tag::DriverLicense),
    ("dl:", Tag::DriverLicense),
    ("licence", Tag::DriverLicense),
    ("license", Tag::DriverLicense),
    ("date of birth", Tag::Birth),
    ("dob", Tag::Birth),
    ("d.o.b", Tag::Birth),
    ("born", Tag::Birth),
    ("birth", Tag::Birth),
    ("mrn", Tag::Medical),
    ("medical record", Tag::Medical),
    ("patient id", Tag::Medical),
    ("chart number", Tag::Medical),
    ("health record", Tag::Medical),
    ("nhs", Tag::Nhs),
    ("health service", Tag::Nhs),
    ("sin", Tag::Sin),
    ("social insurance", Tag::Sin),
    ("aadhaar", Tag::Aadhaar),
    ("aadhar", Tag::Aadhaar),
    ("uidai", Tag::Aadhaar),
    ("uid", Tag::Aadhaar),
    ("upi", Tag::Upi),
    ("vpa", Tag::Upi),
    ("iban", Tag::Iban),
    ("ip", Tag::Ip),
    ("host", Tag::Ip),
    ("server", Tag::Ip),
    ("address", Tag::Ip),
    ("national insurance", Tag::Nino),
    ("nino", Tag::Nino),
    ("ni number", Tag::Nino),
    ("pan", Tag::Pan),
    ("permanent account", Tag::Pan),
    ("order", Tag::NotPersonal),
    ("invoice", Tag::NotPersonal),
    ("tracking", Tag::NotPersonal),
    ("shipment", Tag::NotPersonal),
    ("reference", Tag::NotPersonal),
    ("ref", Tag::NotPersonal),
    ("ticket", Tag::NotPersonal),
    ("serial", Tag::NotPersonal),
    ("sku", Tag::NotPersonal),
    ("isbn", Tag::NotPersonal),
    ("ean", Tag::NotPersonal),
    ("upc", Tag::NotPersonal),
    ("gtin", Tag::NotPersonal),
    ("barcode", Tag::NotPersonal),
    ("version", Tag::NotPersonal),
    ("build", Tag::NotPersonal),
    ("release", Tag::NotPersonal),
    ("part no", Tag::NotPersonal),
    ("part number", Tag::NotPersonal),
    ("model", Tag::NotPersonal),
    ("transaction", Tag::NotPersonal),
    ("confirmation", Tag::NotPersonal),
    ("booking", Tag::NotPersonal),
    ("case #", Tag::NotPersonal),
    ("case number", Tag::NotPersonal),
    ("item", Tag::NotPersonal),
    ("batch", Tag::NotPersonal),
    ("lot", Tag::NotPersonal),
    ("id:", Tag::NotPersonal),
    ("request id", Tag::NotPersonal),
    ("trace", Tag::NotPersonal),
    ("timestamp", Tag::NotPersonal),
    ("epoch", Tag::NotPersonal),
];

/// Bytes before a candidate that are searched for context words.
const BEFORE: usize = 40;
/// Bytes after a candidate that are searched for context words.
const AFTER: usize = 8;

#[derive(Debug, Clone)]
pub(crate) struct ContextWords {
    automaton: AhoCorasick,
}

impl ContextWords {
    pub(crate) fn new() -> Result<ContextWords, aho_corasick::BuildError> {
        let automaton = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(WORDS.iter().map(|(w, _)| w))?;
        Ok(ContextWords { automaton })
    }

    /// The tags of whole words found shortly before `start` or shortly after `end`. Only the nearest personal
    /// tag before the candidate and any tag after it count, so "order 1, SSN 123-45-6789" reads as SSN.
    pub(crate) fn around(&self, text: &str, start: usize, end: usize) -> Tags {
        let mut tags = 0u32;
        let mut before_start = floor_char_boundary(text, start.saturating_sub(BEFORE));
        // A context word names the nearest value only: another number in between ends its reach.
        if let Some(end) = last_number_end(&text.as_bytes()[before_start..start]) {
            before_start += end;
        }
        let before = &text[before_start..start];
        for m in self.automaton.find_iter(before) {
            if is_whole_word(before, m.start(), m.end()) {
                // Later (nearer) words override earlier ones: keep only the last word's tag.
                tags = WORDS[m.pattern().as_usize()].1 as u32;
            }
        }
        if Tags(tags).any_personal() {
            return Tags(tags);
        }
        let after_end = ceil_char_boundary(text, (end + AFTER).min(text.len()));
        // Words after a value describe it only up to the end of its clause.
        let after = &text[end..after_end];
        let after = &after[..after.find(['.', ',', ';', '\n']).unwrap_or(after.len())];
        for m in self.automaton.find_iter(after) {
            if is_whole_word(after, m.start(), m.end()) && WORDS[m.pattern().as_usize()].1 != Tag::NotPersonal
            {
                tags |= WORDS[m.pattern().as_usize()].1 as u32;
            }
        }
        Tags(tags)
    }
}

/// The offset just past the last run of three or more digits in `bytes` (a previous value, not "ISBN-10").
fn last_number_end(bytes: &[u8]) -> Option<usize> {
    let mut run = 0;
    let mut last = None;
    for (i, b) in bytes.iter().enumerate() {
        if b.is_ascii_digit() {
            run += 1;
            if run >= 3 {
                last = Some(i + 1);
            }
        } else {
            run = 0;
        }
    }
    last
}

fn is_whole_word(hay: &str, start: usize, end: usize) -> bool {
    let bytes = hay.as_bytes();
    let word = |i: usize| bytes.get(i).is_some_and(|b| b.is_ascii_alphanumeric());
    let starts_word = bytes.get(start).is_some_and(|b| b.is_ascii_alphanumeric());
    let ends_word = end > 0 && bytes.get(end - 1).is_some_and(|b| b.is_ascii_alphanumeric());
    (!starts_word || start == 0 || !word(start - 1)) && (!ends_word || !word(end))
        // allow plural/possessive endings: "passports", "driver's"
        || (!starts_word || start == 0 || !word(start - 1)) && bytes.get(end) == Some(&b's')
            && !word(end + 1)
}

pub(crate) fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    if i >= text.len() {
        return text.len();
    }
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

pub(crate) fn ceil_char_boundary(text: &str, mut i: usize) -> usize {
    if i >= text.len() {
        return text.len();
    }
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, candidate: &str, expected: &[Tag]) {
        let words = ContextWords::new().unwrap();
        let start = text.find(candidate).unwrap();
        let tags = words.around(text, start, start + candidate.len());
        let expected = Tags(expected.iter().fold(0, |acc, t| acc | *t as u32));
        assert_eq!(tags, expected, "{text}");
    }

    #[test]
    fn context_words() {
        check("SSN: 123-45-6789", "123", &[Tag::Ssn]);
        check("Order number: 123-45-6789", "123", &[Tag::NotPersonal]);
        check("order 5, then SSN 123-45-6789", "123-", &[Tag::Ssn]);
        check("assassin 123", "123", &[]);
        check("my passports: X1234567", "X12", &[Tag::Passport]);
        check("123-45-6789 (SSN)", "123-45-6789", &[Tag::Ssn]);
        check("SSN: 117-27-8564 Also 276 426 442", "276", &[]);
        check("ISBN-10 0-493-13790-4", "0-493", &[Tag::NotPersonal]);
        check("card 4939830932636622. Also account 1", "4939", &[Tag::Card]);
        check("passport 12345 and SSN 1", "12345", &[Tag::Passport]);
        check("driving licence H8903267", "H89", &[Tag::DriverLicense]);
        check("ééé 12", "12", &[]);
    }
}
