//! Checksum and structure validators. Each takes the bare characters (separators already removed) and never
//! panics, whatever it is given.

/// US SSN rules: area not 000, 666 or 900-999; group not 00; serial not 0000. `digits` must be 9 ASCII digits.
pub(crate) fn ssn(digits: &[u8]) -> bool {
    if digits.len() != 9 || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let area = number(&digits[0..3]);
    let group = number(&digits[3..5]);
    let serial = number(&digits[5..9]);
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// Luhn mod-10 check over ASCII digits.
pub(crate) fn luhn(digits: &[u8]) -> bool {
    if digits.len() < 2 || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// A payment card: Luhn plus a brand whose prefix and length match.
pub(crate) fn card(digits: &[u8]) -> bool {
    card_brand_ok(digits) && luhn(digits)
}

fn card_brand_ok(d: &[u8]) -> bool {
    let len = d.len();
    if !(12..=19).contains(&len) {
        return false;
    }
    let p = |n: usize| number(&d[..n]);
    let (p1, p2, p3, p4, p6) = (p(1), p(2), p(3), p(4), p(6));
    match p1 {
        // Visa
        4 => matches!(len, 13 | 16 | 19),
        // Mastercard (51-55, 2221-2720), Maestro (50, 56-58)
        5 => ((51..=55).contains(&p2) && len == 16) || (matches!(p2, 50 | 56..=58) && len >= 12),
        2 => (2221..=2720).contains(&p4) && len == 16,
        // Amex 34/37, Diners 300-305/36/38/39, JCB 3528-3589
        3 => {
            (matches!(p2, 34 | 37) && len == 15)
                || (((300..=305).contains(&p3) || matches!(p2, 36 | 38 | 39)) && (14..=19).contains(&len))
                || ((3528..=3589).contains(&p4) && (16..=19).contains(&len))
        }
        // Discover 6011/644-649/65/622126-622925, UnionPay 62, Maestro 6304/6759/676x
        6 => {
            let discover =
                p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 || (622_126..=622_925).contains(&p6);
            let unionpay = p2 == 62;
            let maestro = matches!(p4, 6304 | 6759 | 6761..=6763);
            (discover || unionpay) && (16..=19).contains(&len) || maestro && len >= 12
        }
        _ => false,
    }
}

/// IBAN: known country, that country's length, mod-97 == 1. `chars` are uppercase ASCII alphanumerics.
pub(crate) fn iban(chars: &[u8]) -> bool {
    if chars.len() < 15 || chars.len() > 34 {
        return false;
    }
    let Some(expected) = iban_length(&chars[..2]) else {
        return false;
    };
    if chars.len() != expected || !chars[2].is_ascii_digit() || !chars[3].is_ascii_digit() {
        return false;
    }
    let mut rem = 0u32;
    for &c in chars[4..].iter().chain(&chars[..4]) {
        match c {
            b'0'..=b'9' => rem = (rem * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => rem = (rem * 100 + u32::from(c - b'A' + 10)) % 97,
            _ => return false,
        }
    }
    rem == 1
}

pub(crate) fn iban_length(country: &[u8]) -> Option<usize> {
    const TABLE: &[(&[u8; 2], usize)] = &[
        (b"AD", 24),
        (b"AE", 23),
        (b"AL", 28),
        (b"AT", 20),
        (b"AZ", 28),
        (b"BA", 20),
        (b"BE", 16),
        (b"BG", 22),
        (b"BH", 22),
        (b"BR", 29),
        (b"BY", 28),
        (b"CH", 21),
        (b"CR", 22),
        (b"CY", 28),
        (b"CZ", 24),
        (b"DE", 22),
        (b"DK", 18),
        (b"DO", 28),
        (b"EE", 20),
        (b"EG", 29),
        (b"ES", 24),
        (b"FI", 18),
        (b"FO", 18),
        (b"FR", 27),
        (b"GB", 22),
        (b"GE", 22),
        (b"GI", 23),
        (b"GL", 18),
        (b"GR", 27),
        (b"GT", 28),
        (b"HR", 21),
        (b"HU", 28),
        (b"IE", 22),
        (b"IL", 23),
        (b"IQ", 23),
        (b"IS", 26),
        (b"IT", 27),
        (b"JO", 30),
        (b"KW", 30),
        (b"KZ", 20),
        (b"LB", 28),
        (b"LC", 32),
        (b"LI", 21),
        (b"LT", 20),
        (b"LU", 20),
        (b"LV", 21),
        (b"LY", 25),
        (b"MC", 27),
        (b"MD", 24),
        (b"ME", 22),
        (b"MK", 19),
        (b"MR", 27),
        (b"MT", 31),
        (b"MU", 30),
        (b"NL", 18),
        (b"NO", 15),
        (b"PK", 24),
        (b"PL", 28),
        (b"PS", 29),
        (b"PT", 25),
        (b"QA", 29),
        (b"RO", 24),
        (b"RS", 22),
        (b"SA", 24),
        (b"SC", 31),
        (b"SE", 24),
        (b"SI", 19),
        (b"SK", 24),
        (b"SM", 27),
        (b"ST", 25),
        (b"SV", 28),
        (b"TL", 23),
        (b"TN", 24),
        (b"TR", 26),
        (b"UA", 29),
        (b"VA", 22),
        (b"VG", 24),
        (b"XK", 20),
    ];
    TABLE.iter().find(|(c, _)| c.as_slice() == country).map(|&(_, n)| n)
}

/// ABA routing number: 9 digits, valid Federal Reserve prefix, 3-7-1 weighted sum divisible by 10.
pub(crate) fn aba(digits: &[u8]) -> bool {
    if digits.len() != 9 || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let prefix = number(&digits[..2]);
    if !matches!(prefix, 1..=12 | 21..=32 | 61..=72 | 80) {
        return false;
    }
    let w = [3u32, 7, 1];
    let sum: u32 = digits.iter().enumerate().map(|(i, d)| w[i % 3] * u32::from(d - b'0')).sum();
    sum.is_multiple_of(10)
}

/// NHS number: 10 digits, mod-11 check digit (a remainder giving 10 is invalid).
pub(crate) fn nhs(digits: &[u8]) -> bool {
    if digits.len() != 10 || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = digits[..9].iter().enumerate().map(|(i, d)| (10 - i as u32) * u32::from(d - b'0')).sum();
    let check = match 11 - sum % 11 {
        11 => 0,
        10 => return false,
        c => c,
    };
    check == u32::from(digits[9] - b'0') && digits.iter().any(|&d| d != digits[0])
}

/// Canadian SIN: 9 digits, Luhn, first digit not 8 (business numbers).
pub(crate) fn sin(digits: &[u8]) -> bool {
    digits.len() == 9 && digits[0] != b'8' && luhn(digits)
}

/// Aadhaar: 12 digits, first digit 2-9, Verhoeff check digit.
pub(crate) fn aadhaar(digits: &[u8]) -> bool {
    digits.len() == 12 && matches!(digits[0], b'2'..=b'9') && verhoeff(digits)
}

/// Verhoeff check over ASCII digits (the last digit is the check digit).
pub(crate) fn verhoeff(digits: &[u8]) -> bool {
    const D: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut c = 0u8;
    for (i, d) in digits.iter().rev().enumerate() {
        c = D[usize::from(c)][usize::from(P[i % 8][usize::from(d - b'0')])];
    }
    c == 0
}

/// India PAN: `AAAPA1234A` with a valid holder-type letter in fourth place.
pub(crate) fn pan(chars: &[u8]) -> bool {
    chars.len() == 10
        && chars[..5].iter().all(u8::is_ascii_uppercase)
        && matches!(chars[3], b'A' | b'B' | b'C' | b'F' | b'G' | b'H' | b'J' | b'L' | b'P' | b'T')
        && chars[5..9].iter().all(u8::is_ascii_digit)
        && chars[9].is_ascii_uppercase()
}

/// GSTIN: state code 01-38 or 97/99, an embedded PAN, entity number, `Z`, base-36 check character.
pub(crate) fn gstin(chars: &[u8]) -> bool {
    if chars.len() != 15 || !chars.iter().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()) {
        return false;
    }
    if !chars[..2].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let state = number(&chars[..2]);
    if !matches!(state, 1..=38 | 97 | 99) || !pan(&chars[2..12]) {
        return false;
    }
    let value = |c: u8| {
        if c.is_ascii_digit() { u32::from(c - b'0') } else { u32::from(c - b'A') + 10 }
    };
    let mut sum = 0u32;
    for (i, &c) in chars[..14].iter().enumerate() {
        let product = value(c) * if i % 2 == 0 { 1 } else { 2 };
        sum += product / 36 + product % 36;
    }
    let check = (36 - sum % 36) % 36;
    value(chars[14]) == check
}

/// UK NINO: two prefix letters (not D, F, I, Q, U, V; second not O; not BG/GB/KN/NK/NT/TN/ZZ), six digits,
/// suffix A-D.
pub(crate) fn nino(chars: &[u8]) -> bool {
    if chars.len() != 9 || !chars[2..8].iter().all(u8::is_ascii_digit) || !matches!(chars[8], b'A'..=b'D') {
        return false;
    }
    let (a, b) = (chars[0], chars[1]);
    let bad = |c: u8| matches!(c, b'D' | b'F' | b'I' | b'Q' | b'U' | b'V');
    if !a.is_ascii_uppercase() || !b.is_ascii_uppercase() || bad(a) || bad(b) || b == b'O' {
        return false;
    }
    !matches!(&chars[..2], b"BG" | b"GB" | b"KN" | b"NK" | b"NT" | b"TN" | b"ZZ")
}

/// A calendar date that is a plausible date of birth (years 1900-2030).
pub(crate) fn date(year: u32, month: u32, day: u32) -> bool {
    if !(1900..=2030).contains(&year) || !(1..=12).contains(&month) || day == 0 {
        return false;
    }
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    day <= days
}

/// The decimal value of ASCII digits (saturating; callers pass short slices).
pub(crate) fn number(digits: &[u8]) -> u32 {
    digits
        .iter()
        .fold(0u32, |acc, d| acc.saturating_mul(10).saturating_add(u32::from(d.wrapping_sub(b'0') % 10)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(f: fn(&[u8]) -> bool, cases: &[(&str, bool)]) {
        for (input, expected) in cases {
            assert_eq!(f(input.as_bytes()), *expected, "{input}");
        }
    }

    #[test]
    fn ssn_rules() {
        check(
            ssn,
            &[
                ("123456789", true),
                ("000123456", false),
                ("666123456", false),
                ("900123456", false),
                ("123004567", false),
                ("123450000", false),
                ("12345678", false),
                ("12345678a", false),
            ],
        );
    }

    #[test]
    fn cards() {
        check(
            card,
            &[
                ("4532015112830366", true),
                ("378282246310005", true),
                ("6011111111111117", true),
                ("30569309025904", true),
                ("3530111333300000", true),
                ("2223000048400011", true),
                ("5555555555554444", true),
                ("4532015112830367", false),
                ("1234567890123456", false),
                ("9999999999999995", false),
                ("", false),
            ],
        );
    }

    #[test]
    fn ibans() {
        check(
            iban,
            &[
                ("DE89370400440532013000", true),
                ("GB82WEST12345698765432", true),
                ("FR1420041010050500013M02606", true),
                ("NO9386011117947", true),
                ("DE89370400440532013001", false),
                ("XX00000000000000000000", false),
                ("GB82WEST1234569876543", false),
            ],
        );
    }

    #[test]
    fn routing_numbers() {
        check(aba, &[("021000021", true), ("011401533", true), ("000000000", false), ("021000022", false)]);
    }

    #[test]
    fn nhs_numbers() {
        check(
            nhs,
            &[("9434765919", true), ("4010232137", true), ("9434765918", false), ("0000000000", false)],
        );
    }

    #[test]
    fn sins() {
        check(sin, &[("046454286", true), ("046454287", false), ("800000002", false)]);
    }

    #[test]
    fn verhoeff_and_aadhaar() {
        check(verhoeff, &[("2363", true), ("2364", false), ("", false)]);
        check(aadhaar, &[("234567890124", true), ("234567890123", false), ("012345678901", false)]);
    }

    #[test]
    fn pan_and_gstin() {
        check(
            pan,
            &[("ABCPD1234E", true), ("ABCDE1234F", false), ("abcpd1234e", false), ("ABCPD123E", false)],
        );
        check(gstin, &[("27AAPFU0939F1ZV", true), ("27AAPFU0939F1ZW", false), ("99AAPFU0939F1ZV", false)]);
    }

    #[test]
    fn ninos() {
        check(nino, &[("AB123456C", true), ("QQ123456C", false), ("GB123456A", false), ("AB123456E", false)]);
    }

    #[test]
    fn dates() {
        assert!(date(2000, 2, 29));
        assert!(!date(1900, 2, 29));
        assert!(!date(1985, 13, 1));
        assert!(!date(1850, 1, 1));
    }
}
