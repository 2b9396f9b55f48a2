//! SQL injection in prompts and tool arguments: one multi-pattern regex over attack shapes, with Rust checks
//! where a shape alone would flag ordinary SQL (a comparison must be between constants, a DELETE or UPDATE
//! must lack its WHERE).

use regex_automata::meta::Regex;
use regex_automata::{Anchored, Input, Match};

use crate::finding::Finding;
use crate::kind::{Kind, Validator};

#[derive(Debug, Clone, Copy)]
enum Check {
    /// The shape is enough.
    None,
    /// A comparison after OR/AND must compare two constants.
    ConstantComparison,
    /// The statement must have no WHERE before its end.
    NoWhere,
}

const PRIVILEGES: &str = r"(?:all(?:\s+privileges)?|select|insert|update|delete|execute|usage|create|alter|drop|super|file|dba|connect|resource|references)(?:\s*,\s*\w+)*";

fn patterns() -> Vec<(Kind, f32, Check, String)> {
    // Comments are bounded so that every match stays within `triggers::REACH` of its keyword.
    let sp = r"(?:\s|/\*[^*]{0,32}\*/|\(){1,16}";
    vec![
        (Kind::UnionBased, 0.95, Check::None, format!(r"(?i)\bunion{sp}(?:(?:all|distinct){sp})?select\b")),
        (
            Kind::BooleanBlind,
            0.9,
            Check::ConstantComparison,
            r#"(?i)['"\d)]\s*\b(?:or|and|xor|\|\||&&)\s+\(?\s*(?:'[^'\n]{0,24}'|"[^"\n]{0,24}"|[\w.]+)\s*(?:=|<>|!=|<=>|>=|<=|>|<|\blike\b)\s*(?:'[^'\n]{0,24}'?|"[^"\n]{0,24}"?|[\w.]+)"#.to_owned(),
        ),
        (
            Kind::BooleanBlind,
            0.9,
            Check::None,
            r#"(?i)['"]\s*\)?\s*\b(?:or|and)\s+(?:true|false|not\s+false|\d+)\s*(?:--|#|/\*|;|$)|['"]\s*or\s*''\s*=\s*'|"\s*or\s*""\s*=\s*""#.to_owned(),
        ),
        (
            Kind::TimeBased,
            0.95,
            Check::None,
            r"(?i)\b(?:sleep|pg_sleep|benchmark)\s*\(\s*\d|\bwaitfor\s+(?:delay|time)\s+'|\bdbms_lock\.sleep\s*\(|\bdbms_pipe\.receive_message\s*\(|\brandomblob\s*\(\s*\d{6,}".to_owned(),
        ),
        (
            Kind::ErrorBased,
            0.9,
            Check::None,
            r"(?i)\b(?:extractvalue|updatexml|xmltype|geometrycollection|multipoint)\s*\(|\bexp\s*\(\s*~|\bfloor\s*\(\s*rand\s*\(\s*0\s*\)\s*\*\s*2\s*\)|\bconvert\s*\(\s*int\s*,\s*(?:@@|\(?\s*select\b|db_name|user)|\butl_inaddr\.get_host_name|\bctxsys\.drithsx".to_owned(),
        ),
        (
            Kind::StackedQueries,
            0.9,
            Check::None,
            format!(
                r"(?i);\s*(?:drop\s+(?:table|database|schema|user|view|index|procedure|function)|delete\s+from|insert\s+into|update\s+[\w.`\x22\[\]]+\s+set|create\s+(?:table|user|login|procedure|function|trigger)|alter\s+(?:table|user|login|database)|truncate\s+table|exec(?:ute)?\s+(?:master\.|xp_|sp_)|shutdown\s*(?:;|--|#|$)|declare\s+@|grant\s+{PRIVILEGES}\s+(?:on\s+\S+\s+)?to\s|revoke\s+{PRIVILEGES}\s+(?:on\s+\S+\s+)?from\s)|['\d)]\s*;\s*select\s"
            ),
        ),
        (
            Kind::CommentInjection,
            0.85,
            Check::None,
            r#"(?im)\w['"]\s*\)*\s*(?:--|#)[ \t-]*(?:$|["'}\]\\])|['"]\s*\)*\s*/\*|/\*!\d*\s*\w|\w/\*\*/\w"#.to_owned(),
        ),
        (
            Kind::DangerousQuery,
            0.85,
            Check::None,
            format!(
                r"(?i)\bdrop\s+(?:table|database|schema|user|view|index|procedure|function|trigger|role)\s+(?:if\s+exists\s+)?[\w.`\x22\[\]]+|\btruncate\s+table\s+[\w.`\x22\[\]]+|\bgrant\s+{PRIVILEGES}\s+(?:on\s+\S+\s+)?to\s+\S|\brevoke\s+{PRIVILEGES}\s+(?:on\s+\S+\s+)?from\s+\S|\b(?:alter|create|drop)\s+(?:user|login|role)\s+\S|\bxp_cmdshell\b|\bexec(?:ute)?\s+(?:master\.|sp_configure|sp_oacreate|sp_addsrvrolemember)|\bdelete\s+from\s+[\w.`\x22\[\]]+\s*(?:;|--|#|\n|$)"
            ),
        ),
        (
            Kind::DangerousQuery,
            0.85,
            Check::NoWhere,
            r"(?i)\bupdate\s+[\w.`\x22\[\]]+\s+set\s+[\w.`\x22]+\s*=".to_owned(),
        ),
        (
            Kind::FileAccess,
            0.95,
            Check::None,
            r"(?i)\bload_file\s*\(|\binto\s+(?:out|dump)file\b|\bload\s+data\s+(?:local\s+)?infile\b|\bpg_read_(?:binary_)?file\s*\(|\bpg_ls_dir\s*\(|\bcopy\s+[\w.]+\s+(?:from|to)\s+(?:program\s+)?'|\butl_file\.|\bopenrowset\s*\(|\bbulk\s+insert\s+[\w.]+\s+from\s+'".to_owned(),
        ),
        (
            Kind::SystemCatalog,
            0.7,
            Check::None,
            r"(?i)\binformation_schema\s*\.\s*\w+|\b(?:sysobjects|syscolumns|sys\.(?:tables|columns|objects|databases|sql_logins|server_principals)|pg_catalog\.\w+|pg_shadow|pg_authid|sqlite_master|sqlite_schema|mysql\.user|all_tab_columns|all_tables|all_users|dba_users|user_tables|master\.\.sysdatabases)\b".to_owned(),
        ),
    ]
}

#[derive(Debug, Clone)]
pub(crate) struct SqliDetector {
    regex: Regex,
    meta: Vec<(Kind, f32, Check)>,
}

impl SqliDetector {
    pub(crate) fn new() -> Result<SqliDetector, Box<regex_automata::meta::BuildError>> {
        let patterns = patterns();
        let regex = Regex::new_many(&patterns.iter().map(|p| crate::ascii::ascii(&p.3)).collect::<Vec<_>>())
            .map_err(Box::new)?;
        Ok(SqliDetector { regex, meta: patterns.into_iter().map(|(k, c, ch, _)| (k, c, ch)).collect() })
    }

    /// Every match in `text`, searched from each position: the reference that `scan_at` is held to, and what
    /// decoded payloads (short, and not seen by the trigger pass) are scanned with.
    pub(crate) fn scan(&self, text: &str, out: &mut Vec<Finding>) {
        let mut pos = 0;
        while pos < text.len() {
            let Some(m) = self.regex.search(&Input::new(text).range(pos..)) else {
                break;
            };
            out.extend(self.finding(text, m));
            // Other kinds may overlap this one ("; DROP TABLE" is stacked and dangerous): go on from the next
            // character, not from the end of the match.
            pos = next_char(text, m.start());
        }
    }

    /// The matches that start at one of `anchors` (ASCII positions of `text`, sorted). When the anchors
    /// include every position where a match can start, this finds what `scan` finds: one match per start, the
    /// same pattern chosen, but in time that follows the number of anchors rather than the length of `text`.
    pub(crate) fn scan_at(&self, text: &str, anchors: &[usize], out: &mut Vec<Finding>) {
        for &at in anchors {
            if let Some(m) = self.regex.search(&Input::new(text).range(at..).anchored(Anchored::Yes)) {
                out.extend(self.finding(text, m));
            }
        }
    }

    /// The finding for a match, when its check (if any) passes.
    fn finding(&self, text: &str, m: Match) -> Option<Finding> {
        let (s, e) = (m.start(), m.end());
        let (kind, conf, check) = self.meta[m.pattern().as_usize()];
        let validator = match check {
            Check::None => None,
            Check::ConstantComparison => {
                Some(Validator::Tautology).filter(|_| constant_comparison(&text[s..e]))
            }
            Check::NoWhere => Some(Validator::MissingWhere).filter(|_| no_where(&text[e..])),
        };
        let passed = matches!(check, Check::None) || validator.is_some();
        passed.then(|| Finding::new(kind, s, e, conf, validator))
    }
}

fn next_char(text: &str, i: usize) -> usize {
    let mut j = i + 1;
    while j < text.len() && !text.is_char_boundary(j) {
        j += 1;
    }
    j
}

/// `... OR 'a'='a'` / `AND 1=2`: both sides of the comparison are constants (numbers or quoted strings) or the
/// same identifier. Ordinary SQL compares a column with a constant.
///
/// `m` is a match of the boolean-blind shape: a quote, digit or `)`, spaces, the conjunction, spaces, an
/// optional `(`, the left side, the operator, the right side.
fn constant_comparison(m: &str) -> bool {
    let after_start = m.get(1..).unwrap_or("").trim_start_matches(is_space);
    let Some(conjunction) = ["xor", "and", "or", "||", "&&"]
        .iter()
        .find(|k| after_start.get(..k.len()).is_some_and(|p| p.eq_ignore_ascii_case(k)))
    else {
        return false;
    };
    let rest = after_start[conjunction.len()..].trim_start_matches(is_space);
    let rest = rest.strip_prefix('(').unwrap_or(rest).trim_start_matches(is_space);
    let (lhs, rhs) = match operator(rest) {
        Some((i, len)) => (&rest[..i], &rest[i + len..]),
        None => match find_ignore_case(rest, " like ") {
            Some(i) => (&rest[..i], &rest[i + 6..]),
            None => return false,
        },
    };
    let (lhs, rhs) = (lhs.trim_matches(is_space), rhs.trim_matches(is_space));
    let constant = |s: &str| {
        s.starts_with('\'')
            || s.starts_with('"')
            || (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
    };
    (constant(lhs) && constant(rhs)) || (!lhs.is_empty() && unquoted(lhs).eq_ignore_ascii_case(unquoted(rhs)))
}

fn unquoted(s: &str) -> &str {
    s.trim_matches(|c| c == '\'' || c == '"')
}

/// The regex `\s` (ASCII), for trimming.
fn is_space(c: char) -> bool {
    u8::try_from(c).is_ok_and(crate::ascii::is_space)
}

/// The first comparison operator in `s`: its position and length (`<=>` before `<=` before `<`).
fn operator(s: &str) -> Option<(usize, usize)> {
    let b = s.as_bytes();
    (0..b.len()).find_map(|i| {
        let len = match &b[i..] {
            [b'<', b'=', b'>', ..] => 3,
            [b'<', b'>', ..] | [b'!', b'=', ..] | [b'>', b'=', ..] | [b'<', b'=', ..] => 2,
            [b'=' | b'>' | b'<', ..] => 1,
            _ => return None,
        };
        Some((i, len))
    })
}

/// The first occurrence of the ASCII `needle` in `haystack`, ignoring ASCII case.
fn find_ignore_case(haystack: &str, needle: &str) -> Option<usize> {
    haystack.as_bytes().windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// The rest of the statement (up to `;` or the end) has no WHERE clause.
fn no_where(rest: &str) -> bool {
    let statement = rest.split(';').next().unwrap_or("");
    !statement
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .any(|w| w.eq_ignore_ascii_case("where"))
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    use crate::triggers::Triggers;

    /// Built once for all the tests of this module.
    fn built() -> &'static (SqliDetector, Triggers) {
        static BUILT: std::sync::OnceLock<(SqliDetector, Triggers)> = std::sync::OnceLock::new();
        BUILT.get_or_init(|| (SqliDetector::new().unwrap(), Triggers::new().unwrap()))
    }

    /// Findings by whole-text matching, and by anchored matching at the positions the trigger pass reports;
    /// both sorted by start, then kind.
    fn both_ways(text: &str) -> (Vec<Finding>, Vec<Finding>) {
        let (detector, triggers) = built();
        let (mut whole, mut anchored) = (Vec::new(), Vec::new());
        detector.scan(text, &mut whole);
        detector.scan_at(text, &triggers.scan(text).sqli, &mut anchored);
        for findings in [&mut whole, &mut anchored] {
            findings.sort_by_key(|f| (f.start, f.kind.index()));
        }
        (whole, anchored)
    }

    fn check(input: &str, expected: &[&str]) {
        let (whole, anchored) = both_ways(input);
        let got: Vec<&str> = whole.iter().map(|f| f.kind.as_str()).collect();
        assert_eq!(got, expected, "{input}");
        assert_eq!(anchored, whole, "anchored matching differs on {input:?}");
    }

    /// Every text of the accuracy corpus and of the shared test vectors: anchored matching finds exactly what
    /// matching from every position finds.
    #[test]
    fn anchors_cover_every_match_in_the_corpora() {
        let root = env!("CARGO_MANIFEST_DIR");
        let mut texts = 0;
        let mut matched = 0;
        for file in ["corpus/corpus.jsonl", "tests/data/detection-vectors.jsonl"] {
            let content = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
            for line in content.lines().filter(|l| !l.trim().is_empty()) {
                let value: serde_json::Value = serde_json::from_str(line).unwrap();
                let text = value["text"].as_str().unwrap();
                let (whole, anchored) = both_ways(text);
                assert_eq!(anchored, whole, "anchored matching differs on {text:?}");
                texts += 1;
                matched += usize::from(!whole.is_empty());
            }
        }
        // The comparison means something only if many texts hold SQL injection.
        assert!(texts > 12_000 && matched > 800, "{texts} texts, {matched} with SQL injection");
    }

    /// Every pattern's vocabulary, each word with punctuation before it and spacing around it, in any case.
    fn soup() -> impl Strategy<Value = String> {
        const PUNCTUATION: &[&str] = &[
            "", "", "", "'", "\"", ";", ")", "(", "1", "42", "'--", "';", "1;", "');", "')", "'#", "1)",
            "1 ;", "' )", "--", "#", "/*", "*/", "/**/", "/*!", "/*!5", "=", "''=", "\"\"=", "<>", "!=", "~",
            "@@", ",", ".", "..", "*", "é", "}", "]", "\\", "||", "&&",
        ];
        const SPACING: &[&str] = &["", " ", " ", " ", "  ", "\n", "\t", "\x0b", "\x0c", "\r\n"];
        // Whitespace-separated (kept apart from the trigger lists on purpose: the test must not take its
        // vocabulary from the code it checks).
        const WORDS: &str = "a x id 1 0 like or and xor true false not null union all distinct select from where sleep \
            pg_sleep benchmark waitfor delay time dbms_lock.sleep dbms_pipe.receive_message randomblob \
            123456 extractvalue updatexml xmltype geometrycollection multipoint exp floor rand convert int \
            db_name user utl_inaddr.get_host_name ctxsys.drithsx drop table database schema view index \
            procedure function trigger role login if exists delete insert into update set create alter \
            truncate exec execute master. xp_ xp_cmdshell sp_configure sp_oacreate sp_addsrvrolemember \
            shutdown declare grant revoke privileges on to load_file outfile dumpfile load data local infile \
            pg_read_file pg_read_binary_file pg_ls_dir copy program utl_file. openrowset bulk \
            information_schema sysobjects syscolumns sys.tables pg_catalog.x pg_shadow sqlite_master \
            mysql.user all_tables dba_users user_tables master..sysdatabases explain for andrew";
        let piece = (
            prop::sample::select(PUNCTUATION),
            prop::sample::select(SPACING),
            prop::sample::select(WORDS.split_whitespace().collect::<Vec<_>>()),
            prop::sample::select(SPACING),
            any::<bool>(),
        );
        prop::collection::vec(piece, 0..16).prop_map(|pieces| {
            let mut text = String::new();
            for (punctuation, before, word, after, upper) in pieces {
                text.push_str(punctuation);
                text.push_str(before);
                text.push_str(&if upper { word.to_ascii_uppercase() } else { word.to_owned() });
                text.push_str(after);
            }
            text
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        /// Generated texts dense with SQL vocabulary: anchored matching finds exactly what matching from every
        /// position finds.
        #[test]
        fn anchors_cover_every_match_in_generated_text(text in soup()) {
            let (whole, anchored) = both_ways(&text);
            prop_assert_eq!(anchored, whole, "{:?}", text);
        }
    }

    #[test]
    fn attacks() {
        check("1 UNION SELECT password FROM admin", &["union_based"]);
        check("1 UNION/**/ALL/**/SELECT 1", &["union_based", "comment_injection", "comment_injection"]);
        check("admin' OR 1=1--", &["boolean_blind"]);
        check("' OR 'a'='a'", &["boolean_blind"]);
        check("1 AND 1=2", &["boolean_blind"]);
        check("x' or true--", &["boolean_blind"]);
        check("'; WAITFOR DELAY '0:0:5'--", &["time_based", "comment_injection"]);
        check("1 AND SLEEP(5)", &["time_based"]);
        check("SELECT BENCHMARK(10000000, SHA1('test'))", &["time_based"]);
        check("AND extractvalue(1, concat(0x7e, version()))", &["error_based"]);
        check("1; DROP TABLE users--", &["stacked_queries", "dangerous_query"]);
        check("admin'--", &["comment_injection"]);
        check("/*!50000union*/", &["comment_injection"]);
        check("DELETE FROM users;", &["dangerous_query"]);
        check("UPDATE users SET role='admin'", &["dangerous_query"]);
        check("GRANT ALL PRIVILEGES ON *.* TO 'hacker'@'%'", &["dangerous_query"]);
        check("REVOKE SELECT ON customers FROM public", &["dangerous_query"]);
        check("TRUNCATE TABLE audit_log", &["dangerous_query"]);
        check("SELECT LOAD_FILE('/etc/passwd')", &["file_access"]);
        check("SELECT * FROM t INTO OUTFILE '/var/www/shell.php'", &["file_access"]);
        check("SELECT table_name FROM information_schema.tables", &["system_catalog"]);
    }

    #[test]
    fn ordinary_text_and_queries() {
        check("What are the top 10 products by sales?", &[]);
        check("Please select your favorite option from the dropdown", &[]);
        check("DELETE FROM orders WHERE id=123 AND status='cancelled'", &[]);
        check("SELECT * FROM orders WHERE status='pending' OR status='processing'", &[]);
        check("UPDATE customers SET status='active' WHERE id=456", &[]);
        check("SELECT a FROM t WHERE x = 1 OR y = 2", &[]);
        check("We could union the sets, then select the best", &[]);
        check("Don't drop the ball; grant me a favour", &[]);
        check("It's 5 o'clock -- time to go", &[]);
        check("Please delete from your notes the old address", &[]);
        check("I'll update you and set up a call", &[]);
    }
}
