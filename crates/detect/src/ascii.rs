//! Patterns are written with the usual `\b`, `\s`, `\w`, `\d`; this rewrites them to their ASCII forms.
//! Unicode word boundaries make the lazy DFA give up on non-ASCII text and fall back to a slow engine, and the
//! attacks we match are ASCII keywords (text with non-ASCII characters is normalised first where it matters).

/// `pattern` with `\b \B \s \w \d` made ASCII-only, inside and outside character classes (the negated
/// classes `\S \W \D` stay Unicode: in ASCII form they would match bytes that are not UTF-8).
pub(crate) fn ascii(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 32);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(next) = chars.next() else {
                    out.push(c);
                    break;
                };
                let class = match next {
                    'w' => Some("0-9A-Za-z_"),
                    'd' => Some("0-9"),
                    's' => Some("\\t\\n\\x0B\\x0C\\r "),
                    _ => None,
                };
                match (in_class, class, next) {
                    (true, Some(class), _) => out.push_str(class),
                    (false, _, 'b' | 'B' | 's' | 'w' | 'd') => {
                        out.push_str("(?-u:\\");
                        out.push(next);
                        out.push(')');
                    }
                    _ => {
                        out.push(c);
                        out.push(next);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
                // A leading `]` or `^]` is a literal, not the end of the class.
                if chars.peek() == Some(&'^') {
                    out.push(chars.next().unwrap_or('^'));
                }
                if chars.peek() == Some(&']') {
                    out.push(chars.next().unwrap_or(']'));
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// A byte of the regex `\s` in its ASCII form (unlike `u8::is_ascii_whitespace`, it includes vertical tab):
/// for code that finds where such a pattern can match.
pub(crate) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

/// A byte of the regex `\w` in its ASCII form.
pub(crate) fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `is_space` and `is_word` are the classes the rewritten patterns use.
    #[test]
    fn byte_classes_are_the_patterns_classes() {
        let space = regex::bytes::Regex::new(&format!("^{}$", ascii(r"\s"))).unwrap();
        let word = regex::bytes::Regex::new(&format!("^{}$", ascii(r"\w"))).unwrap();
        for b in 0..=255u8 {
            assert_eq!(is_space(b), space.is_match(&[b]), "{b:#x}");
            assert_eq!(is_word(b), word.is_match(&[b]), "{b:#x}");
        }
    }

    fn check(pattern: &str, expected: &str) {
        assert_eq!(ascii(pattern), expected);
    }

    #[test]
    fn rewrites() {
        check(r"\bunion\s+select\b", r"(?-u:\b)union(?-u:\s)+select(?-u:\b)");
        check(r"[\w.]+", r"[0-9A-Za-z_.]+");
        check(r"[^\s'],\S", r"[^\t\n\x0B\x0C\r '],\S");
        check(r"\\b\.\(", r"\\b\.\(");
        check(r"[]a\d]", r"[]a0-9]");
    }
}
