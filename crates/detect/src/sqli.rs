//! SQL injection in prompts and tool arguments: one multi-pattern regex over attack shapes, with Rust checks
//! where a shape alone would flag ordinary SQL (a comparison must be between constants, a DELETE or UPDATE
//! must lack its WHERE).

use regex_automata::Input;
use regex_automata::meta::Regex;

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

    pub(crate) fn scan(&self, text: &str, out: &mut Vec<Finding>) {
        self.scan_range(text, 0, text.len(), out);
    }

    /// Matches that lie within `start..end` (char boundaries of `text`).
    pub(crate) fn scan_range(&self, text: &str, start: usize, end: usize, out: &mut Vec<Finding>) {
        let mut pos = start;
        while pos < end {
            let Some(m) = self.regex.search(&Input::new(text).range(pos..end)) else {
                break;
            };
            let (s, e) = (m.start(), m.end());
            let (kind, conf, check) = self.meta[m.pattern().as_usize()];
            let validator = match check {
                Check::None => Some(None),
                Check::ConstantComparison => {
                    constant_comparison(&text[s..e]).then_some(Some(Validator::Tautology))
                }
                Check::NoWhere => no_where(&text[e..]).then_some(Some(Validator::MissingWhere)),
            };
            if let Some(validator) = validator {
                out.push(Finding::new(kind, s, e, conf, validator));
            }
            // Other kinds may overlap this one ("; DROP TABLE" is stacked and dangerous): go on from the next
            // character, not from the end of the match.
            pos = next_char(text, s);
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

/// `... OR 'a'='a'` / `AND 1=2`: both sides of the comparison are constants (numbers or quoted strings) or the
/// same identifier. Ordinary SQL compares a column with a constant.
fn constant_comparison(m: &str) -> bool {
    let lower = m.to_ascii_lowercase();
    // Skip the leading quote/digit and the OR/AND keyword.
    let Some(kw) =
        [" or ", " and ", " xor ", "||", "&&", "'or ", "'and ", "\"or ", "\"and ", ")or ", ")and "]
            .iter()
            .filter_map(|k| lower.find(k).map(|i| i + k.len()))
            .min()
    else {
        return false;
    };
    let rest = m[kw..].trim_start().trim_start_matches('(').trim_start();
    let ops = ["<=>", "<>", "!=", ">=", "<=", "=", ">", "<"];
    let (lhs, rhs) = match ops.iter().filter_map(|op| rest.find(op).map(|i| (i, op.len()))).min() {
        Some((i, len)) => (&rest[..i], &rest[i + len..]),
        None => match rest.to_ascii_lowercase().find(" like ") {
            Some(i) => (&rest[..i], &rest[i + 6..]),
            None => return false,
        },
    };
    let (lhs, rhs) = (lhs.trim(), rhs.trim());
    let constant = |s: &str| {
        s.starts_with('\'')
            || s.starts_with('"')
            || (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
    };
    let unquote = |s: &str| s.trim_matches(|c| c == '\'' || c == '"').to_ascii_lowercase();
    (constant(lhs) && constant(rhs)) || (!lhs.is_empty() && unquote(lhs) == unquote(rhs))
}

/// The rest of the statement (up to `;` or the end) has no WHERE clause.
fn no_where(rest: &str) -> bool {
    let statement = rest.split(';').next().unwrap_or("");
    !statement
        .to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .any(|w| w == "where")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &[&str]) {
        let detector = SqliDetector::new().unwrap();
        let mut out = Vec::new();
        detector.scan(input, &mut out);
        out.sort_by_key(|f| f.start);
        let got: Vec<&str> = out.iter().map(|f| f.kind.as_str()).collect();
        assert_eq!(got, expected, "{input}");
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
