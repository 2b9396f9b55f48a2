//! Personal data: one multi-pattern regex finds candidate shapes in a single pass, then Rust code classifies
//! each candidate with validators (Luhn, mod-97, Verhoeff, mod-11, ABA) and the context words around it.
//!
//! Numbers are read as runs of digit groups ("(555) 123-4567", "4532 0151 1283 0366"); a run that is not one
//! thing is retried as its space-separated parts, so "call 555-123-4567 555-987-6543" gives two phones.

use std::net::{Ipv4Addr, Ipv6Addr};

use regex_automata::Input;
use regex_automata::meta::Regex;

use crate::context::{ContextWords, Tag, Tags};
use crate::finding::Finding;
use crate::kind::{Kind, Validator};
use crate::regions::Regions;
use crate::validate;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Email,
    Ipv6,
    Iban,
    Gstin,
    Pan,
    Nino,
    DateWords,
    AlnumId,
    Numeric,
}

const MONTHS: &str = r"(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-zA-Z]{0,6}\.?";

fn patterns() -> Vec<(Shape, String)> {
    let b = r"(?-u:\b)";
    vec![
        (
            Shape::Email,
            r"[\p{L}\p{N}][\p{L}\p{N}._%+'-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*".to_owned(),
        ),
        (Shape::Ipv6, r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.[0-9]{1,3}){0,3}".to_owned()),
        (Shape::Iban, format!(r"{b}[A-Z]{{2}}[0-9]{{2}}(?:[ ]?[A-Z0-9]{{4}}){{2,8}}(?:[ ]?[A-Z0-9]{{1,3}})?")),
        (Shape::Gstin, format!(r"{b}[0-9]{{2}}[A-Z]{{5}}[0-9]{{4}}[A-Z][0-9A-Z]Z[0-9A-Z]{b}")),
        (Shape::Pan, format!(r"{b}[A-Z]{{5}}[0-9]{{4}}[A-Z]{b}")),
        (Shape::Nino, format!(r"{b}[A-Z]{{2}}[ ]?[0-9]{{2}}[ ]?[0-9]{{2}}[ ]?[0-9]{{2}}[ ]?[A-D]{b}")),
        (
            Shape::DateWords,
            format!(
                r"{b}(?:{MONTHS}[ ]+[0-9]{{1,2}}(?:st|nd|rd|th)?,?[ ]+[0-9]{{4}}|[0-9]{{1,2}}(?:st|nd|rd|th)?[ ]+(?:of[ ]+)?{MONTHS},?[ ]+[0-9]{{4}}){b}"
            ),
        ),
        (Shape::AlnumId, format!(r"{b}(?:[A-Z]{{1,3}}[0-9]{{5,12}}|[A-Z]{{1,2}}[0-9][0-9A-Z]{{4,10}}){b}")),
        (
            Shape::Numeric,
            format!(r"(?:\+[ ]?|\(|{b})[0-9]+(?:(?:\)[ .-]?|[ ]?\(|[-./ ])[0-9]+)*"),
        ),
    ]
}

#[derive(Debug, Clone)]
pub(crate) struct PiiDetector {
    regex: Regex,
    shapes: Vec<Shape>,
}

impl PiiDetector {
    pub(crate) fn new() -> Result<PiiDetector, Box<regex_automata::meta::BuildError>> {
        let patterns = patterns();
        let regex = Regex::new_many(&patterns.iter().map(|(_, p)| p.as_str()).collect::<Vec<_>>())
            .map_err(Box::new)?;
        Ok(PiiDetector { regex, shapes: patterns.into_iter().map(|(s, _)| s).collect() })
    }

    pub(crate) fn scan(&self, text: &str, words: &ContextWords, out: &mut Vec<Finding>) {
        let scan = Scan { text, words };
        for (start, end) in Regions::new(text.as_bytes()) {
            self.scan_region(&scan, start, end, out);
        }
    }

    fn scan_region(&self, scan: &Scan<'_>, start: usize, end: usize, out: &mut Vec<Finding>) {
        let text = scan.text;
        let mut pos = start;
        while pos < end {
            let Some(m) = self.regex.search(&Input::new(text).range(pos..end)) else {
                break;
            };
            let (s, e) = (m.start(), m.end());
            let found = match self.shapes[m.pattern().as_usize()] {
                Shape::Numeric => {
                    scan.numeric(s, e, out);
                    true
                }
                Shape::Email => {
                    scan.email(s, e, out);
                    true
                }
                Shape::Ipv6 => {
                    scan.ipv6(s, e, out);
                    true
                }
                Shape::Iban => scan.iban(s, e, out),
                Shape::Gstin => {
                    scan.simple(s, e, Kind::Gstin, validate::gstin, 0.95, Validator::GstinChecksum, out)
                }
                Shape::Pan => {
                    let conf = if scan.tags(s, e).has(Tag::Pan) { 0.95 } else { 0.85 };
                    scan.simple(s, e, Kind::InPan, validate::pan, conf, Validator::PanStructure, out)
                }
                Shape::Nino => {
                    let conf = if scan.tags(s, e).has(Tag::Nino) { 0.95 } else { 0.8 };
                    scan.simple(s, e, Kind::UkNino, validate::nino, conf, Validator::NinoRules, out)
                }
                Shape::DateWords => {
                    scan.date_words(s, e, out);
                    true
                }
                Shape::AlnumId => {
                    scan.alnum_id(s, e, out);
                    true
                }
            };
            pos = if found || e <= s { e.max(next_char(text, s)) } else { next_char(text, s) };
        }
    }
}

fn next_char(text: &str, i: usize) -> usize {
    let mut j = i + 1;
    while j < text.len() && !text.is_char_boundary(j) {
        j += 1;
    }
    j
}

struct Scan<'a> {
    text: &'a str,
    words: &'a ContextWords,
}

/// At most this many digit groups are read as one number run; longer runs are read in chunks.
const MAX_GROUPS: usize = 16;
/// Windows of at most this many groups are tried as one number.
const MAX_WINDOW: usize = 8;

#[derive(Debug, Clone, Copy, Default)]
struct Group {
    start: usize,
    end: usize,
}

impl Scan<'_> {
    fn tags(&self, start: usize, end: usize) -> Tags {
        self.words.around(self.text, start, end)
    }

    fn push(&self, out: &mut Vec<Finding>, kind: Kind, start: usize, end: usize, conf: f32, v: Validator) {
        out.push(Finding::new(kind, start, end, conf, Some(v)));
    }

    /// Shapes whose only check is one validator over the alphanumerics.
    #[allow(clippy::too_many_arguments)]
    fn simple(
        &self,
        s: usize,
        e: usize,
        kind: Kind,
        check: fn(&[u8]) -> bool,
        conf: f32,
        v: Validator,
        out: &mut Vec<Finding>,
    ) -> bool {
        let mut buf = [0u8; 24];
        let Some(chars) = alnum(&self.text[s..e], &mut buf) else {
            return false;
        };
        if !check(chars) {
            return false;
        }
        self.push(out, kind, s, e, conf, v);
        true
    }

    fn iban(&self, s: usize, e: usize, out: &mut Vec<Finding>) -> bool {
        let bytes = self.text.as_bytes();
        let mut buf = [0u8; 40];
        let mut n = 0;
        let mut ends = [0usize; 40];
        for (i, &b) in bytes[s..e].iter().enumerate() {
            if b != b' ' && n < buf.len() {
                buf[n] = b;
                ends[n] = s + i + 1;
                n += 1;
            }
        }
        // The country fixes the length; the shape may run on into a following group, so cut it there.
        let Some(len) = validate::iban_length(&buf[..2.min(n)]).filter(|&len| len <= n) else {
            return false;
        };
        let end = ends[len - 1];
        if bytes.get(end).is_some_and(u8::is_ascii_alphanumeric) || !validate::iban(&buf[..len]) {
            return false;
        }
        self.push(out, Kind::Iban, s, end, 0.95, Validator::Mod97);
        true
    }

    fn email(&self, s: usize, e: usize, out: &mut Vec<Finding>) {
        let m = &self.text[s..e];
        let Some(at) = m.find('@') else { return };
        let (local, domain) = (&m[..at], &m[at + 1..]);
        if local.len() > 64 || local.ends_with('.') || local.contains("..") {
            return;
        }
        // `https://user@host/` is a URL's user part, not an address.
        if self.text[..s].ends_with("://") {
            return;
        }
        match domain.rfind('.') {
            Some(dot) => {
                let tld = &domain[dot + 1..];
                if (2..=24).contains(&tld.len()) && tld.bytes().all(|b| b.is_ascii_alphabetic()) {
                    self.push(out, Kind::Email, s, e, 0.9, Validator::EmailSyntax);
                }
            }
            None => {
                if local.len() < 3 || !domain.bytes().all(|b| b.is_ascii_alphabetic()) {
                    return;
                }
                if UPI_HANDLES.contains(&domain.to_ascii_lowercase().as_str()) {
                    self.push(out, Kind::UpiId, s, e, 0.85, Validator::UpiHandle);
                } else if self.tags(s, e).has(Tag::Upi) {
                    self.push(out, Kind::UpiId, s, e, 0.8, Validator::Context);
                }
            }
        }
    }

    fn ipv6(&self, s: usize, e: usize, out: &mut Vec<Finding>) {
        let bytes = self.text.as_bytes();
        let before_ok =
            s == 0 || !matches!(bytes[s - 1], b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z' | b'_' | b':' | b'.');
        let after_ok = !bytes.get(e).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b':' || *b == b'_');
        if !before_ok || !after_ok {
            return;
        }
        let m = &self.text[s..e];
        let groups = m.split(':').filter(|g| !g.is_empty()).count();
        if groups < 3 || !m.bytes().any(|b| b.is_ascii_digit()) || m.parse::<Ipv6Addr>().is_err() {
            return;
        }
        self.push(out, Kind::IpAddress, s, e, 0.85, Validator::IpParse);
    }

    fn date_words(&self, s: usize, e: usize, out: &mut Vec<Finding>) {
        if !self.tags(s, e).has(Tag::Birth) {
            return;
        }
        let m = &self.text[s..e];
        let lower = m.to_ascii_lowercase();
        let month = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
            .iter()
            .position(|name| lower.contains(name));
        let mut numbers = m.split(|c: char| !c.is_ascii_digit()).filter(|t| !t.is_empty());
        let (Some(month), Some(a), Some(b)) = (month, numbers.next(), numbers.next()) else {
            return;
        };
        let (day, year) = if a.len() == 4 { (b, a) } else { (a, b) };
        if validate::date(
            validate::number(year.as_bytes()),
            month as u32 + 1,
            validate::number(day.as_bytes()),
        ) {
            self.push(out, Kind::DateOfBirth, s, e, 0.9, Validator::CalendarDate);
        }
    }

    fn alnum_id(&self, s: usize, e: usize, out: &mut Vec<Finding>) {
        let tags = self.tags(s, e);
        let kind = if tags.has(Tag::Passport) {
            Kind::Passport
        } else if tags.has(Tag::DriverLicense) {
            Kind::DriverLicense
        } else if tags.has(Tag::Medical) {
            Kind::MedicalRecordNumber
        } else {
            return;
        };
        self.push(out, kind, s, e, 0.85, Validator::Context);
    }

    /// A run of digit groups: split it into groups, then classify the whole run or its space-separated parts.
    fn numeric(&self, s: usize, e: usize, out: &mut Vec<Finding>) {
        let bytes = self.text.as_bytes();
        let mut groups = [Group::default(); MAX_GROUPS];
        let mut n = 0;
        let mut i = s;
        let mut chunk_start = s;
        while i < e {
            if bytes[i].is_ascii_digit() {
                let start = i;
                while i < e && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                groups[n] = Group { start, end: i };
                n += 1;
                if n == MAX_GROUPS {
                    self.windows(chunk_start, &groups[..n], out);
                    n = 0;
                    chunk_start = i;
                }
            } else {
                i += 1;
            }
        }
        if n > 0 {
            self.windows(chunk_start, &groups[..n], out);
        }
    }

    fn windows(&self, run_start: usize, groups: &[Group], out: &mut Vec<Finding>) {
        let bytes = self.text.as_bytes();
        // A window may start or end only where groups are separated by a single space, and only when other
        // separators inside the run show where one number ends ("555-123-4567 555-987-6543"); a run of
        // space-separated groups is one number ("4532 0151 1283 0366").
        let space = |k: usize| &bytes[groups[k].end..groups[k + 1].start] == b" ";
        let uniform = (0..groups.len().saturating_sub(1)).all(space);
        let split_after = |k: usize| k + 1 >= groups.len() || !uniform && space(k);
        if uniform && groups.len() > 1 {
            let start = run_start;
            if !self.classify(start, groups, out) {
                // Not one number: a card may still hide in it ("4532 0151 1283 0366 7"), and only a card (Luhn
                // and brand) is strong enough to be picked out of a longer run of spaced digits.
                self.cards_in(groups, out);
            }
            return;
        }
        let mut i = 0;
        while i < groups.len() {
            let mut next = None;
            for j in (i + 1..=groups.len().min(i + MAX_WINDOW)).rev() {
                if !split_after(j - 1) {
                    continue;
                }
                let start = if i == 0 { run_start } else { groups[i].start };
                if self.classify(start, &groups[i..j], out) {
                    next = Some(j);
                    break;
                }
            }
            i = match next {
                Some(j) => j,
                None => {
                    let mut k = i + 1;
                    while k < groups.len() && !split_after(k - 1) {
                        k += 1;
                    }
                    k
                }
            };
        }
    }

    fn cards_in(&self, groups: &[Group], out: &mut Vec<Finding>) {
        let bytes = self.text.as_bytes();
        // The run's own context ("USPS tracking 9400 1000 ...") governs every part of it.
        let tags = self.tags(groups[0].start, groups[groups.len() - 1].end);
        let not_personal = tags.has(Tag::NotPersonal) && !tags.any_personal();
        let mut i = 0;
        'start: while i < groups.len() {
            for j in (i + 2..=groups.len().min(i + 5)).rev() {
                let window = &groups[i..j];
                let lens = Lens::of(window);
                let shape = lens.groups()[..lens.len - 1].iter().all(|&l| l == 4) && lens.last() <= 4
                    || lens.is(&[4, 6, 5])
                    || lens.is(&[4, 6, 4]);
                let mut buf = [0u8; 24];
                let mut n = 0;
                for g in window {
                    for &b in &bytes[g.start..g.end] {
                        if n < buf.len() {
                            buf[n] = b;
                            n += 1;
                        }
                    }
                }
                let edge = i == 0 || j == groups.len();
                if shape && edge && (13..=19).contains(&n) && validate::card(&buf[..n]) {
                    let (start, end) = (window[0].start, window[window.len() - 1].end);
                    let conf = if not_personal {
                        0.3
                    } else if tags.has(Tag::Card) {
                        0.98
                    } else {
                        0.9
                    };
                    self.push(out, Kind::CreditCard, start, end, conf, Validator::LuhnBrand);
                    i = j;
                    continue 'start;
                }
            }
            i += 1;
        }
    }

    /// Classify one window of digit groups; true if it was read as something (even as "not personal").
    fn classify(&self, start: usize, groups: &[Group], out: &mut Vec<Finding>) -> bool {
        let text = self.text;
        let bytes = text.as_bytes();
        let end = groups[groups.len() - 1].end;
        // The character after must not continue a word ("x123" extensions are allowed).
        if let Some(&next) = bytes.get(end) {
            let extension = next == b'x' && bytes.get(end + 1).is_some_and(u8::is_ascii_digit);
            if next.is_ascii_alphanumeric() && !extension || next == b'_' {
                return false;
            }
        }
        let mut buf = [0u8; 24];
        let mut n = 0;
        for g in groups {
            for &b in &bytes[g.start..g.end] {
                if n == buf.len() {
                    return false;
                }
                buf[n] = b;
                n += 1;
            }
        }
        let digits = &buf[..n];
        let lens: Lens = Lens::of(groups);
        let seps = Seps::of(bytes, groups);
        let plus = bytes[start] == b'+';
        let paren = seps.paren || bytes[start] == b'(';
        let tags = self.tags(start, end);
        let not_personal = tags.has(Tag::NotPersonal) && !tags.any_personal();
        let mut emit = |kind: Kind, conf: f32, v: Validator| {
            let conf = if not_personal { conf.min(0.3) } else { conf };
            out.push(Finding::new(kind, start, end, conf, Some(v)));
            true
        };

        if plus || paren {
            let ok = (8..=15).contains(&n);
            return ok
                && emit(
                    Kind::Phone,
                    if tags.has(Tag::Phone) { 0.95 } else { 0.85 },
                    Validator::PhoneNumbering,
                );
        }
        if seps.slash
            || (seps.only(b'.') && lens.is(&[2, 2, 4]))
            || lens.is(&[4, 2, 2])
            || lens.is(&[2, 2, 4])
        {
            return self.date(digits, &lens, tags) && emit(Kind::DateOfBirth, 0.9, Validator::CalendarDate);
        }
        if seps.only(b'.') && lens.len == 4 {
            return ipv4(text, start, end) && emit(Kind::IpAddress, 0.85, Validator::IpParse);
        }
        if seps.mixed || seps.dot && !(lens.is(&[3, 3, 4]) || lens.is(&[1, 3, 3, 4])) {
            return false;
        }
        let contiguous = lens.len == 1;
        let ctx = |tag: Tag| tags.has(tag);
        if ctx(Tag::Nhs) && n == 10 {
            return validate::nhs(digits) && emit(Kind::UkNhs, 0.95, Validator::Mod11);
        }
        if ctx(Tag::Account) && !ctx(Tag::Card) && (6..=17).contains(&n) && contiguous {
            return emit(Kind::BankAccount, 0.85, Validator::Context);
        }
        // National and international-prefix phone numbers: "028 9018709", "0665934274", "001-914-892-8452".
        let other_personal = tags.any_personal() && !ctx(Tag::Phone);
        if digits[0] == b'0'
            && (10..=15).contains(&n)
            && (!contiguous || n <= 11)
            && !other_personal
            && lens.last() >= 2
        {
            let conf = if ctx(Tag::Phone) {
                0.9
            } else if contiguous {
                0.55
            } else {
                0.7
            };
            return emit(Kind::Phone, conf, Validator::PhoneNumbering);
        }
        match n {
            9 => {
                if ctx(Tag::Routing) && validate::aba(digits) {
                    return emit(Kind::UsBankRouting, 0.95, Validator::AbaChecksum);
                }
                if ctx(Tag::Sin) && validate::sin(digits) {
                    return emit(Kind::CaSin, 0.95, Validator::Luhn);
                }
                if ctx(Tag::Ssn) && validate::ssn(digits) {
                    return emit(Kind::Ssn, 0.95, Validator::SsnRules);
                }
                if let Some(found) = self.by_context(tags, contiguous, &mut emit) {
                    return found;
                }
                if lens.is(&[3, 2, 4]) && validate::ssn(digits) {
                    return emit(Kind::Ssn, 0.6, Validator::SsnRules);
                }
                if lens.is(&[3, 3, 3]) && validate::sin(digits) {
                    return emit(Kind::CaSin, 0.6, Validator::Luhn);
                }
                if contiguous && validate::ssn(digits) {
                    return emit(Kind::Ssn, 0.35, Validator::SsnRules);
                }
                false
            }
            10 => {
                let phone_shape =
                    contiguous || lens.is(&[3, 3, 4]) || lens.is(&[2, 2, 2, 2, 2]) || lens.is(&[3, 3, 2, 2]);
                if ctx(Tag::Phone) && phone_shape {
                    return emit(Kind::Phone, 0.9, Validator::PhoneNumbering);
                }
                if let Some(found) = self.by_context(tags, contiguous, &mut emit) {
                    return found;
                }
                if !phone_shape {
                    return false;
                }
                if contiguous {
                    return nanp(digits) && emit(Kind::Phone, 0.4, Validator::PhoneNumbering);
                }
                if seps.space && lens.is(&[3, 3, 4]) && validate::nhs(digits) && !nanp(digits) {
                    return emit(Kind::UkNhs, 0.6, Validator::Mod11);
                }
                emit(
                    Kind::Phone,
                    if nanp(digits) || digits[0] == b'0' { 0.75 } else { 0.6 },
                    Validator::PhoneNumbering,
                )
            }
            11 if digits[0] == b'1' && lens.is(&[1, 3, 3, 4]) || digits[0] == b'0' && !contiguous => {
                emit(Kind::Phone, if ctx(Tag::Phone) { 0.9 } else { 0.7 }, Validator::PhoneNumbering)
            }
            12 => {
                if validate::aadhaar(digits) {
                    let conf = if ctx(Tag::Aadhaar) {
                        0.95
                    } else if lens.is(&[4, 4, 4]) {
                        0.75
                    } else {
                        0.45
                    };
                    return emit(Kind::Aadhaar, conf, Validator::Verhoeff);
                }
                self.by_context(tags, contiguous, &mut emit).unwrap_or(false)
            }
            13..=19 => {
                let card_shape = contiguous
                    || lens.groups().iter().take(lens.len - 1).all(|&l| l == 4) && lens.last() <= 4
                    || lens.is(&[4, 6, 5])
                    || lens.is(&[4, 6, 4]);
                if card_shape && validate::card(digits) {
                    let conf = if ctx(Tag::Card) { 0.98 } else { 0.9 };
                    return emit(Kind::CreditCard, conf, Validator::LuhnBrand);
                }
                self.by_context(tags, contiguous, &mut emit).unwrap_or(false)
            }
            _ if (5..=17).contains(&n) => self.by_context(tags, contiguous, &mut emit).unwrap_or(false),
            _ => false,
        }
    }

    /// Numbers that are personal only because a context word names them.
    fn by_context(
        &self,
        tags: Tags,
        contiguous: bool,
        emit: &mut impl FnMut(Kind, f32, Validator) -> bool,
    ) -> Option<bool> {
        if !contiguous && !tags.has(Tag::DriverLicense) {
            return None;
        }
        let kind = if tags.has(Tag::Passport) {
            Kind::Passport
        } else if tags.has(Tag::DriverLicense) {
            Kind::DriverLicense
        } else if tags.has(Tag::Medical) {
            Kind::MedicalRecordNumber
        } else if tags.has(Tag::Account) && !tags.has(Tag::Routing) {
            Kind::BankAccount
        } else {
            return None;
        };
        Some(emit(kind, 0.85, Validator::Context))
    }

    fn date(&self, digits: &[u8], lens: &Lens, tags: Tags) -> bool {
        if !tags.has(Tag::Birth) || lens.len != 3 {
            return false;
        }
        let g = lens.groups();
        let mut parts = [0u32; 3];
        let mut at = 0;
        for (k, &l) in g.iter().enumerate() {
            parts[k] = validate::number(&digits[at..at + l]);
            at += l;
        }
        let [a, b, c] = parts;
        let year = |y: u32, len: usize| {
            if len == 2 { if y > 30 { 1900 + y } else { 2000 + y } } else { y }
        };
        if g[0] == 4 {
            return validate::date(a, b, c);
        }
        let y = year(c, g[2]);
        validate::date(y, a, b) || validate::date(y, b, a)
    }
}

/// North American numbering plan: area code and exchange do not start with 0 or 1.
fn nanp(digits: &[u8]) -> bool {
    digits.len() == 10 && digits[0] >= b'2' && digits[3] >= b'2'
}

fn ipv4(text: &str, start: usize, end: usize) -> bool {
    let m = &text[start..end];
    let octets_canonical = m.split('.').all(|o| o == "0" || !o.starts_with('0'));
    octets_canonical && m.parse::<Ipv4Addr>().is_ok()
}

/// The alphanumerics of `s` (spaces dropped) in `buf`, or None when they do not fit.
fn alnum<'b>(s: &str, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let mut n = 0;
    for b in s.bytes().filter(u8::is_ascii_alphanumeric) {
        *buf.get_mut(n)? = b;
        n += 1;
    }
    Some(&buf[..n])
}

/// The lengths of the digit groups of a window.
#[derive(Debug)]
struct Lens {
    lens: [usize; MAX_WINDOW],
    len: usize,
}

impl Lens {
    fn of(groups: &[Group]) -> Lens {
        let mut lens = [0; MAX_WINDOW];
        for (l, g) in lens.iter_mut().zip(groups) {
            *l = g.end - g.start;
        }
        Lens { lens, len: groups.len().min(MAX_WINDOW) }
    }

    fn groups(&self) -> &[usize] {
        &self.lens[..self.len]
    }

    fn is(&self, expected: &[usize]) -> bool {
        self.groups() == expected
    }

    fn last(&self) -> usize {
        self.lens[self.len - 1]
    }
}

/// Which separators appear between the groups of a window.
#[derive(Debug, Default)]
struct Seps {
    space: bool,
    dash: bool,
    dot: bool,
    slash: bool,
    paren: bool,
    /// Different separators between groups (other than around parentheses).
    mixed: bool,
}

impl Seps {
    fn of(bytes: &[u8], groups: &[Group]) -> Seps {
        let mut seps = Seps::default();
        let mut first: Option<&[u8]> = None;
        for pair in groups.windows(2) {
            let sep = &bytes[pair[0].end..pair[1].start];
            for &b in sep {
                match b {
                    b' ' => seps.space = true,
                    b'-' => seps.dash = true,
                    b'.' => seps.dot = true,
                    b'/' => seps.slash = true,
                    _ => seps.paren = true,
                }
            }
            match first {
                None => first = Some(sep),
                Some(f) => seps.mixed |= f != sep,
            }
        }
        seps
    }

    fn only(&self, sep: u8) -> bool {
        !self.mixed
            && match sep {
                b'.' => self.dot && !self.space && !self.dash && !self.slash,
                _ => false,
            }
    }
}

const UPI_HANDLES: &[&str] = &[
    "upi",
    "ybl",
    "ibl",
    "axl",
    "paytm",
    "apl",
    "okaxis",
    "oksbi",
    "okhdfcbank",
    "okicici",
    "icici",
    "sbi",
    "hdfcbank",
    "axisbank",
    "kotak",
    "yesbank",
    "pnb",
    "boi",
    "unionbank",
    "idfcbank",
    "indus",
    "federal",
    "rbl",
    "aubank",
    "freecharge",
    "airtel",
    "jio",
    "waaxis",
    "wahdfcbank",
    "wasbi",
    "waicici",
    "axisb",
    "yapl",
    "abfspay",
    "fam",
    "slice",
    "jupiteraxis",
    "timecosmos",
    "ikwik",
    "postbank",
    "barodampay",
    "cnrb",
    "idbi",
    "kbl",
    "kvb",
    "sib",
    "dbs",
    "citi",
    "hsbc",
    "sc",
    "allbank",
    "andb",
    "mahb",
    "uco",
    "cbin",
    "ucobank",
    "indianbank",
    "pingpay",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// `expected` lists `kind@matched-text`; only findings at or above 0.5 confidence are shown.
    fn check(input: &str, expected: &[&str]) {
        let detector = PiiDetector::new().unwrap();
        let words = ContextWords::new().unwrap();
        let mut out = Vec::new();
        detector.scan(input, &words, &mut out);
        let got: Vec<String> = out
            .iter()
            .filter(|f| f.confidence >= 0.5)
            .map(|f| format!("{}@{}", f.kind, &input[f.start..f.end]))
            .collect();
        assert_eq!(got, expected, "{input}");
    }

    #[test]
    fn ssn() {
        check("Customer SSN is 123-45-6789", &["ssn@123-45-6789"]);
        check("SSN 123 45 6789.", &["ssn@123 45 6789"]);
        check("ssn: 123456789", &["ssn@123456789"]);
        check("SSN 000-12-3456", &[]);
        check("SSN 666-12-3456", &[]);
        check("SSN 123-45-0000", &[]);
        check("Order number: 123-45-6789", &[]);
        check("call 123-45-6789-0", &[]);
        check("A123-45-6789", &[]);
    }

    #[test]
    fn cards() {
        check("card 4532015112830366", &["credit_card@4532015112830366"]);
        check("4532 0151 1283 0366 exp 12/29", &["credit_card@4532 0151 1283 0366"]);
        check("4532-0151-1283-0366", &["credit_card@4532-0151-1283-0366"]);
        check("amex 3782 822463 10005", &["credit_card@3782 822463 10005"]);
        check("card 4532015112830367", &[]);
        check("ISBN 978-3-16-148410-0", &[]);
        check("4532 0151 1283 0366 7", &["credit_card@4532 0151 1283 0366"]);
        check("Card 6011 2289 3257 1320 was declined", &[]);
    }

    #[test]
    fn phones() {
        check("call (415) 555-2671 now", &["phone@(415) 555-2671"]);
        check("+1-780-563-6083x7783", &["phone@+1-780-563-6083"]);
        check("+44 20 7946 0958", &["phone@+44 20 7946 0958"]);
        check("+44(0)115 4960914", &["phone@+44(0)115 4960914"]);
        check("415.555.2671", &["phone@415.555.2671"]);
        check("04 15 39 15 00", &["phone@04 15 39 15 00"]);
        check("call 415-555-2671 or 415-555-2672", &["phone@415-555-2671", "phone@415-555-2672"]);
        check("+14155552671", &["phone@+14155552671"]);
        check("1 (786) 834-4978", &["phone@1 (786) 834-4978"]);
    }

    #[test]
    fn email_and_upi() {
        check("mail john.doe+x@example.co.uk today", &["email@john.doe+x@example.co.uk"]);
        check("pay ravi.k@okaxis", &["upi_id@ravi.k@okaxis"]);
        check("x = a@b", &[]);
        check("@mention", &[]);
    }

    #[test]
    fn ip_addresses() {
        check("host 192.168.1.20 up", &["ip_address@192.168.1.20"]);
        check("version 1.2.3.4", &[]);
        check("999.1.1.1", &[]);
        check("addr 2001:db8::8a2e:370:7334", &["ip_address@2001:db8::8a2e:370:7334"]);
        check("at 10:30:00 today", &[]);
        check("use std::io::Read", &[]);
    }

    #[test]
    fn bank_and_ids() {
        check("IBAN DE89 3704 0044 0532 0130 00", &["iban@DE89 3704 0044 0532 0130 00"]);
        check("IBAN GB82WEST12345698765432", &["iban@GB82WEST12345698765432"]);
        check("IBAN DE89370400440532013001", &[]);
        check("routing number 021000021", &["us_bank_routing@021000021"]);
        check("routing number 000000000", &[]);
        check("account number 12345678901", &["bank_account@12345678901"]);
        check("passport no. X12345678", &["passport@X12345678"]);
        check("driver's license D1234567", &["driver_license@D1234567"]);
        check("MRN: 00123456", &["medical_record_number@00123456"]);
        check("DOB 03/14/1985", &["date_of_birth@03/14/1985"]);
        check("born on 14 March 1985", &["date_of_birth@14 March 1985"]);
        check("released 2024-01-15", &[]);
    }

    #[test]
    fn national_ids() {
        check("NINO AB 12 34 56 C", &["uk_nino@AB 12 34 56 C"]);
        check("NHS number 943 476 5919", &["uk_nhs@943 476 5919"]);
        check("SIN 046 454 286", &["ca_sin@046 454 286"]);
        check("ABCPD1234E", &["in_pan@ABCPD1234E"]);
        check("ABCDE1234F", &[]);
        check("aadhaar: 2345 6789 0124", &["aadhaar@2345 6789 0124"]);
        check("aadhaar 1234567890123", &[]);
        check("GSTIN 27AAPFU0939F1ZV", &["gstin@27AAPFU0939F1ZV"]);
    }
}
