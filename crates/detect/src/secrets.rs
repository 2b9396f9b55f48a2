//! Credentials: provider key formats (AWS, GitHub, OpenAI, Anthropic, Slack, Stripe, Google), JWTs, PEM private
//! keys, and `password=` / `api_key=` / `token=` assignments. For an assignment the finding covers the value
//! only, so redaction keeps the key name: `password=[REDACTED_PASSWORD]`.

use base64::Engine as _;
use regex_automata::Input;
use regex_automata::meta::Regex;

use crate::finding::Finding;
use crate::kind::{Kind, Validator};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Post {
    None,
    Jwt,
    Assignment,
    PrivateKey,
}

fn patterns() -> Vec<(Kind, f32, Post, &'static str)> {
    vec![
        (
            Kind::PrivateKey,
            0.99,
            Post::PrivateKey,
            r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----",
        ),
        (
            Kind::AwsAccessKeyId,
            0.95,
            Post::None,
            r"(?-u:\b)(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|A3T[A-Z0-9])[A-Z0-9]{16}(?-u:\b)",
        ),
        (
            Kind::AwsSecretAccessKey,
            0.95,
            Post::Assignment,
            r#"(?i)aws_?secret_?(?:access_?)?key["']?\s*[:=]\s*["']?[A-Za-z0-9/+=]{40}(?-u:\b)"#,
        ),
        (
            Kind::GithubToken,
            0.95,
            Post::None,
            r"(?-u:\b)(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})(?-u:\b)",
        ),
        (
            Kind::AnthropicApiKey,
            0.95,
            Post::None,
            r"(?-u:\b)sk-ant-(?:api|admin|oat)[0-9]{2}-[A-Za-z0-9_-]{20,}",
        ),
        (
            Kind::OpenaiApiKey,
            0.9,
            Post::None,
            r"(?-u:\b)sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}|(?-u:\b)sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}|(?-u:\b)sk-[A-Za-z0-9]{48}(?-u:\b)",
        ),
        (
            Kind::SlackToken,
            0.95,
            Post::None,
            r"(?-u:\b)xox[abposre]-[A-Za-z0-9-]{10,}|https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+",
        ),
        (Kind::StripeKey, 0.95, Post::None, r"(?-u:\b)(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"),
        (Kind::GoogleApiKey, 0.9, Post::None, r"(?-u:\b)AIza[0-9A-Za-z_-]{35}"),
        (Kind::Jwt, 0.9, Post::Jwt, r"(?-u:\b)eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{8,}"),
        (
            Kind::PasswordAssignment,
            0.9,
            Post::Assignment,
            r#"(?i)(?-u:\b)[a-z_]*(?:password|passwd|passphrase|pwd|pass)["']?\s*(?:[:=]|=>)\s*(?:"[^"\n]{3,}"|'[^'\n]{3,}'|["']?[^\s"',;&]{3,})"#,
        ),
        (
            Kind::ApiKeyAssignment,
            0.85,
            Post::Assignment,
            r#"(?i)(?-u:\b)[a-z_]*(?:api[_-]?key|apikey|access[_-]?key|secret[_-]?key|client[_-]?secret|private[_-]?key|secret)["']?\s*(?:[:=]|=>)\s*(?:"[^"\n]{6,}"|'[^'\n]{6,}'|["']?[^\s"',;&]{6,})"#,
        ),
        (
            Kind::TokenAssignment,
            0.8,
            Post::Assignment,
            r#"(?i)(?-u:\b)[a-z_]*(?:token|bearer|auth)["']?\s*(?:[:=]|=>)\s*(?:"[^"\n]{8,}"|'[^'\n]{8,}'|["']?[^\s"',;&]{8,})|(?i:authorization:\s*bearer\s+)[A-Za-z0-9._~+/=-]{8,}"#,
        ),
    ]
}

#[derive(Debug, Clone)]
pub(crate) struct SecretDetector {
    regex: Regex,
    meta: Vec<(Kind, f32, Post)>,
}

impl SecretDetector {
    pub(crate) fn new() -> Result<SecretDetector, Box<regex_automata::meta::BuildError>> {
        let patterns = patterns();
        let regex = Regex::new_many(&patterns.iter().map(|p| crate::ascii::ascii(p.3)).collect::<Vec<_>>())
            .map_err(Box::new)?;
        Ok(SecretDetector { regex, meta: patterns.into_iter().map(|(k, c, p, _)| (k, c, p)).collect() })
    }

    pub(crate) fn scan(&self, text: &str, out: &mut Vec<Finding>) {
        let mut pos = 0;
        while pos < text.len() {
            let Some(m) = self.regex.search(&Input::new(text).range(pos..)) else {
                break;
            };
            let (s, e) = (m.start(), m.end());
            let (kind, conf, post) = self.meta[m.pattern().as_usize()];
            let finding = match post {
                Post::None => Some(Finding::new(kind, s, e, conf, None)),
                Post::Jwt => jwt_header_ok(&text[s..e])
                    .then(|| Finding::new(kind, s, e, conf, Some(Validator::JwtHeader))),
                Post::PrivateKey => Some(Finding::new(kind, s, private_key_end(text, e), conf, None)),
                Post::Assignment => {
                    assignment_value(text, s, e).map(|(vs, ve)| Finding::new(kind, vs, ve, conf, None))
                }
            };
            let resume = match finding {
                // The value of an assignment may itself be a provider key: look inside it too.
                Some(f) if post == Post::Assignment => {
                    out.push(f);
                    f.start
                }
                Some(f) => {
                    out.push(f);
                    f.end.max(e)
                }
                None => e,
            };
            pos = resume.max(s + 1);
            while pos < text.len() && !text.is_char_boundary(pos) {
                pos += 1;
            }
        }
    }
}

/// The value of `key = value`: after the separator, without quotes. None for placeholders and code.
fn assignment_value(text: &str, s: usize, e: usize) -> Option<(usize, usize)> {
    let m = &text[s..e];
    let lower = m.to_ascii_lowercase();
    let value_start = if let Some(i) = lower.find("bearer ").filter(|_| lower.starts_with("authorization")) {
        i + "bearer ".len()
    } else {
        let sep = m.find([':', '='])?;
        let after = &m[sep..];
        sep + after.find(|c: char| !matches!(c, ':' | '=' | '>' | ' ' | '\t' | '"' | '\''))?
    };
    let mut value_end = m.len();
    if m.ends_with(['"', '\'']) && value_end > value_start + 1 {
        value_end -= 1;
    }
    let value = &m[value_start..value_end];
    // `token = get_token()`, `password: ${DB_PASSWORD}`, `password=<your password>`: not a secret.
    let next = text.as_bytes().get(e).copied();
    let call = value.ends_with('(')
        || value.ends_with(')')
            && value.find('(').is_some_and(|i| {
                i > 0 && value[..i].chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            });
    let variable = value.starts_with("${")
        || value.starts_with("$(")
        || value.starts_with("{{")
        || value.starts_with("%(")
        || value.starts_with('<') && value.ends_with('>')
        || value.len() > 2 && value.starts_with('%') && value.ends_with('%')
        || value.len() > 1
            && value.starts_with('$')
            && value[1..].chars().all(|c| c.is_ascii_uppercase() || c == '_');
    let placeholder = variable
        || value.chars().all(|c| c == '*' || c == 'x' || c == 'X' || c == '.')
        || call
        || matches!(
            value.to_ascii_lowercase().as_str(),
            "null"
                | "none"
                | "undefined"
                | "true"
                | "false"
                | "required"
                | "string"
                | "password"
                | "redacted"
                | "[redacted]"
        )
        || next == Some(b'(');
    (!placeholder && value_start < value_end).then_some((s + value_start, s + value_end))
}

fn private_key_end(text: &str, header_end: usize) -> usize {
    let rest = &text[header_end..];
    match rest.find("-----END ") {
        Some(i) => {
            let after = header_end + i + "-----END ".len();
            text[after..].find("-----").map_or(text.len(), |j| after + j + 5)
        }
        None => header_end,
    }
}

fn jwt_header_ok(token: &str) -> bool {
    let header = token.split('.').next().unwrap_or("");
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .is_some_and(|h| h.contains("\"alg\"") || h.contains("\"typ\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &[&str]) {
        let detector = SecretDetector::new().unwrap();
        let mut out = Vec::new();
        detector.scan(input, &mut out);
        let got: Vec<String> = out.iter().map(|f| format!("{}@{}", f.kind, &input[f.start..f.end])).collect();
        assert_eq!(got, expected, "{input}");
    }

    #[test]
    fn assignments() {
        check("password='secret123'", &["password_assignment@secret123"]);
        check("api_key=sk-12345678", &["api_key_assignment@sk-12345678"]);
        check(r#"{"password": "hunter22"}"#, &["password_assignment@hunter22"]);
        check("DB_PASSWORD: ${DB_PASSWORD}", &[]);
        check("token = get_token()", &[]);
        check("let api_key = std::env::var(\"API_KEY\")?;", &[]);
        check("auth_token=abcd1234efgh", &["token_assignment@abcd1234efgh"]);
        check("DB_PASSWORD: church885", &["password_assignment@church885"]);
        check("pwd='*4&1XMp9'", &["password_assignment@*4&1XMp9"]);
        check("password=D#1Z0Cz__!(kXP^", &["password_assignment@D#1Z0Cz__!(kXP^"]);
        check("password: ********", &[]);
        check("password=%3OTHu2Ct0Vz", &["password_assignment@%3OTHu2Ct0Vz"]);
        check("passwd = \"b(2DF+fx\"", &["password_assignment@b(2DF+fx"]);
        check("password: $DB_PASSWORD", &[]);
        check(r#""apiKey": "6MZ8PIpKPJ8f2CXDcN6e6Bl0e0"#, &["api_key_assignment@6MZ8PIpKPJ8f2CXDcN6e6Bl0e0"]);
        check("Authorization: Bearer abc.def.ghi123", &["token_assignment@abc.def.ghi123"]);
        check("Enter your password below", &[]);
    }

    #[test]
    fn provider_keys() {
        check("AKIAIOSFODNN7EXAMPLE", &["aws_access_key_id@AKIAIOSFODNN7EXAMPLE"]);
        check("-----BEGIN RSA PRIVATE KEY-----", &["private_key@-----BEGIN RSA PRIVATE KEY-----"]);
        check(
            "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY----- tail",
            &["private_key@-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----"],
        );
        check(
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            &["github_token@ghp_abcdefghijklmnopqrstuvwxyz0123456789"],
        );
        check("xoxb-123456789012-abcdefghij", &["slack_token@xoxb-123456789012-abcdefghij"]);
        check("sk_live_abcdefghijklmnop1234", &["stripe_key@sk_live_abcdefghijklmnop1234"]);
        check(
            "AIzaSyA1234567890abcdefghijklmnopqrstuv",
            &["google_api_key@AIzaSyA1234567890abcdefghijklmnopqrstuv"],
        );
        let jwt =
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        check(jwt, &[&format!("jwt@{jwt}")]);
        check(
            "sk-ant-api03-abcdefghijklmnopqrstuvwxyz",
            &["anthropic_api_key@sk-ant-api03-abcdefghijklmnopqrstuvwxyz"],
        );
        check(
            "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH",
            &["openai_api_key@sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH"],
        );
    }
}
