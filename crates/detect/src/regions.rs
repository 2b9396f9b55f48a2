//! Where personal data can be: the few stretches of a text around digits and `@`. Finding them is one SIMD-ish
//! pass; the PII regex then runs only inside them, so prose with an occasional "3 releases" never reaches it.

/// Every personal-data shape holds a digit or an `@`, and all but a few rare ones hold four digits or more. The
/// regions worth a regex are the words around such characters: two whitespace-separated words either side of a
/// digit or `@`, merged while they touch, kept when they hold four digits, an `@`, or a `:` and a digit.
/// Prose with an occasional "3 releases" or "at 10" never reaches the regex.
#[derive(Debug)]
pub(crate) struct Regions<'t> {
    bytes: &'t [u8],
    pos: usize,
    /// The next trigger at or after `pos`, when already found.
    peeked: Option<usize>,
}

/// How far a region reaches over whole words from its trigger at most (long tokens such as base64 blobs).
const REACH: usize = 128;

impl<'t> Regions<'t> {
    pub(crate) fn new(bytes: &'t [u8]) -> Regions<'t> {
        Regions { bytes, pos: 0, peeked: None }
    }

    fn is_trigger(b: u8) -> bool {
        b.is_ascii_digit() || b == b'@'
    }

    /// Bytes that can be inside a number, an identifier or an address: a region never ends among them.
    fn is_sticky(b: u8) -> bool {
        b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'/' | b'(' | b')' | b'+' | b'@' | b'_' | b'%' | b'\'' | b':')
    }

    /// Start of the second word before `i` (at most `REACH` back, then back to the start of the token), never
    /// before `floor` and never inside a UTF-8 sequence.
    fn words_back(&self, i: usize, floor: usize) -> usize {
        let bytes = self.bytes;
        let reach = i.saturating_sub(REACH).max(floor);
        let mut j = i;
        for _ in 0..2 {
            while j > reach && !bytes[j - 1].is_ascii_whitespace() {
                j -= 1;
            }
            while j > reach && bytes[j - 1].is_ascii_whitespace() {
                j -= 1;
            }
        }
        while j > floor && Regions::is_sticky(bytes[j - 1]) {
            j -= 1;
        }
        while j < i && (bytes[j] & 0xC0) == 0x80 {
            j += 1;
        }
        j
    }

    /// End of the second word after `i` (at most `REACH` on, then on to the end of the token), on a char
    /// boundary.
    fn words_forward(&self, i: usize) -> usize {
        let bytes = self.bytes;
        let reach = (i + REACH).min(bytes.len());
        let mut j = i;
        for _ in 0..2 {
            while j < reach && !bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            while j < reach && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
        }
        while j < bytes.len() && Regions::is_sticky(bytes[j]) {
            j += 1;
        }
        while j < bytes.len() && (bytes[j] & 0xC0) == 0x80 {
            j += 1;
        }
        j
    }
}

impl Iterator for Regions<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        let bytes = self.bytes;
        loop {
            let first = match self.peeked.take() {
                Some(p) if p >= bytes.len() => return None,
                Some(p) => p,
                None => find_trigger(bytes, self.pos)?,
            };
            let start = self.words_back(first, self.pos);
            let mut end = self.words_forward(first);
            let (mut digits, mut at, mut colon) = (0, false, false);
            // Whether the token being read already extended the region (once per token is enough).
            let mut extended = true;
            let mut i = start;
            loop {
                while i < end {
                    let b = bytes[i];
                    if b.is_ascii_whitespace() {
                        extended = false;
                    } else if Regions::is_trigger(b) {
                        digits += usize::from(b.is_ascii_digit());
                        at |= b == b'@';
                        if !extended {
                            end = end.max(self.words_forward(i));
                            extended = true;
                        }
                    } else if b == b':' {
                        colon = true;
                    }
                    i += 1;
                }
                // A trigger whose words reach back into this region joins it ("... 863284244 Also OC 91 88 75 C").
                match find_trigger(bytes, end) {
                    Some(next) if self.words_back(next, start) < end => end = self.words_forward(next),
                    Some(next) => {
                        self.peeked = Some(next);
                        break;
                    }
                    None => {
                        self.peeked = Some(bytes.len());
                        break;
                    }
                }
            }
            self.pos = end.max(first + 1);
            if self.peeked.is_some_and(|p| p < self.pos) {
                self.peeked = None;
            }
            if digits >= 4 || at || colon && digits > 0 {
                return Some((start, end));
            }
        }
    }
}

/// The first ASCII digit or `@` at or after `from`, eight bytes at a time.
fn find_trigger(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = from;
    while i + 8 <= bytes.len() {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[i..i + 8]);
        let x = u64::from_le_bytes(word);
        // A byte is in 0x30..=0x40 ('0'..='9', ':'..'?', '@') when (x + (0x7F - 0x40)) has its high bit set and
        // (x + (0x7F - 0x2F)) ... computed per byte on 7-bit values; bytes >= 0x80 are excluded by `!x`.
        let low7 = x & !HIGH;
        let above_lo = low7 + ONES * (0x80 - 0x30);
        let above_hi = low7 + ONES * (0x80 - 0x41);
        let candidates = above_lo & !above_hi & !x & HIGH;
        if candidates != 0 {
            let first = i + (candidates.trailing_zeros() / 8) as usize;
            // Check the candidates one by one from the first (':' to '?' are candidates too).
            for (j, &b) in bytes[first..i + 8].iter().enumerate() {
                if Regions::is_trigger(b) {
                    return Some(first + j);
                }
            }
        }
        i += 8;
    }
    bytes[i.min(bytes.len())..].iter().position(|&b| Regions::is_trigger(b)).map(|p| i + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions(text: &str) -> Vec<&str> {
        Regions::new(text.as_bytes()).map(|(s, e)| &text[s..e]).collect()
    }

    #[test]
    fn finds_triggers_like_a_plain_scan() {
        let cases =
            ["", "abc", "abcdefgh1", "é@", "::::;;;;????====0", "\u{80}\u{7FF}9", "abcdefghijklmnop@", "0"];
        for text in cases {
            for from in 0..=text.len() {
                let plain =
                    text.as_bytes()[from..].iter().position(|&b| Regions::is_trigger(b)).map(|p| from + p);
                assert_eq!(find_trigger(text.as_bytes(), from), plain, "{text:?} from {from}");
            }
        }
        for b in 0..=255u8 {
            let bytes = [b'x', b'x', b, b'x', b'x', b'x', b'x', b'x', b'x'];
            assert_eq!(find_trigger(&bytes, 0), Regions::is_trigger(b).then_some(2), "byte {b:#x}");
        }
    }

    #[test]
    fn regions_around_numbers() {
        assert_eq!(regions("We shipped 3 releases at 10 today"), Vec::<&str>::new());
        assert_eq!(regions("a b c SSN is 123-45-6789 on file, thanks"), ["SSN is 123-45-6789 on file"]);
        assert_eq!(regions("mail x@y.io"), ["mail x@y.io"]);
        assert_eq!(regions("card 4532 0151 1283 0366 ok"), ["card 4532 0151 1283 0366 ok"]);
        assert_eq!(regions("é1234"), ["é1234"]);
        let json = format!("{{\"pad\":\"{}\",\"card\":\"4532015112830366\"}}", "x".repeat(300));
        assert!(regions(&json).iter().any(|r| r.contains("4532015112830366")));
    }
}
